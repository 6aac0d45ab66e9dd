"""One `Experiment` record per method file: its config model, how its arms are wired, the
claims it checks, and how its kept data is exported. `experiments.py` collects the records
in one tuple, so adding a loop is one file plus one line there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from selfimprove.core.config import LoopConfig
from selfimprove.core.engine import Arm
from selfimprove.core.records import Claim, Metrics
from selfimprove.core.review import ReviewHooks

C = TypeVar("C", bound=LoopConfig)

Table = dict[str, dict[int, Metrics]]
"""arm -> generation -> metrics."""


@dataclass(frozen=True)
class Measured:
    """What a run measured, as its claims read it."""

    metrics: Table
    cpu_minutes: dict[str, dict[int, float]]
    """arm -> generation -> cumulative CPU minutes ({} for an arm whose CPU time was not
    recorded); wall minutes stand in where CPU time is missing."""
    decisions: dict[str, dict[int, tuple[str, str]]]
    """arm -> generation -> (gate or alarm action, reason)."""


@dataclass(frozen=True)
class Experiment(Generic[C]):
    config: type[C]
    """The config model; its `kind` field's default names the experiment."""
    build_arms: Callable[[C], list[Arm]]
    claims: Callable[[C, Measured], list[Claim]]
    export: Callable[[Any], list[dict[str, object]]] | None = None
    """Kept data -> records (TRL prompt/completion with provenance columns); None: the loop
    keeps no text to export."""
    review: ReviewHooks | None = None
    """How its samples meet a reviewer; None: the loop has nothing a review gate can read."""

    @property
    def kind(self) -> str:
        kind = self.config.model_fields["kind"].default
        assert isinstance(kind, str), f"{self.config.__name__} has no default kind"
        return kind

    @property
    def summary(self) -> str:
        """The config model's one-line description."""
        return (self.config.__doc__ or "").strip().splitlines()[0]


def newest(series: dict[int, Metrics]) -> tuple[int, Metrics]:
    """The last generation of one arm's series and its metrics."""
    generation = max(series)
    return generation, series[generation]


def column(series: dict[int, Metrics], key: str) -> list[float]:
    """One metric over the generations that report it, in order."""
    return [series[g][key] for g in sorted(series) if key in series[g]]


def trace(values: list[float]) -> str:
    """`2.010 -> 2.100 -> 2.300`: a claim's measured series, as text."""
    return " -> ".join(f"{v:.3f}" for v in values)


def carried(measured: Measured, arm: str) -> dict[int, Metrics]:
    """generation -> metrics of the model the arm carried after it: the candidate's when the
    gate accepted it, else the incumbent's from the last accepted generation (a claim about
    "the model" reads these, never a rejected candidate's)."""
    series, decisions = measured.metrics.get(arm, {}), measured.decisions.get(arm, {})
    out: dict[int, Metrics] = {}
    current: Metrics | None = None
    for generation in sorted(series):
        if current is None or decisions.get(generation, ("accept", ""))[0] == "accept":
            current = series[generation]
        out[generation] = current
    return out
