"""Experiment tracking: a copy of a run's settings, of every committed generation's metrics
and decision, and of its report, sent to an outside tracker (MLflow, TensorBoard).

The run's own store stays the record. A tracker is told about a generation only after the
store committed it (`Engine.on_commit`), and nothing flows back, so a run's results are the
same with or without tracking (a test holds them equal).

- **Start** (`open_tracking`): the tracker is opened, or reopened on resume, and caught up
  with the store: every committed generation it does not hold yet is sent, oldest first.
  Asking the tracker what it holds, instead of remembering what was sent, keeps a resume
  from sending a generation twice and makes up for a crash or an outage in between. A
  tracker that cannot start (a server down, a store that cannot be written) is a one-line
  `ConfigError` before the first generation runs.
- **During the run** (`Tracking.__call__`): a tracker that fails is warned about once and
  then left alone; the run goes on and loses nothing, and the next `selfimprove resume
  RUN` (a finished run too) sends what the tracker missed.
- **End** (`Tracking.finish`): the run's status and every decision with its reason; the
  report, written by the command line after the run, is attached by `attach_report`.

Core never imports a tracker's package: each kind lives in `selfimprove.tracking` (extras
`mlflow`, `tensorboard`), found by name when a recipe asks for it, as executors are.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from selfimprove.core.config import ConfigError, TrackingConfig
from selfimprove.core.records import GenerationRecord
from selfimprove.core.store import RunStore

# trackers live in optional extras: kind -> "module:class"
PLUGINS = {
    "mlflow": "selfimprove.tracking.mlflow:MlflowTracker",
    "tensorboard": "selfimprove.tracking.tensorboard:TensorBoardTracker",
}

Decisions = Mapping[str, Mapping[int, tuple[str, str]]]
"""arm -> generation -> (action, reason), as the store keeps them."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackedRun:
    """What a tracker is told about the run when it opens."""

    run_dir: Path
    id: str
    kind: str
    arms: tuple[str, ...]
    config: dict[str, Any]  # as the store keeps it (JSON values)
    version: str


class Tracker(Protocol):
    """One tracked run on the outside. Opened as `Kind(config, run)`; it creates its run, or
    finds the one it made before when the run resumes."""

    def logged(self, arm: str) -> int:
        """The newest generation of `arm` the tracker holds (-1: none)."""
        ...

    def log_generation(self, record: GenerationRecord) -> None:
        """One committed generation: its finite metrics, decision and times."""
        ...

    def finish(self, status: str, decisions: Decisions) -> None:
        """The run stopped: `status` is the run's (finished, stopped, waiting) or failed."""
        ...


class Tracking:
    """A tracker fed from one run's store; a tracker that fails mid-run never stops the run."""

    def __init__(self, tracker: Tracker, store: RunStore, kind: str) -> None:
        self.tracker, self.store, self.kind = tracker, store, kind
        self.broken = False

    def catch_up(self, arms: Sequence[str]) -> None:
        """Send every committed generation the tracker does not hold yet."""
        for arm in arms:
            for record in self.store.records(arm, after=self.tracker.logged(arm)):
                self.tracker.log_generation(record)

    def __call__(self, record: GenerationRecord) -> None:
        if self.broken:
            return
        try:
            self.tracker.log_generation(record)
        except Exception as error:  # any failure of an outside service: the run goes on
            self._give_up(error)

    def finish(self, status: str) -> None:
        if self.broken:
            return
        try:
            names = [name for name, _ in self.store.arms()]
            self.tracker.finish(status, {arm: self.store.decisions(arm) for arm in names})
        except Exception as error:
            self._give_up(error)

    def _give_up(self, error: Exception) -> None:
        self.broken = True
        log.warning(
            "tracking: %s failed (%s); the run goes on without it, and `selfimprove resume "
            "%s` sends what it missed",
            self.kind,
            first_line(error),
            self.store.run_dir.name,
        )


def plugin(kind: str) -> Any:
    """The tracker class of `kind`, imported only now (its extra may be missing)."""
    module, name = PLUGINS[kind].split(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as error:
        raise ConfigError(f"tracking: {kind} needs `pip install selfimprove[{kind}]`") from error


def open_tracking(
    config: TrackingConfig, store: RunStore, arms: Sequence[str], version: str
) -> Tracking:
    """Open (or reopen) the run's tracker and catch it up with the store; any failure is a
    one-line `ConfigError`, before the first generation runs."""
    info = store.info()
    run = TrackedRun(store.run_dir, info.id, info.kind, tuple(arms), info.config, version)
    kind = plugin(config.kind)
    try:
        tracker: Tracker = kind(config, run)
        tracking = Tracking(tracker, store, config.kind)
        tracking.catch_up(arms)
    except ConfigError:
        raise
    except Exception as error:  # a server down, a store that cannot be written, ...
        raise ConfigError(f"tracking: {config.kind} could not start: {first_line(error)}") from None
    return tracking


def attach_report(config: TrackingConfig, run_dir: Path, report: Path) -> None:
    """Attach the run's report to its tracked run (after the run ended; a failure is a
    warning: the run and its report are safe)."""
    try:
        plugin(config.kind).attach(config, run_dir, report)
    except Exception as error:
        log.warning("tracking: %s could not attach %s (%s)", config.kind, report, first_line(error))


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
