"""Gates: after `evaluate` (and the alarms), a gate decides whether the candidate replaces the
incumbent. A gate is a pure function of a `Proposal`, so a replayed generation decides the
same way; a gate that depends on decisions made outside the run (a human review) reads
them from wherever they are stored and answers `wait` until they exist.

- `AcceptAll`: every candidate is kept (collapse studies measure a loop without a gate;
  AlphaZero's continuous updates, judged by fixed anchors instead of an arena).
- `NoRegression`: keep the candidate unless its metric is worse than the incumbent's by
  more than a tolerance. A rejected candidate is dropped; the incumbent, its metrics and the
  history carry on unchanged. The comparison is per step: a decline smaller than the
  tolerance each generation passes generation after generation (measured on iterated
  distillation: ~0.005 a generation all passed a tolerance of 0.01).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from selfimprove.core.config import GateConfig
from selfimprove.core.records import Decision, Metrics


@dataclass(frozen=True)
class Proposal:
    """What a gate decides on: the candidate of one generation beside the incumbent."""

    arm: str
    generation: int
    candidate: Metrics
    incumbent: Metrics
    incumbent_generation: int
    kept: object  # what the candidate was trained on (stamped samples), for review gates


Gate = Callable[[Proposal], Decision]


@dataclass(frozen=True)
class AcceptAll:
    reason: str = "no gate"

    def __call__(self, proposal: Proposal) -> Decision:
        del proposal
        return Decision("accept", self.reason)


@dataclass(frozen=True)
class NoRegression:
    """Reject a candidate whose `metric` is worse than the incumbent's by more than
    `tolerance` (absolute, in the metric's units)."""

    metric: str
    tolerance: float
    higher_is_better: bool = True

    def __call__(self, proposal: Proposal) -> Decision:
        new = proposal.candidate.get(self.metric, math.nan)
        old = proposal.incumbent.get(self.metric, math.nan)
        versus = (
            f"{self.metric} {new:.4g} vs {old:.4g} (generation {proposal.incumbent_generation})"
        )
        if math.isnan(old):
            return Decision("accept", f"{self.metric}: the incumbent has no value to compare")
        worse_by = (old - new) if self.higher_is_better else (new - old)
        if math.isnan(new) or worse_by > self.tolerance:
            return Decision(
                "reject", f"{versus}: worse by {worse_by:.4g} > tolerance {self.tolerance:g}"
            )
        return Decision("accept", f"{versus}: within tolerance {self.tolerance:g}")


def build_gate(config: GateConfig, accept_reason: str = "no gate") -> Gate:
    """The gate a config asks for; `accept_reason` names what accepting everything means in
    this loop."""
    if config.kind == "no_regression":
        assert config.metric is not None  # the config model requires it
        return NoRegression(config.metric, config.tolerance, config.higher_is_better)
    return AcceptAll(accept_reason)
