"""How far reviewers agree, and how often they are right where the truth is known.

Each reviewer's vote on an item is their newest decision in the `review` role: accept and
edit count as accept, reject as reject, and a skip as no vote (it withdraws an older one, as
in `outcome_of`). Adjudications are left out: an adjudicator sees the others' decisions, so
their word is not an independent rating. Only items with votes from two or more reviewers
count, and three measures read them:

- **percent agreement**: of all pairs of votes on the same item, the share that agree (with
  two reviewers: the share of items they agree on);
- **Cohen's kappa** for each pair of reviewers, on the items both voted on (scikit-learn's
  `cohen_kappa_score`): agreement beyond what each reviewer's own accept rate gives by
  chance; 1 is perfect, 0 chance level;
- **Krippendorff's alpha** (nominal) over all reviewers at once (the `krippendorff`
  package), which allows any number of reviewers per item and missing votes.

A measure is None where it is undefined, never a made-up number: no item two reviewers
share ("not enough overlap"), or every vote the same (chance agreement is then perfect and
kappa and alpha are 0/0). Accuracy on gold items comes from `ReviewQueue.reviewer_scores`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score  # type: ignore[import-untyped]

from selfimprove.oversight.queue import ReviewDecision, ReviewQueue

LABELS = ("accept", "reject")
NOT_ENOUGH_OVERLAP = "not enough overlap: no item was decided by two or more reviewers"


@dataclass(frozen=True)
class PairAgreement:
    """Two reviewers on the items both voted on; `kappa` is None when undefined."""

    first: str
    second: str
    num_items: int
    percent: float
    kappa: float | None


@dataclass(frozen=True)
class Agreement:
    """Agreement over the `num_items` items two or more `reviewers` voted on.

    `percent` and `alpha` are None when there is no such item (`problem` says so) or, for
    `alpha`, when every vote is the same; `accuracy` is reviewer -> (right, gold items
    decided), whatever the overlap."""

    num_items: int
    reviewers: tuple[str, ...]
    percent: float | None
    alpha: float | None
    pairs: tuple[PairAgreement, ...]
    accuracy: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    problem: str = ""


def votes_of(decisions: Sequence[ReviewDecision]) -> dict[str, dict[str, str]]:
    """item -> reviewer -> "accept" / "reject": each reviewer's newest review-role decision,
    skips withdrawing a vote (decisions oldest first)."""
    votes: dict[str, dict[str, str]] = {}
    for decision in decisions:
        if decision.role != "review":
            continue
        item = votes.setdefault(decision.item, {})
        if decision.action == "skip":
            item.pop(decision.reviewer, None)
        else:
            item[decision.reviewer] = "reject" if decision.action == "reject" else "accept"
    return votes


def agreement(queue: ReviewQueue) -> Agreement:
    """Agreement between the reviewers of one run's queue (see the module's doc)."""
    return agreement_of(votes_of(queue.decisions()), queue.reviewer_scores())


def agreement_of(
    votes: Mapping[str, Mapping[str, str]], accuracy: Mapping[str, tuple[int, int]]
) -> Agreement:
    shared = {item: v for item, v in votes.items() if len(v) >= 2}
    reviewers = tuple(sorted({name for v in shared.values() for name in v}))
    if not shared:
        return Agreement(0, (), None, None, (), dict(accuracy), NOT_ENOUGH_OVERLAP)
    pairs = tuple(
        pair
        for first, second in combinations(reviewers, 2)
        if (pair := _pair(shared, first, second)) is not None
    )
    return Agreement(
        len(shared),
        reviewers,
        _percent(shared.values()),
        _alpha(shared, reviewers),
        pairs,
        dict(accuracy),
    )


def _percent(items: Iterable[Mapping[str, str]]) -> float:
    """Agreeing pairs of votes over all pairs of votes on the same item."""
    agreeing = total = 0
    for item in items:
        for a, b in combinations(item.values(), 2):
            agreeing += a == b
            total += 1
    return agreeing / total


def _pair(votes: Mapping[str, Mapping[str, str]], first: str, second: str) -> PairAgreement | None:
    both = [(v[first], v[second]) for v in votes.values() if first in v and second in v]
    if not both:
        return None
    a, b = zip(*both, strict=True)
    percent = sum(x == y for x, y in both) / len(both)
    undefined = len(set(a) | set(b)) < 2  # one label only: chance agreement is 1, kappa 0/0
    kappa = None if undefined else float(cohen_kappa_score(a, b, labels=list(LABELS)))
    return PairAgreement(first, second, len(both), percent, kappa)


def _alpha(votes: Mapping[str, Mapping[str, str]], reviewers: tuple[str, ...]) -> float | None:
    data = np.full((len(reviewers), len(votes)), np.nan)  # [reviewers, items]; nan: no vote
    for column, item in enumerate(votes.values()):
        for row, name in enumerate(reviewers):
            if name in item:
                data[row, column] = LABELS.index(item[name])
    if len(np.unique(data[~np.isnan(data)])) < 2:  # one value: expected disagreement is 0
        return None
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
