"""The distribution-shift claims, checked against the newest generation each arm carried.

- Works on synthetic, fails on real users: with self-labelled canonical requests alone,
  accuracy on messy held-out requests falls while accuracy on clean ones does not.
- Keeping real data, or covering the informal phrasings in the synthetic data, recovers most
  of that loss; injecting the users' noise (slang, typos, case) recovers only part of it,
  since informal phrasings are not noise a character model can fake.
- The rare tail: self-labelling thins the rare intents, and self-filtering (keeping only
  confident self-labels) erases them; covering them with requests labelled by the intent
  they were written for restores them, and better than the same coverage labelled by the
  incumbent (which mislabels some of what it was weak on).
- The label-free monitors fire on the failing arms and not on the cured ones
  (`failures/monitoring.py`).

An arm is "plain" when it has no cure (no real data, no noise, no coverage); the first plain
arm without a confidence filter is the reference the cures are measured against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from selfimprove.core.experiment import Measured, carried, newest
from selfimprove.core.records import Claim, ClaimPlot, Metrics
from selfimprove.failures.monitoring import Damage, monitor_claims

if TYPE_CHECKING:
    from selfimprove.failures.shift import ShiftArm, ShiftConfig

CLEAN = "eval/clean_accuracy_mean"
MESSY = "eval/messy_accuracy_mean"
RARE = "eval/rare_accuracy_mean"
DROP = 0.05
"""The synthetic-only arm's messy accuracy ends at least this far below generation 0's; also
the gap between failing and cured arms at which the damage counts as visible."""
CLEAN_SLACK = 0.01
"""Clean accuracy "stays high": it ends no more than this below generation 0's."""
RARE_TRAFFIC = 0.03
"""The rare intents' share of requests: losing all of them costs clean accuracy about this."""
MOST, PART = 0.8, (0.15, 0.6)
"""Share of the reference arm's messy-accuracy loss a cure recovers: keeping real data and
covering the informal phrasings recover MOST or more; noise injection a PART, in this range."""
TAIL_THIN, TAIL_LOST, TAIL_GAIN, LABELS_GAIN = 0.05, 0.1, 0.3, 0.1
"""Rare-intent accuracy: self-labelling loses at least TAIL_THIN; self-filtering leaves at
most TAIL_LOST; coverage labelled by the writer gains at least TAIL_GAIN over generation 0,
and ends at least LABELS_GAIN above the same coverage labelled by the incumbent."""


def plain(arm: ShiftArm) -> bool:
    return not (arm.real_share or arm.noise or arm.balanced or arm.informal_share)


def shift_claims(config: ShiftConfig, measured: Measured) -> list[Claim]:
    last = {a.label(): newest(carried(measured, a.label()))[1] for a in config.arms}
    start = carried(measured, config.arms[0].label())[0]  # generation 0: the same in every arm
    reference = next((a for a in config.arms if plain(a) and not a.min_confidence), None)
    claims = []
    if reference is not None:
        claims.append(_fails_on_users(reference.label(), start, last[reference.label()]))
    for arm in config.arms:
        if reference is not None and not plain(arm):
            claims += _recovers(arm, reference.label(), start, last)
        claims += _tail(arm, config, start, last)
    failing = [a.label() for a in config.arms if plain(a)]
    cured = [a.label() for a in config.arms if a.real_share]
    tail_alarms = [a for a in config.alarms if a.metric.startswith("kept/rare_share")]
    user_alarms = [a for a in config.alarms if a not in tail_alarms]
    damage = Damage(MESSY, DROP, higher_is_worse=False)
    claims += monitor_claims(user_alarms, measured, failing, cured, damage)
    filtered = [a.label() for a in config.arms if plain(a) and a.min_confidence]
    covered = [a.label() for a in config.arms if a.balanced and a.labels == "writer"]
    tail = Damage(RARE, 2 * TAIL_LOST, higher_is_worse=False)
    return claims + monitor_claims(tail_alarms, measured, filtered, covered, tail)


def _fails_on_users(name: str, start: Metrics, end: Metrics) -> Claim:
    drop = start[MESSY] - end[MESSY]
    clean_holds = end[CLEAN] >= start[CLEAN] - CLEAN_SLACK
    return Claim(
        f"{name}: trained on its own labels of clean synthetic requests, the model works on "
        f"synthetic text and fails on real users: messy accuracy ends at least {DROP:g} below "
        f"generation 0's while clean accuracy stays within {CLEAN_SLACK:g} of it or above",
        f"messy {start[MESSY]:.3f} -> {end[MESSY]:.3f} (drop {drop:.3f}); clean "
        f"{start[CLEAN]:.3f} -> {end[CLEAN]:.3f}",
        drop >= DROP and clean_holds,
        ClaimPlot(MESSY, (name,), (None, start[MESSY] - DROP), start[MESSY], "generation 0"),
    )


def _recovers(
    arm: ShiftArm, reference: str, start: Metrics, last: dict[str, Metrics]
) -> list[Claim]:
    """How much of the reference arm's messy-accuracy loss this cure wins back."""
    name, base = arm.label(), last[reference][MESSY]
    loss = start[MESSY] - base
    if loss <= 0:
        return []  # nothing to recover; the reference's own claim fails and says so
    if not (arm.real_share or arm.informal_share or arm.noise):
        return []  # no cure of the users' loss (a tail cure, say)
    recovered = (last[name][MESSY] - base) / loss
    text, holds = _cure_bar(arm, reference, recovered)
    measured = (
        f"messy {last[name][MESSY]:.3f} vs {reference} {base:.3f} and generation 0 "
        f"{start[MESSY]:.3f}: recovers {recovered:.0%} of the loss"
    )
    plot = ClaimPlot(
        MESSY, (reference, name), reference=start[MESSY], reference_label="generation 0"
    )
    return [Claim(text, measured, holds, plot)]


