"""A run tracked through a real `mlflow server` on 127.0.0.1 (started and stopped here; its
report uploaded through the server). Slow: the server takes 7-15 s to start on two cores."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from selfimprove.cli import main
from tests.tracking.runs import GENERATIONS, PREFIXES, TINY, stored

mlflow_tracking = pytest.importorskip(
    "mlflow.tracking", reason="the `mlflow` extra is not installed"
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"),
]
START_SECONDS = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1):
            return True
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def server(tmp_path: Path, migrated_store: Path) -> Iterator[str]:
    database = tmp_path / "server.db"
    shutil.copyfile(migrated_store, database)
    port, log = free_port(), (tmp_path / "server.log").open("w")
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--backend-store-uri", f"sqlite:///{database}", "--workers", "1"]
    command += ["--artifacts-destination", str(tmp_path / "server-artifacts")]
    env = os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true"}
    child = subprocess.Popen(command, stdout=log, stderr=log, env=env, start_new_session=True)
    url, started = f"http://127.0.0.1:{port}", time.monotonic()
    try:
        while not answers(url):
            if child.poll() is not None or time.monotonic() - started > START_SECONDS:
                pytest.fail(f"mlflow server did not start: {(tmp_path / 'server.log').read_text()}")
            time.sleep(0.2)
        print(f"mlflow server answered after {time.monotonic() - started:.1f} s")
        yield url
    finally:
        os.killpg(child.pid, signal.SIGTERM)  # the server and the workers it started
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        log.close()


def test_a_run_tracked_through_a_local_mlflow_server(tmp_path: Path, server: str) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY | {"tracking": {"kind": "mlflow", "uri": server}}))
    assert main(["--runs-dir", str(tmp_path / "runs"), "run", str(recipe)]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()

    client = mlflow_tracking.MlflowClient(tracking_uri=server)
    run = client.get_run(json.loads((run_dir / "tracking.json").read_text())["run_id"])
    assert run.info.status == "FINISHED"
    for arm, series in stored(run_dir).items():
        history = client.get_metric_history(
            run.info.run_id, f"{PREFIXES[arm]}/collapse/sigma_median"
        )
        expected = {g: m["collapse/sigma_median"] for g, m in series.items()}
        assert {m.step: m.value for m in history} == expected
        assert len(history) == GENERATIONS + 1
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {
        "decisions.json",
        "report.html",
    }
