"""The tiny run every tracking test tracks, and what its own store holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfimprove.core.store import RunStore

GENERATIONS = 4
TINY: dict[str, Any] = {
    "kind": "collapse.gaussian",
    "generations": GENERATIONS,
    "num_seeds": 8,
    "monitor_every": 1,
    "arms": [
        {"policy": {"mix": "replace"}, "samples_per_generation": 20},
        {"policy": {"mix": "accumulate"}, "samples_per_generation": 20},
    ],
}
PREFIXES = {
    "replace, mle, M=20": "replace_ mle_ M_20",
    "accumulate, mle, M=20": "accumulate_ mle_ M_20",
}
"""Each arm and the name its metrics are tracked under (`selfimprove/tracking/__init__.py`)."""


def stored(run_dir: Path) -> dict[str, dict[int, dict[str, float]]]:
    """arm -> generation -> metrics, as the run's own store keeps them."""
    store = RunStore.open(run_dir)
    try:
        return {arm: store.metrics(arm) for arm, _ in store.arms()}
    finally:
        store.close()
