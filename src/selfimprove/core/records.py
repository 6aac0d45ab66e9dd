"""Frozen records passed between stages and written to the run store.

Conventions: a `Batch` holds many samples at once with a leading axis per independent
replicate ("seed") and a second axis per sample: `data` is `[S, N, ...]`. Vectorized studies
run hundreds of seeds in one array instead of a Python loop over seeds. One provenance
describes every sample in a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import numpy as np

from selfimprove.core.snapshot import TRANSIENT

Source = Literal["real", "synthetic"]
Action = Literal["accept", "reject", "rollback", "halt", "wait"]
Metrics = dict[str, float]

T = TypeVar("T")


@dataclass(frozen=True)
class Verdict:
    """A verifier's judgement of one sample (or of every sample in a batch).

    `passed` is None when nothing checked the sample (`verifier` then says so: a collapse
    study's samples are unverified on purpose); `score` and `reason` are the detail.
    """

    passed: bool | None
    verifier: str
    score: float = float("nan")
    reason: str = ""


@dataclass(frozen=True)
class Provenance:
    """Where a sample came from.

    Real data: `model` names its source ("world", "gold answers", "teacher"); `generation`
    is the one that drew it. Synthetic data (stamped by the engine, never by a stage):
    `model` is the incumbent that made it, `generation-N` of `arm`, where N is the
    generation that model was accepted in (after a rollback, older than `generation - 1`);
    `revision` counts revisions of a rejected first try (0: the first try). `verdict` is
    what `verify` said, `review` what a review gate decided ("accepted", "edited") once
    one did (the item's id in the run's review queue is the hash of its fields).
    """

    source: Source
    generation: int
    model: str
    arm: str | None = None
    verdict: Verdict | None = None
    revision: int = 0
    review: str | None = None

    def key(self) -> tuple[object, ...]:
        """What provenance counts group by: everything but the verdict's per-sample detail."""
        verdict = self.verdict
        return (
            self.source,
            self.generation,
            self.model,
            self.arm,
            None if verdict is None else verdict.verifier,
            None if verdict is None else verdict.passed,
            self.revision,
            self.review,
        )


@dataclass(frozen=True)
class Sample(Generic[T]):
    """One item `generate` produced (or one real item), with its provenance."""

    content: T
    provenance: Provenance


@dataclass(frozen=True, eq=False)
class Batch:
    """Many samples with one provenance; `data` is `[S, N, ...]` (seeds, samples, features).

    `cache` memoizes pure functions of `data` (such as sufficient statistics), so a policy
    that accumulates every earlier batch does not recompute them each generation.
    """

    data: np.ndarray
    provenance: Provenance | None = None
    """None until the engine stamps a generated batch; real batches are named when drawn."""
    cache: dict[str, Any] = field(default_factory=dict, repr=False, metadata={TRANSIENT: True})

    @property
    def num_seeds(self) -> int:
        return int(self.data.shape[0])

    @property
    def num_samples(self) -> int:
        return int(self.data.shape[1])


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` may return instead of bare metrics: the metrics plus exhibits, small
    JSON-ready values the report shows as they are (sample text, an image grid, a histogram's
    raw values). Exhibits are stored with the generation but never compared on replay."""

    metrics: Metrics
    exhibits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The gate's verdict on a candidate, with the reason that is logged.

    `wait`: the gate needs decisions it does not have yet (a human review); the generation is
    not committed, the arm stops as `waiting`, and `resume` asks again.
    """

    action: Action
    reason: str

    @property
    def accepted(self) -> bool:
        return self.action == "accept"


@dataclass(frozen=True)
class ProvenanceCount:
    """How many samples of one provenance a generation kept."""

    provenance: Provenance
    count: int


@dataclass(frozen=True)
class Event:
    """One line of the append-only event log."""

    kind: str
    message: str
    arm: str | None = None
    generation: int | None = None


@dataclass(frozen=True)
class GenerationRecord:
    """Everything the store keeps about one finished generation of one arm."""

    arm: str
    generation: int
    metrics: Metrics
    decision: Decision
    kept: tuple[ProvenanceCount, ...] = ()
    events: tuple[Event, ...] = ()
    seconds: float = 0.0  # wall time of the generation's stages
    cpu_seconds: float | None = None  # CPU time for them, self-play workers' included
    exhibits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimPlot:
    """The claim's own figure: the metric it is about, for the arms it names, with the region
    where its newest value must land for the claim to hold and the paper's or theory's value.

    `holds_within` is `(low, high)` (either end None: open); `reference` is drawn as a dashed
    line labelled `reference_label`. `x` names what the figure's x axis is: `generation`, or
    `arm` for a claim about one value per arm (a dot plot, arms side by side)."""

    metric: str
    arms: tuple[str, ...] = ()  # empty: every arm of the run
    holds_within: tuple[float | None, float | None] | None = None
    reference: float | None = None
    reference_label: str = ""
    x: str = "generation"


@dataclass(frozen=True)
class Claim:
    """A claim of the chapter or a paper, checked against what a run measured.

    `holds` is None when the run's settings cannot test the claim (too few seeds, too few
    generations for its bar): `measured` then says which settings it needs. Such a claim is
    "not checked", neither held nor failed."""

    text: str
    measured: str
    holds: bool | None
    plot: ClaimPlot | None = None

    @property
    def verdict(self) -> str:
        return {True: "holds", False: "does not hold", None: "not checked"}[self.holds]
