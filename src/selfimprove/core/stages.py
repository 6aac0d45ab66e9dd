"""The six stage protocols of one generation: generate -> verify -> curate -> train -> evaluate
-> gate. Stages keep no state; the engine hands each its own random stream. `train` returns a
new model and never mutates the incumbent, so a gate that rejects simply keeps it.

Type parameters: M model, S samples, V scored samples, K kept data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import numpy as np

from selfimprove.core.records import Decision, Evaluation, Metrics

M = TypeVar("M")
K = TypeVar("K")
V = TypeVar("V")
M_co = TypeVar("M_co", covariant=True)
K_co = TypeVar("K_co", covariant=True)
S_co = TypeVar("S_co", covariant=True)
V_co = TypeVar("V_co", covariant=True)
M_contra = TypeVar("M_contra", contravariant=True)
K_contra = TypeVar("K_contra", contravariant=True)
S_contra = TypeVar("S_contra", contravariant=True)
V_contra = TypeVar("V_contra", contravariant=True)


class Initialize(Protocol[M_co, K_co]):
    """Generation 0: the first model, trained on real data, and what it was trained on."""

    def __call__(self, rng: np.random.Generator) -> tuple[M_co, K_co]: ...


class Generate(Protocol[M_contra, S_co]):
    def __call__(self, model: M_contra, generation: int, rng: np.random.Generator) -> S_co: ...


class Verify(Protocol[S_contra, V_co]):
    def __call__(self, samples: S_contra, rng: np.random.Generator) -> V_co: ...


class Curate(Protocol[V_contra, K]):
    def __call__(
        self, scored: V_contra, history: Sequence[K], generation: int, rng: np.random.Generator
    ) -> K: ...


class Train(Protocol[M, K_contra]):
    def __call__(self, incumbent: M, kept: K_contra, rng: np.random.Generator) -> M: ...


class Evaluate(Protocol[M_contra]):
    def __call__(
        self, model: M_contra, generation: int, rng: np.random.Generator
    ) -> Metrics | Evaluation: ...


class Gate(Protocol):
    def __call__(self, candidate: Metrics, incumbent: Metrics) -> Decision: ...


def accept_all(candidate: Metrics, incumbent: Metrics) -> Decision:
    """The gate of loops that always continue with the newest model (collapse studies)."""
    del candidate, incumbent
    return Decision("accept", "no gate")


def no_verification(samples: V, rng: np.random.Generator) -> V:
    """The verify stage of loops that have no verifier (that is the point of collapse studies)."""
    del rng
    return samples


def pass_model(model: M, generation: int, rng: np.random.Generator) -> M:
    """The generate stage of loops whose samples are the incumbent's own outputs, produced
    where they are used (distillation: the incumbent student labels the next one's data)."""
    del generation, rng
    return model


def keep_all(scored: V, history: object, generation: int, rng: np.random.Generator) -> V:
    """The curate stage that keeps everything it is given."""
    del history, generation, rng
    return scored
