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
from selfimprove.core.records import Metrics, Sample, Verdict
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

    def _truth(self, content: Any) -> bool:
        assert self.hooks.truth is not None, "build_arms refuses simulated review without truth"
        return self.hooks.truth(content)

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
        # one decision per distinct item: its first appearance's draws decide for it, so an
        # item that appears m times is not m times as likely to be audited
        first: dict[str, int] = {}
        for k, item in enumerate(items.values()):
            first.setdefault(item.id, k)
        positions = {item.id: i for i, item in reversed(list(items.items()))}
        chosen: list[Item] = []
        random_ids: set[str] = set()
        for ident, k in first.items():
            i = positions[ident]
            item = items[i]
            flag = self.hooks.flag(scored[i].content)
            if not audited[k] and not (config.mode == "priority" and flag is not None):
                continue
            if audited[k]:
                random_ids.add(ident)
            truth = self._truth(scored[i].content) if golden[k] else None
            gold = None if truth is None else ("accept" if truth else "reject")
            signals = item.signals if flag is None else {**item.signals, "monitor/flag": flag}
            chosen.append(replace(item, needed=2 if doubled[k] else 1, gold=gold, signals=signals))
        if config.mode == "priority":  # flagged first (a stable sort keeps the draw's order)
            chosen.sort(key=lambda item: "monitor/flag" not in item.signals)
        queue.add(chosen)
        unique = [(first[item.id], item) for item in chosen]
        for r, reviewer in enumerate(SimulatedReviewer(c) for c in config.reviewers):
            done, spent = queue.decided_by(reviewer.name), 0
            for k, item in unique:
                if spent >= reviewer.config.budget:
                    break
                if item.id in done or queue.outcome(item.id).status != "pending":
                    continue
                truth = self._truth(scored[positions[item.id]].content)
                pair = (draws[r, k, 0], draws[r, k, 1])
                action, reason = reviewer.judge(truth, pair, self.hooks.reason)
                queue.decide(item.id, reviewer.name, action, reason, note="simulated")
                spent += 1
        with queue.transaction():  # no decision lands between reading outcomes and freezing
            chosen_now = [item for _, item in unique]
            return self._settle(queue, chosen_now, first, random_ids, place, len(items))

    def _settle(
        self,
        queue: ReviewQueue,
        chosen: list[Item],
        first: dict[str, int],
        random_ids: set[str],
        place: ReviewPlace,
        candidates: int,
    ) -> tuple[dict[str, Outcome], Metrics] | Reviewed:
        config = self.config
        outcomes = {item.id: queue.outcome(item.id) for item in chosen}
        # an item not drawn this time but decided before keeps its decision (audit, priority)
        earlier = {
            ident: queue.outcome(ident)
            for ident in first
            if ident not in outcomes and queue.item(ident) is not None
        }
        prior = {i: o for i, o in earlier.items() if o.status in ("accept", "edit", "reject")}
        open_ = [i for i, o in outcomes.items() if o.status in ("pending", "disputed")]
        if open_ and config.unreviewed == "wait":
            disputed = sum(outcomes[i].status == "disputed" for i in open_)
            reason = (
                f"review: {len(open_)} of {len(outcomes)} items await decisions"
                + (f" ({disputed} disputed, to adjudicate)" if disputed else "")
                + f": selfimprove review {place.run_dir.name}"
            )
            queue.log_event("wait", arm=place.arm, generation=place.generation, reason=reason)
            return Reviewed((), {}, "wait", reason)
        # unresolved: audit lets them pass like the unaudited; all drops them
        unresolved = Outcome("drop") if config.mode == "all" else Outcome("pass")
        final = {i: (unresolved if i in open_ else o) for i, o in outcomes.items()}
        measured = final if config.mode == "all" else {i: final[i] for i in random_ids}
        metrics = _summary(final, measured, candidates)
        metrics["review/decided_before"] = float(len(prior))
        final |= prior
        if config.mode == "priority":
            flagged = {item.id for item in chosen if "monitor/flag" in item.signals}
            metrics["review/flagged"] = float(len(flagged))
            metrics["review/flagged_rejected"] = float(
                sum(final[i].status == "reject" for i in flagged)
            )
        halts = config.halt_below is not None and _below(metrics, config.halt_below)
        queue.resolve(place.arm, place.generation, final, metrics, halted=halts)
        return final, metrics

    def _apply(
        self, scored: tuple[Any, ...], items: dict[int, Item], outcomes: dict[str, Outcome]
    ) -> tuple[Any, ...]:
        """Accepted items marked so, edits applied; what review refused (rejected, or left
        without a decision in mode all) stays in place marked as failed, so curate drops it and
        a loop's counts (problems attempted) stay comparable with an arm without review.
        Candidates never queued pass as they are in audit and priority modes."""
        out = []
        for i, sample in enumerate(scored):
            item = items.get(i)
            outcome = None if item is None else outcomes.get(item.id)
            if item is None or (self.config.mode != "all" and outcome is None):
                out.append(sample)
                continue
            status = "drop" if outcome is None else outcome.status
            provenance = sample.provenance
            if status == "pass":
                out.append(sample)
            elif status == "accept":
                out.append(replace(sample, provenance=replace(provenance, review="accepted")))
            elif status == "edit" and outcome is not None and outcome.edit is not None:
                content = self.hooks.edit(sample.content, outcome.edit)
                out.append(Sample(content, replace(provenance, review="edited")))
            else:  # reject, drop
                refused = Verdict(False, "review", reason=f"{status} by review")
                label = "rejected" if status == "reject" else "dropped"
                out.append(
                    replace(sample, provenance=replace(provenance, verdict=refused, review=label))
                )
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
