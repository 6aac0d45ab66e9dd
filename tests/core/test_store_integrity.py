"""A run store that never lies: half-created, damaged and abandoned runs are named as such, and
no leftover of an interrupted write outlives the next resume."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from selfimprove.core.store import CorruptRunError, RunStore
from selfimprove.experiments import parse_config, start_run
from tests.tiny import tiny

KILLED_AT_THE_RUN_ROW = """
import os, signal, sqlite3, sys
from pathlib import Path
connect = sqlite3.connect
def connect_and_die_at_the_run_row(*args, **kwargs):
    db = connect(*args, **kwargs)
    def trace(statement):
        if statement.lstrip().upper().startswith("INSERT INTO RUN"):
            os.kill(os.getpid(), signal.SIGKILL)
    db.set_trace_callback(trace)
    return db
sqlite3.connect = connect_and_die_at_the_run_row
from selfimprove.core.store import RunStore
RunStore.create(Path(sys.argv[1]), "collapse.gaussian", {}, 0, "test")
"""


def test_a_kill_while_a_run_is_created_commits_nothing_of_it(tmp_path: Path) -> None:
    """The schema and the run row are one transaction: a kill before its end leaves a folder
    that is plainly broken, never a database with tables and no run."""
    child = subprocess.run(
        [sys.executable, "-c", KILLED_AT_THE_RUN_ROW, str(tmp_path)], check=False
    )
    assert child.returncode == -9
    (run_dir,) = tmp_path.iterdir()
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == []
    with pytest.raises(CorruptRunError, match="interrupted while it was created"):
        RunStore.open(run_dir)


def break_run(runs_dir: Path, how: str) -> Path:
    """A run folder as a crash or a careless hand leaves it."""
    if how == "no-run-row":
        store = RunStore.create(runs_dir, "collapse.gaussian", {}, 0, "test")
        store.close()
        with sqlite3.connect(store.run_dir / "run.sqlite") as db:
            db.execute("DELETE FROM run")
        return store.run_dir
    run_dir = runs_dir / f"broken-{how}"
    run_dir.mkdir(parents=True)
    if how == "empty":
        (run_dir / "run.sqlite").touch()
    else:
        (run_dir / "run.sqlite").write_bytes(b"these are not the pages you are looking for\n" * 200)
    return run_dir


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("empty", "interrupted while it was created"),
        ("no-run-row", "no run row"),
        ("not-sqlite", "not a SQLite database"),
    ],
)
def test_a_broken_run_folder_is_a_one_line_error(tmp_path: Path, how: str, reason: str) -> None:
    run_dir = break_run(tmp_path, how)
    before = (run_dir / "run.sqlite").read_bytes()
    with pytest.raises(CorruptRunError, match=reason) as caught:
        RunStore.open(run_dir.name, tmp_path)
    assert "\n" not in str(caught.value) and run_dir.name in str(caught.value)
    assert (run_dir / "run.sqlite").read_bytes() == before  # looking did not change it


def small_run(runs_dir: Path, generations: int = 12, **changes: Any) -> Path:
    """A collapse.gaussian run of `generations`, stopped after generation `stop_after`."""
    stop_after = changes.pop("stop_after", None)
    config = parse_config(tiny("collapse.gaussian", generations, **changes), "test")
    return start_run(config, runs_dir, stop_after=stop_after).run_dir
