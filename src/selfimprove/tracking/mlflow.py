"""MLflow tracking (extra `mlflow`): one MLflow run per selfimprove run, in the tracking
store `tracking.uri` names (default `sqlite:///RUNS_DIR/mlflow.db`, artifacts beside it in
`mlartifacts/`), filed under the experiment `tracking.experiment` (default the recipe's kind).

What the MLflow run holds:
- params: the run's config, flattened (`gate.kind`, `arms.0.policy.mix`; a list of plain
  values is one JSON param), values cut at MLflow's 6000 characters;
- tags: `mlflow.runName` and `selfimprove.run_id` (the run's id), `selfimprove.kind`,
  `selfimprove.arms` (the arms' names, JSON), `selfimprove.version`, and at the end
  `selfimprove.status` (finished, stopped, waiting or failed);
- per committed generation, with step = the generation: every finite metric of each arm as
  `<arm>/<key>` (names: `selfimprove/tracking/__init__.py`), and `<arm>/generation/accepted`
  (1 if the gate accepted the candidate, else 0), `<arm>/generation/seconds` and
  `<arm>/generation/cpu_seconds`;
- artifacts: `decisions.json` (every arm's decision and reason per generation, rewritten
  when the run stops) and the report `report.html` once the command line has written it.

The MLflow run ends FINISHED, KILLED (stopped or waiting for review: `resume` sets it
RUNNING again) or FAILED. Its id is kept in the run folder's `tracking.json` (JSON), so a
resumed run continues it; what it already holds is read back from MLflow
(`<arm>/generation/accepted` is logged last in each generation's batch), so a resume never
logs a generation twice.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

# MLflow's usage telemetry is off unless the user turns it on: a run's data goes to the
# tracking URI the recipe names and nowhere else. Set before MLflow is imported.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from selfimprove.core.config import ConfigError, TrackingConfig
from selfimprove.core.records import GenerationRecord
from selfimprove.core.tracking import Decisions, TrackedRun
from selfimprove.tracking import arm_prefixes, safe_key, tracked_key

STATE_FILE = "tracking.json"
MARKER = "generation/accepted"  # logged last in a generation's batch: present = all logged
STATUSES = {"finished": "FINISHED", "stopped": "KILLED", "waiting": "KILLED", "failed": "FAILED"}
MAX_PARAM_VALUE = 6000
HEALTH_TIMEOUT_SECONDS = 5.0

T = TypeVar("T")


class MlflowTracker:
    """The MLflow run of one selfimprove run."""

    def __init__(self, config: TrackingConfig, run: TrackedRun) -> None:
        self.uri = config.uri or default_uri(run.run_dir)
        check_reachable(self.uri)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.prefixes = arm_prefixes(run.arms)
        reopened = self._reopen(run.run_dir)
        self.fresh = reopened is None
        self.run_id = reopened or self._create(config, run)

    def _reopen(self, run_dir: Path) -> str | None:
        """The MLflow run this run made before, set running again (None: there is none)."""
        state = read_state(run_dir)
        if state is None or state.get("uri") != self.uri:
            return None
        run_id = str(state["run_id"])
        try:
            found = self.client.get_run(run_id)
        except MlflowException:  # the tracking store was emptied since: start afresh
            return None
        if found.info.lifecycle_stage != "active":
            return None
        self.client.update_run(run_id, status="RUNNING")
        return run_id

    def _create(self, config: TrackingConfig, run: TrackedRun) -> str:
        name = config.experiment or run.kind
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            experiment_id = self.client.create_experiment(name, artifact_location(self.uri))
        tags = {
            "selfimprove.run_id": run.id,
            "selfimprove.kind": run.kind,
            "selfimprove.arms": json.dumps(list(run.arms)),
            "selfimprove.version": run.version,
        }
        created = self.client.create_run(experiment_id, tags=tags, run_name=run.id)
        run_id: str = created.info.run_id
        params = [Param(k, v) for k, v in flat_params(run.config).items()]
        for chunk in chunks(params, 100):  # MLflow's most params in one batch
            self.client.log_batch(run_id, params=chunk)
        write_state(run.run_dir, {"kind": "mlflow", "uri": self.uri, "run_id": run_id})
        return run_id

    def logged(self, arm: str) -> int:
        if self.fresh:
            return -1
        history = self.client.get_metric_history(self.run_id, self._key(arm, MARKER))
        return max((m.step for m in history), default=-1)

    def log_generation(self, record: GenerationRecord) -> None:
        stamp, step = int(time.time() * 1000), record.generation
        values = {k: float(v) for k, v in sorted(record.metrics.items()) if math.isfinite(v)}
        values["generation/seconds"] = record.seconds
        if record.cpu_seconds is not None:
            values["generation/cpu_seconds"] = record.cpu_seconds
        values.pop(MARKER, None)
        values[MARKER] = float(record.decision.accepted)  # last: see the module docstring
        metrics = [Metric(self._key(record.arm, k), v, stamp, step) for k, v in values.items()]
        for chunk in chunks(metrics, 1000):  # MLflow's most metrics in one batch
            self.client.log_batch(self.run_id, metrics=chunk)

    def finish(self, status: str, decisions: Decisions) -> None:
        table = {
            arm: [
                {"generation": g, "action": action, "reason": reason}
                for g, (action, reason) in by_generation.items()
            ]
            for arm, by_generation in decisions.items()
        }
        self.client.log_dict(self.run_id, table, "decisions.json")
        self.client.log_batch(self.run_id, tags=[RunTag("selfimprove.status", status)])
        self.client.set_terminated(self.run_id, STATUSES.get(status, "FAILED"))

    @classmethod
    def attach(cls, config: TrackingConfig, run_dir: Path, report: Path) -> None:
        """Attach `report` to the MLflow run this run made (none made: nothing to do)."""
        del config  # the run's own tracking.json says where its MLflow run is
        state = read_state(run_dir)
        if state is not None:
            MlflowClient(tracking_uri=str(state["uri"])).log_artifact(
                str(state["run_id"]), str(report)
            )

    def _key(self, arm: str, key: str) -> str:
        return tracked_key(self.prefixes[arm], key)


def default_uri(run_dir: Path) -> str:
    """One SQLite tracking store for every run in the runs folder."""
    return f"sqlite:///{(run_dir.parent / 'mlflow.db').resolve()}"


def artifact_location(uri: str) -> str | None:
    """Artifacts of a SQLite store go beside its database (MLflow's default would be
    `./mlruns` in whatever folder the run started from); a server decides its own."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///").split("?")[0])
    return (database.parent / "mlartifacts").resolve().as_uri()


def check_reachable(uri: str) -> None:
    """A server that does not answer is a one-line error now, not MLflow's minutes of
    retries later."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_SECONDS):
            pass
    except urllib.error.HTTPError:
        return  # something answered (a proxy without /health): MLflow's own calls will tell
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise ConfigError(f"tracking: no MLflow server answers at {uri} ({reason})") from None


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """The config as MLflow params: nested mappings and lists of mappings become dotted keys;
    any other value is its JSON (a string as it is)."""
    params: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            params |= flat_params(value, f"{name}.")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                params |= flat_params(item, f"{name}.{i}.")
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            params[safe_key(name)] = text[:MAX_PARAM_VALUE]
    return params


def read_state(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / STATE_FILE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    if not isinstance(state, dict) or not {"uri", "run_id"} <= state.keys():
        raise ConfigError(f"{path}: not a tracking state this version wrote")
    return state


def write_state(run_dir: Path, state: dict[str, Any]) -> None:
    path = run_dir / STATE_FILE
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    tmp.replace(path)


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
