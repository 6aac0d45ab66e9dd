"""MLflow tracking against a real local tracking store, read back through MLflow's own client:
every generation's metrics equal the run store's, once each, across a stop and a resume."""

from __future__ import annotations

import json
import logging
import math
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfimprove.cli import _parser, main
from selfimprove.core.config import ConfigError
from selfimprove.core.records import GenerationRecord
from selfimprove.core.tracking import plugin
from selfimprove.experiments import parse_config, resume_run, start_run
from selfimprove.tracking import tracked_key
from tests.tracking.runs import GENERATIONS, PREFIXES, TINY, stored

# MLflow's SQL store uses SQLAlchemy options that SQLAlchemy 2.1 deprecates (its warnings,
# not ours; users do not see them: Python hides DeprecationWarning outside __main__)
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

mlflow_tracking = pytest.importorskip(
    "mlflow.tracking", reason="the `mlflow` extra is not installed"
)
from selfimprove.tracking.mlflow import MlflowTracker, read_state  # noqa: E402


def tracked(uri: str) -> dict[str, Any]:
    return TINY | {"tracking": {"kind": "mlflow", "uri": uri, "experiment": "tiny"}}


def mlflow_run(uri: str, run_dir: Path) -> Any:
    client = mlflow_tracking.MlflowClient(tracking_uri=uri)
    state = read_state(run_dir)
    assert state is not None
    return client, client.get_run(state["run_id"])


def assert_every_generation_once(uri: str, run_dir: Path) -> None:
    """Each stored finite metric has one MLflow value per generation, equal to the store's."""
    client, run = mlflow_run(uri, run_dir)
    for arm, series in stored(run_dir).items():
        keys = {key for metrics in series.values() for key in metrics}
        for key in sorted(keys):
            expected = {g: m[key] for g, m in series.items() if math.isfinite(m.get(key, math.nan))}
            history = client.get_metric_history(run.info.run_id, tracked_key(PREFIXES[arm], key))
            assert len(history) == len(expected), (arm, key)  # no generation logged twice
            assert {m.step: m.value for m in history} == expected, (arm, key)
        marker = client.get_metric_history(run.info.run_id, f"{PREFIXES[arm]}/generation/accepted")
        assert sorted(m.step for m in marker) == list(range(GENERATIONS + 1))


def test_a_run_reaches_mlflow_with_every_generation_and_its_report(
    tmp_path: Path, mlflow_uri: str
) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tracked(mlflow_uri)))
    assert main(["--runs-dir", str(tmp_path / "runs"), "run", str(recipe)]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()

    assert_every_generation_once(mlflow_uri, run_dir)
    client, run = mlflow_run(mlflow_uri, run_dir)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == run_dir.name
    assert client.get_experiment(run.info.experiment_id).name == "tiny"
    assert run.data.params["seed"] == "0"
    assert run.data.params["arms.1.policy.mix"] == "accumulate"
    assert run.data.params["tracking.kind"] == "mlflow"
    assert run.data.tags["selfimprove.run_id"] == run_dir.name
    assert run.data.tags["selfimprove.kind"] == "collapse.gaussian"
    assert run.data.tags["selfimprove.status"] == "finished"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"decisions.json", "report.html"}
    decisions = json.loads(
        Path(
            client.download_artifacts(run.info.run_id, "decisions.json", str(tmp_path))
        ).read_text()
    )
    assert [d["action"] for d in decisions["replace, mle, M=20"]] == ["accept"] * (GENERATIONS + 1)
    # artifacts sit beside the database, not in the folder the run was started from
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(tmp_path)


def test_tracking_changes_no_result(tmp_path: Path, mlflow_uri: str) -> None:
    plain = start_run(parse_config(TINY, "test"), tmp_path / "plain")
    watched = start_run(parse_config(tracked(mlflow_uri), "test"), tmp_path / "tracked")
    assert stored(watched.run_dir) == stored(plain.run_dir)


def test_a_resumed_run_continues_its_mlflow_run_and_logs_nothing_twice(
    tmp_path: Path, mlflow_uri: str
) -> None:
    cut = start_run(parse_config(tracked(mlflow_uri), "test"), tmp_path, stop_after=2)
    first = read_state(cut.run_dir)
    _, run = mlflow_run(mlflow_uri, cut.run_dir)
    assert (cut.status, run.info.status) == ("stopped", "KILLED")

    resumed = resume_run(cut.run_dir)
    assert resumed.status == "finished"
    assert read_state(cut.run_dir) == first  # the same MLflow run
    _, run = mlflow_run(mlflow_uri, cut.run_dir)
    assert (run.info.status, run.data.tags["selfimprove.status"]) == ("FINISHED", "finished")
    assert_every_generation_once(mlflow_uri, cut.run_dir)


def test_a_tracker_failing_mid_run_warns_once_and_resume_catches_it_up(
    tmp_path: Path,
    mlflow_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = MlflowTracker.log_generation

    def down_after_generation_one(self: MlflowTracker, record: GenerationRecord) -> None:
        if record.generation > 1:
            raise ConnectionError("the tracking server went away")
        real(self, record)

    monkeypatch.setattr(MlflowTracker, "log_generation", down_after_generation_one)
    with caplog.at_level(logging.WARNING, logger="selfimprove.core.tracking"):
        run = start_run(parse_config(tracked(mlflow_uri), "test"), tmp_path)
    assert run.status == "finished"  # the run did not stop for its tracker
    (warning,) = caplog.records
    assert "the tracking server went away" in warning.getMessage()
    client, mlrun = mlflow_run(mlflow_uri, run.run_dir)
    history = client.get_metric_history(mlrun.info.run_id, "replace_ mle_ M_20/generation/accepted")
    assert sorted(m.step for m in history) == [0, 1]

    monkeypatch.setattr(MlflowTracker, "log_generation", real)
    assert resume_run(run.run_dir).status == "finished"  # a finished run: only catches up
    assert_every_generation_once(mlflow_uri, run.run_dir)


def test_resume_without_tracking_then_with_it_sends_what_was_missed(
    tmp_path: Path, mlflow_uri: str
) -> None:
    cut = start_run(parse_config(tracked(mlflow_uri), "test"), tmp_path, stop_after=2)
    assert _parser().parse_args(["resume", "RUN", "--no-tracking"]).tracking is False
    assert resume_run(cut.run_dir, tracking=False).status == "finished"  # its server is gone
    client, run = mlflow_run(mlflow_uri, cut.run_dir)
    assert run.info.status == "KILLED"
    history = client.get_metric_history(run.info.run_id, "replace_ mle_ M_20/generation/accepted")
    assert sorted(m.step for m in history) == [0, 1, 2]

    assert resume_run(cut.run_dir).status == "finished"
    assert_every_generation_once(mlflow_uri, cut.run_dir)
    assert mlflow_run(mlflow_uri, cut.run_dir)[1].info.status == "FINISHED"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_server_is_one_line_at_start_and_leaves_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tracked(f"http://127.0.0.1:{free_port()}")))
    assert main(["--runs-dir", str(tmp_path / "runs"), "run", str(recipe)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("selfimprove: error: tracking: no MLflow server answers at http://")
    assert "\n" not in error
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "selfimprove.tracking.mlflow", None)
    with pytest.raises(ConfigError, match=r"needs `pip install selfimprove\[mlflow\]`"):
        plugin("mlflow")
