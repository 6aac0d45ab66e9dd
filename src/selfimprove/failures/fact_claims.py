"""The error-amplification claims, checked against the newest generation of the model each
arm carried (`failures/facts.py`).

- Without verification the planted errors persist: at the last generation most of them are
  still the very capital planted, and the error rate has grown by at least `MARGIN`.
- The model is about as sure of its errors as of its facts: its mean probability of a wrong
  answer is at least `SURE`.
- Each cure (verification, a share of real statements, review) ends at least `MARGIN` below
  the unverified arm; verification that corrects ends at least `MARGIN` below generation 0
  (the errors fall), verification that drops ends no higher than generation 0 plus `MARGIN`.
- Each of the recipe's `warn` alarms (its monitors, no answer key needed) fires on every arm
  that trains on its own statements unchecked (no verifier: the unverified arm and the partial
  cures) and never on an arm that verifies (`failures/monitoring.py`); the claim says when it
  first fired and when the damage (the error rate `MARGIN` above the first verifying arm's)
  showed. What each monitor watches is said beside it (`WATCHES`): the recipes' monitor,
  training statements off their writer's greedy answer, fires whenever sampled statements
  reach training unchecked, so it tells the arms apart by whether a verifier was on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from selfimprove.core.experiment import Measured, carried, newest
from selfimprove.core.records import Claim, ClaimPlot, Metrics
from selfimprove.failures.monitoring import Damage, monitor_claims

if TYPE_CHECKING:
    from selfimprove.failures.facts import FactArm, FactsConfig

ERRORS = "facts/error_rate_mean"
PERSISTING = "facts/planted_persisting_mean"
SURE_KEY = "facts/confidence_wrong_mean"
MARGIN = 0.03
"""A difference in error rate counts when it is at least 3 points (about 5 of 150 entities
per replicate)."""
SURE = 0.75
"""'Learned as truth': the model gives its wrong answers at least this probability."""
PERSIST = 0.75
"""Planted errors persist when at least this share is still the very capital planted."""
DAMAGE = Damage(ERRORS, MARGIN)
"""The damage a monitor is timed against: an arm's error rate more than `MARGIN` above the
first verifying arm's, the same 3 points the other claims count as a difference (generation 0's
rates are equal, so replicate noise alone stays below it)."""
WATCHES = {
    "kept/off_mode_statements": "it counts training statements that are not their writer's "
    "greedy answer; sampled at temperature 1, an arm that trains on its own statements "
    "unchecked always has some, so it fires whenever sampled statements reach training "
    "unchecked: it tells whether a verifier was on, not how wrong the model is",
    "facts/drift_mean": "it counts answers changed since generation 0; a verifying arm's "
    "stop at the planted errors it corrected or forgot, an unchecked arm's keep growing: it "
    "watches the answers themselves, so it lags the damage",
}
"""What each key-free monitor measures, said in its claim."""
NOT_CHECKED = "not checked: needs >= 1 generation"


def fact_claims(config: FactsConfig, measured: Measured) -> list[Claim]:
    series = {a.label(): carried(measured, a.label()) for a in config.arms}
    plain = [a.label() for a in config.arms if _unchecked(a)]
    found: list[Claim] = []
    for name in plain:
        found += _failure(config, name, series[name])
    base = plain[0] if plain else None
    for arm in (a for a in config.arms if not _unchecked(a)):
        found += _cure(arm, series, base)
    found += _monitors(config, measured)
    if config.generations == 0:  # generation 0 learned the given statements: nothing happened yet
        return [replace(c, measured=f"{NOT_CHECKED} ({c.measured})", holds=None) for c in found]
    return found


def _unchecked(arm: FactArm) -> bool:
    return arm.verify == "none" and arm.real_share == 0 and arm.review == 0


def _failure(config: FactsConfig, name: str, series: dict[int, Metrics]) -> list[Claim]:
    first, (_, last) = series[0], newest(series)
    rise = last[ERRORS] - first[ERRORS]
    found = [
        Claim(
            f"{name}: errors grow without verification: the error rate at least {MARGIN:g} above "
            "generation 0's",
            f"{first[ERRORS]:.3f} -> {last[ERRORS]:.3f} (rise {rise:+.3f})",
            rise >= MARGIN,
            ClaimPlot(
                ERRORS, (name,), (first[ERRORS] + MARGIN, None), first[ERRORS], "generation 0"
            ),
        ),
        Claim(
            f"{name}: the model is about as sure of its errors as of its facts: mean probability "
            f"of a wrong answer at least {SURE:g}",
            f"wrong {last[SURE_KEY]:.3f}, right {last['facts/confidence_right_mean']:.3f}",
            None if last[SURE_KEY] != last[SURE_KEY] else last[SURE_KEY] >= SURE,  # nan: none wrong
            ClaimPlot(SURE_KEY, (name,), (SURE, None)),
        ),
    ]
    if config.planted_errors:
        persisting = last[PERSISTING]
        found.insert(
            0,
            Claim(
                f"{name}: the planted errors persist without verification: at least {PERSIST:g} "
                "of them still the very capital planted",
                f"{persisting:.3f} persisting, {last['facts/planted_wrong_mean']:.3f} still wrong",
                persisting >= PERSIST,
                ClaimPlot(PERSISTING, (name,), (PERSIST, None)),
            ),
        )
    return found


def _cure(arm: FactArm, series: dict[str, dict[int, Metrics]], base: str | None) -> list[Claim]:
    name, found = arm.label(), []
    own = series[name]
    first, (_, last) = own[0], newest(own)
    if base is not None:
        gap = newest(series[base])[1][ERRORS] - last[ERRORS]
        found.append(
            Claim(
                f"{name} cures it: the error rate ends at least {MARGIN:g} below {base}'s",
                f"{name} {last[ERRORS]:.3f} vs {base} {newest(series[base])[1][ERRORS]:.3f} "
                f"(gap {gap:+.3f})",
                gap >= MARGIN,
                ClaimPlot(ERRORS, (base, name)),
            )
        )
    if arm.verify == "correct":
        found.append(
            Claim(
                f"{name}: with verification that corrects, the errors fall: at least {MARGIN:g} "
                "below generation 0's error rate",
                f"{first[ERRORS]:.3f} -> {last[ERRORS]:.3f}",
                last[ERRORS] <= first[ERRORS] - MARGIN,
                ClaimPlot(ERRORS, (name,), (None, first[ERRORS] - MARGIN)),
            )
        )
    elif arm.verify == "drop":
        found.append(
            Claim(
                f"{name}: with verification that drops wrong statements, errors do not grow "
                f"(at most {MARGIN:g} above generation 0's); what was planted is forgotten, "
                "not corrected",
                f"{first[ERRORS]:.3f} -> {last[ERRORS]:.3f}, planted still wrong "
                f"{last.get('facts/planted_wrong_mean', float('nan')):.3f}",
                last[ERRORS] <= first[ERRORS] + MARGIN,
                ClaimPlot(ERRORS, (name,), (None, first[ERRORS] + MARGIN)),
            )
        )
    return found


def _monitors(config: FactsConfig, measured: Measured) -> list[Claim]:
    """One claim per `warn` alarm: it fires on the arms with no verifier (their own statements
    reach training unchecked, but for a real share or a review's audited share) and not on the
    verifying arms, with what the monitor measures."""
    failing = [a.label() for a in config.arms if a.verify == "none"]
    cured = [a.label() for a in config.arms if a.verify != "none"]
    warns = [a for a in config.alarms if a.action == "warn"]
    if not failing or not cured:
        return []
    arms = f"failing: the arms with no verifier ({', '.join(failing)}); cured: {', '.join(cured)}"
    out = []
    for alarm, claim in zip(
        warns, monitor_claims(warns, measured, failing, cured, DAMAGE), strict=True
    ):
        watches = WATCHES.get(alarm.metric)
        text = f"{claim.text}; {arms}" + (f". What it measures: {watches}" if watches else "")
        out.append(replace(claim, text=text))
    return out
