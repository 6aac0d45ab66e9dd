"""The review stage's protocol: between `verify` and `curate`, people (or simulated
reviewers) decide on what the incumbent made before anything is trained on it.

Core defines only the shape; `oversight/` implements it (a queue, decisions, an audit log)
and `experiments.py` wires it into a loop whose recipe asks for it. A domain that keeps text
says how its items look to a reviewer through `ReviewHooks`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from selfimprove.core.records import Metrics


@dataclass(frozen=True)
class ReviewHooks:
    """How one domain's samples meet a reviewer.

    - `view(content)`: the fields a reviewer reads, as text (`{"prompt": ..., "completion":
      ...}`); an item's id is a hash of its kind and these fields.
    - `edit(content, fields)`: the sample with a reviewer's edited fields (those `editable`
      names).
    - `truth(content)`: whether the item is really right, by a check the loop's own verifier
      does not make (STaR's whole-working check behind an answer-only verifier). Simulated
      reviewers report it with their accuracy; gold items store it. None: the loop has no
      such check (people review it; simulated reviewers and gold items are refused).
    - `flag(content)`: a cheap monitor weaker than the truth (STaR: the answer is not read
      from the working's own last line).
    """

    kind: str
    view: Callable[[Any], Mapping[str, str]]
    edit: Callable[[Any, Mapping[str, str]], Any]
    editable: tuple[str, ...]
    truth: Callable[[Any], bool] | None
    flag: Callable[[Any], str | None] = lambda content: None
    """A cheap automatic monitor: why an item looks suspect (shown to reviewers as a signal,
    and queued first in `priority` mode), or None."""
    reason: str = "incorrect"
    """The reason code a simulated reviewer gives when it rejects one of these items."""


@dataclass(frozen=True)
class ReviewPlace:
    """Where the stage runs: the run's folder (the queue lives there), the arm and generation."""

    run_dir: Path
    arm: str
    generation: int


@dataclass(frozen=True)
class Reviewed:
    """What review made of one generation's stamped samples.

    `action`: continue (train on `scored`: rejected items dropped, edits applied), wait (the
    generation is not committed until decisions arrive; `resume` asks again) or halt (the
    reviews say stop: an acceptance rate below the recipe's bar)."""

    scored: Any
    metrics: Metrics
    action: Literal["continue", "wait", "halt"] = "continue"
    reason: str = ""


class Review(Protocol):
    def __call__(self, scored: Any, place: ReviewPlace, rng: np.random.Generator) -> Reviewed: ...
