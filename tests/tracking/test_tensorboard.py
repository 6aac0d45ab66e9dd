"""TensorBoard scalars, read back with TensorBoard's own event reader: every generation's
metrics as the run store holds them, once each, across a stop and a resume."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from selfimprove.experiments import parse_config, resume_run, start_run
from tests.tracking.runs import GENERATIONS, PREFIXES, TINY, stored

accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="the `tensorboard` extra is not installed",
)


def test_tensorboard_holds_every_generation_once_after_a_resume(tmp_path: Path) -> None:
    config = parse_config(TINY | {"tracking": {"kind": "tensorboard"}}, "test")
    cut = start_run(config, tmp_path, stop_after=2)
    assert resume_run(cut.run_dir).status == "finished"

    for arm, series in stored(cut.run_dir).items():
        events = accumulator.EventAccumulator(str(cut.run_dir / "tensorboard" / PREFIXES[arm]))
        events.Reload()
        keys = {key for metrics in series.values() for key in metrics}
        assert keys < set(events.Tags()["scalars"])
        for key in sorted(keys):
            expected = {g: m[key] for g, m in series.items() if math.isfinite(m.get(key, math.nan))}
            scalars = events.Scalars(key)
            assert [s.step for s in scalars] == sorted(expected), (arm, key)  # each once
            assert [s.value for s in scalars] == [np.float32(v) for v in expected.values()]
        accepted = events.Scalars("generation/accepted")
        assert [(s.step, s.value) for s in accepted] == [(g, 1.0) for g in range(GENERATIONS + 1)]
