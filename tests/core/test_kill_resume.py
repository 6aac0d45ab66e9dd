"""`kill -9` at a random moment, then `selfimprove resume`: the same metrics as a whole run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from selfimprove.core.store import RunStore
from selfimprove.experiments import load_config, start_run
from tests.conftest import CONFIGS

OVERRIDES = ["generations=400", "num_seeds=64", "checkpoint_every=7", "monitor_every=5"]


def committed(runs_dir: Path) -> int:
    databases = list(runs_dir.glob("*/run.sqlite"))
    if not databases:
        return -1
    try:
        with sqlite3.connect(databases[0], timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])
    except sqlite3.OperationalError:
        return -1


def test_kill_minus_nine_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    recipe = CONFIGS / "collapse" / "policies.yaml"
    runs_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "selfimprove", "--runs-dir", str(runs_dir), "run", str(recipe)]
    for override in OVERRIDES:
        command += ["--set", override]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while committed(runs_dir) < 700 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    assert child.poll() is None, "the run finished before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    (run_dir,) = runs_dir.iterdir()
    assert RunStore.open(run_dir).info().status == "running"  # it died mid-run

    resumed = subprocess.run(
        [sys.executable, "-m", "selfimprove", "--runs-dir", str(runs_dir), "resume", run_dir.name],
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr

    whole = start_run(load_config(recipe, OVERRIDES), tmp_path / "whole")
    killed, reference = RunStore.open(run_dir), RunStore.open(whole.run_dir)
    assert killed.info().status == "finished"
    for arm, _ in reference.arms():
        assert killed.metrics(arm) == reference.metrics(arm), arm
        assert killed.decisions(arm).keys() == reference.decisions(arm).keys()
