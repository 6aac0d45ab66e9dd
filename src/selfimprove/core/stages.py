"""The stage protocols of one generation: generate -> verify (-> revise -> verify) -> curate ->
train -> evaluate -> gate. Stages keep no state; the engine hands each its own random stream.

- `generate` returns the incumbent's samples: a sequence of items, one `Batch` (`[S, N, ...]`
  arrays), or one object (a generation's self-play games). What the incumbent made is
  stamped by the engine, never by a stage; data from elsewhere (real data, a fixed
  generator) is named by the stage that adds it (`Sample` / `Batch` with its `Provenance`).
- `verify` judges them and returns verdicts only: one `Verdict` per item of a sequence, or
  one for a batch or single object. The engine pairs them with the samples and stamps each
  with its provenance (`Sample`, or the `Batch` with its provenance set).
- `revise` (optional) gets the stamped samples and returns new attempts for some of them
  (STaR's rationalization with the answer as a hint); the engine verifies and stamps those
  too, with `revision` counted, and hands curate both.
- `curate` chooses what to train on from the stamped samples and the history.
- `train` returns a new model and never mutates the incumbent, so a gate that rejects simply
  keeps it.
- `gate` (`core/gates.py`) decides on the candidate from a `Proposal`.

Type parameters: M model, S samples, K kept data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from selfimprove.core.records import Evaluation, Metrics, Verdict

M = TypeVar("M")
K = TypeVar("K")
M_co = TypeVar("M_co", covariant=True)
K_co = TypeVar("K_co", covariant=True)
S_co = TypeVar("S_co", covariant=True)
M_contra = TypeVar("M_contra", contravariant=True)
K_contra = TypeVar("K_contra", contravariant=True)
S_contra = TypeVar("S_contra", contravariant=True)

Verdicts = Verdict | Sequence[Verdict]
"""One verdict per item of a sequence of samples, or one for a batch or a single object."""


class Initialize(Protocol[M_co, K_co]):
    """Generation 0: the first model, trained on real data, and what it was trained on."""

    def __call__(self, rng: np.random.Generator) -> tuple[M_co, K_co]: ...


class Generate(Protocol[M_contra, S_co]):
    def __call__(self, model: M_contra, generation: int, rng: np.random.Generator) -> S_co: ...


class Verify(Protocol[S_contra]):
    """A verifier: a plain callable from samples to verdicts; any loop can swap it."""

    def __call__(self, samples: S_contra, rng: np.random.Generator) -> Verdicts: ...


class Revise(Protocol[M_contra]):
    """New attempts for some stamped samples (those that failed, say), made by the incumbent;
    an empty sequence ends the revisions."""

    def __call__(
        self, model: M_contra, scored: Sequence[Any], generation: int, rng: np.random.Generator
    ) -> Sequence[Any]: ...


class Curate(Protocol[K]):
    def __call__(
        self, scored: Any, history: Sequence[K], generation: int, rng: np.random.Generator
    ) -> K: ...


class Train(Protocol[M, K_contra]):
    def __call__(self, incumbent: M, kept: K_contra, rng: np.random.Generator) -> M: ...


class Evaluate(Protocol[M_contra]):
    def __call__(
        self, model: M_contra, generation: int, rng: np.random.Generator
    ) -> Metrics | Evaluation: ...


UNVERIFIED = Verdict(None, "unverified", reason="nothing checks these samples")


def unverified(samples: object, rng: np.random.Generator) -> Verdict:
    """The verify stage of loops that check nothing on purpose (a collapse study measures what
    happens then): every sample is stamped as unverified, so the store says so."""
    del samples, rng
    return UNVERIFIED


def keep_all(scored: K, history: object, generation: int, rng: np.random.Generator) -> K:
    """The curate stage that keeps everything it is given."""
    del history, generation, rng
    return scored
