"""TensorBoard scalars (extra `tensorboard`): the lighter tracker, event files and no server.

Layout: `LOGDIR/<arm>/events.out.tfevents.*`, LOGDIR being the run folder's `tensorboard/`
(default) or `tracking.uri/<run id>/`, so `tensorboard --logdir runs` (or `--logdir URI`)
finds every run, and TensorBoard's runs are the arms: one chart per metric key, an arm's
curve beside another's. Per committed generation, with step = the generation: every finite
metric under its own key, and `generation/accepted` (1 if accepted, else 0),
`generation/seconds` and `generation/cpu_seconds`. Values are stored as float32 (TensorBoard's
scalar); arm folders are named as in `selfimprove/tracking/__init__.py`.

Event files only grow, so a resumed run does not append to them: it removes its LOGDIR and
writes it anew from the run's store (the tracker holds nothing, so everything is caught up),
which is a copy of the store after every resume, each generation once. Decisions' reasons
and the report are not sent (MLflow takes both).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from selfimprove.core.config import TrackingConfig
from selfimprove.core.records import GenerationRecord
from selfimprove.core.tracking import Decisions, TrackedRun
from selfimprove.tracking import arm_prefixes


class TensorBoardTracker:
    """Event files of one run, one folder per arm."""

    def __init__(self, config: TrackingConfig, run: TrackedRun) -> None:
        self.logdir = log_dir(config, run.run_dir)
        self.folders = arm_prefixes(run.arms)
        shutil.rmtree(self.logdir, ignore_errors=True)  # rewritten whole: see the docstring
        self.writers: dict[str, SummaryWriter] = {}

    def logged(self, arm: str) -> int:
        del arm
        return -1  # the log folder starts empty, so it holds nothing yet

    def log_generation(self, record: GenerationRecord) -> None:
        writer = self._writer(record.arm)
        values = {k: v for k, v in sorted(record.metrics.items()) if math.isfinite(v)}
        values["generation/accepted"] = float(record.decision.accepted)
        values["generation/seconds"] = record.seconds
        if record.cpu_seconds is not None:
            values["generation/cpu_seconds"] = record.cpu_seconds
        for key, value in values.items():
            writer.add_scalar(key, value, record.generation)
        writer.flush()

    def finish(self, status: str, decisions: Decisions) -> None:
        del status, decisions
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()

    @classmethod
    def attach(cls, config: TrackingConfig, run_dir: Path, report: Path) -> None:
        del config, run_dir, report  # TensorBoard shows no HTML pages: the report stays put

    def _writer(self, arm: str) -> SummaryWriter:
        if arm not in self.writers:
            self.writers[arm] = SummaryWriter(log_dir=str(self.logdir / self.folders[arm]))
        return self.writers[arm]


def log_dir(config: TrackingConfig, run_dir: Path) -> Path:
    """The run's own TensorBoard folder (every file in it is this tracker's)."""
    return Path(config.uri) / run_dir.name if config.uri else run_dir / "tensorboard"
