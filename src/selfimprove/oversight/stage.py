"""The review gate as a loop stage (`core/review.py`'s protocol), between verify and curate.

Each generation it takes the candidates (what the incumbent made that passed or escaped the
verifier), queues them as review items, lets the recipe's simulated reviewers decide (each at
most its budget per generation), and then:

- `mode: all`: only accepted (or edited) candidates go on to curate; nothing synthetic is
  trained on unaccepted. Items still without an outcome make the generation wait for people
  (`unreviewed: wait`) or are dropped (`unreviewed: drop`).
- `mode: audit`: a random hidden share of the candidates is reviewed; rejected ones are
  dropped, the rest pass. The share is drawn uniformly, so the acceptance rate of the audited
  items estimates the whole generation's without bias.
- `mode: priority`: as audit, plus every candidate the loop's monitor flags (`ReviewHooks.
  flag`), queued first so a reviewer's budget goes to them; the acceptance rate is still
  measured on the random share alone.
- `halt_below`: a generation whose acceptance rate falls below it halts the arm.

Once a generation is decided its outcome is frozen in the queue (`resolve`), so a replay after
a crash or resume decides the same way whatever reviewers do later.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from selfimprove.core.config import ReviewConfig
from selfimprove.core.records import Metrics, Sample
from selfimprove.core.review import Reviewed, ReviewHooks, ReviewPlace
from selfimprove.oversight.queue import Item, Outcome, ReviewQueue
from selfimprove.oversight.reviewers import SimulatedReviewer


def is_candidate(sample: object) -> bool:
    """What review looks at: samples the incumbent made that the verifier did not fail."""
    if not isinstance(sample, Sample) or sample.provenance.source != "synthetic":
        return False
    verdict = sample.provenance.verdict
    return verdict is None or verdict.passed is not False


def review_item(sample: Sample[Any], hooks: ReviewHooks, arm: str, generation: int) -> Item:
    provenance = asdict(sample.provenance)
    verdict = provenance.pop("verdict") or {}
    signals = {f"verifier/{k}": v for k, v in verdict.items() if v == v}  # nan dropped
    return Item.new(
        hooks.kind, arm, generation, hooks.view(sample.content), hooks.editable, provenance, signals
    )


@dataclass(frozen=True)
class ReviewStage:
    config: ReviewConfig
    hooks: ReviewHooks

    def __call__(self, scored: Any, place: ReviewPlace, rng: np.random.Generator) -> Reviewed:
        if not isinstance(scored, tuple):
            raise TypeError("a review gate needs a loop whose samples are a sequence")
        indices = [i for i, sample in enumerate(scored) if is_candidate(sample)]
        items = {
            i: review_item(scored[i], self.hooks, place.arm, place.generation) for i in indices
        }
        queue = ReviewQueue.open(place.run_dir)
        try:
            frozen = queue.resolution(place.arm, place.generation)
            if frozen is None:
                decided = self._decide(queue, scored, items, place, rng)
                if isinstance(decided, Reviewed):
                    return decided
                outcomes, metrics = decided
            else:
                outcomes, metrics = frozen
        finally:
            queue.close()
        kept = self._apply(scored, items, outcomes)
        if self.config.halt_below is not None and _below(metrics, self.config.halt_below):
            rate = metrics["review/acceptance_rate"]
            reason = f"review: acceptance rate {rate:.3f} below {self.config.halt_below:g}"
            return Reviewed(kept, metrics, "halt", reason)
        return Reviewed(kept, metrics)

    def _decide(
        self,
        queue: ReviewQueue,
        scored: tuple[Any, ...],
        items: dict[int, Item],
        place: ReviewPlace,
        rng: np.random.Generator,
    ) -> tuple[dict[str, Outcome], Metrics] | Reviewed:
        config, n = self.config, len(items)
        # every draw is made for every candidate, in order, so a resumed generation (people
        # decided in between) makes the same choices
        sampled = config.mode in ("audit", "priority")
        audited = rng.random(n) < config.share if sampled else np.ones(n, bool)
        doubled = rng.random(n) < config.overlap
        golden = rng.random(n) < config.gold_share
        draws = rng.random((len(config.reviewers), n, 2))
        chosen: list[Item] = []
        random_ids: set[str] = set()
        for k, (i, item) in enumerate(items.items()):
            flag = self.hooks.flag(scored[i].content)
            if not audited[k] and not (config.mode == "priority" and flag is not None):
                continue
            if audited[k]:
                random_ids.add(item.id)
            truth = self.hooks.truth(scored[i].content) if golden[k] else None
            gold = None if truth is None else ("accept" if truth else "reject")
            signals = item.signals if flag is None else {**item.signals, "monitor/flag": flag}
            chosen.append(replace(item, needed=2 if doubled[k] else 1, gold=gold, signals=signals))
        if config.mode == "priority":  # flagged first (a stable sort keeps the draw's order)
            chosen.sort(key=lambda item: "monitor/flag" not in item.signals)
        queue.add(chosen)
        # the same content may appear twice in one generation: judge it once
        unique = list({item.id: (k, item) for k, item in enumerate(chosen)}.values())
        positions = {item.id: i for i, item in items.items()}
        for r, reviewer in enumerate(SimulatedReviewer(c) for c in config.reviewers):
            done = queue.decided_by(reviewer.name)
            for k, item in unique[: reviewer.config.budget]:
                if item.id in done or queue.outcome(item.id).status != "pending":
                    continue
                truth = self.hooks.truth(scored[positions[item.id]].content)
                action, reason = reviewer.judge(truth, (draws[r, k, 0], draws[r, k, 1]))
                queue.decide(item.id, reviewer.name, action, reason, note="simulated")
        outcomes = {item.id: queue.outcome(item.id) for _, item in unique}
        open_ = [i for i, o in outcomes.items() if o.status in ("pending", "disputed")]
        if open_ and config.unreviewed == "wait":
            disputed = sum(outcomes[i].status == "disputed" for i in open_)
            reason = (
                f"review: {len(open_)} of {len(outcomes)} items await decisions"
                + (f" ({disputed} disputed, to adjudicate)" if disputed else "")
                + f": selfimprove review {place.run_dir.name}"
            )
            queue.log_event("wait", arm=place.arm, generation=place.generation, reason=reason)
            return Reviewed(scored, {}, "wait", reason)
        # unresolved: audit lets them pass like the unaudited; all drops them
        unresolved = Outcome("drop") if config.mode == "all" else Outcome("pass")
        final = {i: (unresolved if i in open_ else o) for i, o in outcomes.items()}
        measured = final if config.mode == "all" else {i: final[i] for i in random_ids}
        metrics = _summary(final, measured, len(items))
        if config.mode == "priority":
            flagged = {item.id for item in chosen if "monitor/flag" in item.signals}
            metrics["review/flagged"] = float(len(flagged))
            metrics["review/flagged_rejected"] = float(
                sum(final[i].status == "reject" for i in flagged)
            )
        queue.resolve(place.arm, place.generation, final, metrics)
        return final, metrics

    def _apply(
        self, scored: tuple[Any, ...], items: dict[int, Item], outcomes: dict[str, Outcome]
    ) -> tuple[Any, ...]:
        out = []
        for i, sample in enumerate(scored):
            item = items.get(i)
            outcome = None if item is None else outcomes.get(item.id)
            if item is None or outcome is None or outcome.status == "pass":
                if item is None or self.config.mode == "audit":
                    out.append(sample)
                continue  # mode all: a candidate never queued is never trained on
            if outcome.status == "accept":
                out.append(
                    replace(sample, provenance=replace(sample.provenance, review="accepted"))
                )
            elif outcome.status == "edit" and outcome.edit is not None:
                content = self.hooks.edit(sample.content, outcome.edit)
                out.append(Sample(content, replace(sample.provenance, review="edited")))
        return tuple(out)


def _summary(
    outcomes: dict[str, Outcome], measured: dict[str, Outcome], candidates: int
) -> Metrics:
    """Counts over every reviewed item; the acceptance rate over `measured` (audit and
    priority: the random share alone, so flagged items do not bias it)."""
    count = {s: sum(o.status == s for o in outcomes.values()) for s in ("accept", "edit", "reject")}
    decided = sum(count.values())
    judged = [o.status for o in measured.values() if o.status in ("accept", "edit", "reject")]
    accepted = sum(status != "reject" for status in judged)
    return {
        "review/candidates": float(candidates),
        "review/queued": float(len(outcomes)),
        "review/accepted": float(count["accept"]),
        "review/edited": float(count["edit"]),
        "review/rejected": float(count["reject"]),
        "review/unreviewed": float(len(outcomes) - decided),
        "review/acceptance_rate": accepted / len(judged) if judged else float("nan"),
    }


def _below(metrics: Metrics, bar: float) -> bool:
    rate = metrics.get("review/acceptance_rate", float("nan"))
    return bool(rate == rate and rate < bar)