def _cure_bar(arm: ShiftArm, reference: str, recovered: float) -> tuple[str, bool]:
    """What a cure claims to recover, and whether it did: real data and coverage of the
    informal phrasings MOST of the loss, noise injection only a PART of it."""
    name = arm.label()
    if arm.real_share or arm.informal_share:
        how = (
            f"keeping {arm.real_share:.0%} real requests"
            if arm.real_share
            else "covering the informal phrasings"
        )
        text = f"{name}: {how} recovers at least {MOST:.0%} of {reference}'s loss in messy accuracy"
        return text, recovered >= MOST
    low, high = PART
    text = (
        f"{name}: injecting the users' noise (slang, typos, case) recovers part of "
        f"{reference}'s loss in messy accuracy, between {low:.0%} and {high:.0%}: the "
        "informal phrasings are not noise"
    )
    return text, low <= recovered < high


def _tail(
    arm: ShiftArm, config: ShiftConfig, start: Metrics, last: dict[str, Metrics]
) -> list[Claim]:
    """The rare-tail claim an arm's data recipe makes: a confidence filter erases the tail,
    self-labelling alone thins it, and covering it restores it (better when labelled by the
    writer than by the incumbent); other arms make none."""
    name, end = arm.label(), last[arm.label()]
    if plain(arm) and arm.min_confidence:
        return [_erased(name, arm.min_confidence, start, end)]
    if plain(arm) and arm.labels == "incumbent":
        return [_thinned(name, start, end)]
    if not arm.balanced:
        return []
    if arm.labels == "writer":
        return [_covered(name, start, end)]
    twin = next(
        (
            a
            for a in config.arms
            if a.balanced and a.labels == "writer" and a.informal_share == arm.informal_share
        ),
        None,
    )
    if twin is None:
        return []
    return [_labels_matter(name, twin.label(), start, end, last[twin.label()][RARE])]


def _rare_change(start: Metrics, end: Metrics) -> str:
    return f"rare-intent accuracy {start[RARE]:.3f} -> {end[RARE]:.3f}"


def _kept_rare(start: Metrics, end: Metrics) -> str:
    return (
        f"kept rare share {start['kept/rare_share_mean']:.3f} -> {end['kept/rare_share_mean']:.3f}"
    )


def _erased(name: str, min_confidence: float, start: Metrics, end: Metrics) -> Claim:
    clean_holds = end[CLEAN] >= start[CLEAN] - RARE_TRAFFIC
    return Claim(
        f"{name}: keeping only self-labels surer than {min_confidence:g} erases the "
        f"rare tail: rare-intent accuracy ends at or below {TAIL_LOST:g} while clean "
        f"accuracy loses no more than the tail's share of requests ({RARE_TRAFFIC:g})",
        f"{_rare_change(start, end)}; clean {start[CLEAN]:.3f} -> {end[CLEAN]:.3f}; "
        f"{_kept_rare(start, end)}",
        end[RARE] <= TAIL_LOST and clean_holds,
        ClaimPlot(RARE, (name,), (None, TAIL_LOST)),
    )


def _thinned(name: str, start: Metrics, end: Metrics) -> Claim:
    return Claim(
        f"{name}: self-labelling thins the rare tail (the incumbent labels some rare "
        f"requests as their frequent neighbours): rare-intent accuracy ends at least "
        f"{TAIL_THIN:g} below generation 0's",
        f"{_rare_change(start, end)}; {_kept_rare(start, end)}",
        end[RARE] <= start[RARE] - TAIL_THIN,
        ClaimPlot(RARE, (name,), (None, start[RARE] - TAIL_THIN), start[RARE], "generation 0"),
    )


def _covered(name: str, start: Metrics, end: Metrics) -> Claim:
    return Claim(
        f"{name}: covering the rare intents, labelled by the intent each request was "
        f"written for, raises rare-intent accuracy at least {TAIL_GAIN:g} above "
        "generation 0's",
        _rare_change(start, end),
        end[RARE] >= start[RARE] + TAIL_GAIN,
        ClaimPlot(RARE, (name,), (start[RARE] + TAIL_GAIN, None), start[RARE], "generation 0"),
    )


def _labels_matter(name: str, twin: str, start: Metrics, end: Metrics, theirs: float) -> Claim:
    """The same coverage labelled by the incumbent (`name`) against the writer (`twin`)."""
    error = end.get("kept/label_error_mean", float("nan"))
    return Claim(
        f"{name}: the same coverage labelled by the incumbent fixes less of the rare tail: "
        f"{twin} (labelled by the writer) ends at least {LABELS_GAIN:g} higher in "
        "rare-intent accuracy",
        f"{_rare_change(start, end)}; {twin} {theirs:.3f}; label error of the kept "
        f"self-labels {error:.3f}",
        theirs >= end[RARE] + LABELS_GAIN,
        ClaimPlot(RARE, (name, twin), reference=start[RARE], reference_label="generation 0"),
    )
