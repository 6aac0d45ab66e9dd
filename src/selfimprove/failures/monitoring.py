"""When a monitor fires, against when the damage became visible: the claim every failure loop
makes about its alarms.

A monitor is a metric a user can compute without the answer key (the urn's gap to an
inverse-propensity estimate, the gap between the model's labels and the same round's human
labels, ...) and a recipe watches it with a `warn` alarm. The damage is a metric that needs
the answer key (the share's error, the bias, the accuracy on real users). The claim: the
alarm fires on every failing arm and never on a cured one, and says at which generation each
happened, beside the first generation where the failing arm's damage is `margin` worse than
the cured arm's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from selfimprove.core.alarms import check_alarms
from selfimprove.core.config import AlarmConfig
from selfimprove.core.experiment import Measured
from selfimprove.core.records import Claim, ClaimPlot, Metrics


@dataclass(frozen=True)
class Damage:
    """The answer-key metric, and how far apart the failing and cured arms must be for the
    damage to count as visible."""

    metric: str
    margin: float
    higher_is_worse: bool = True


def first_trip(series: dict[int, Metrics], alarm: AlarmConfig) -> int | None:
    """The first generation whose metrics trip `alarm` (as the engine checks it), or None."""
    return next((g for g in sorted(series) if check_alarms((alarm,), series[g])), None)


def first_damage(
    failing: dict[int, Metrics], cured: dict[int, Metrics], damage: Damage
) -> int | None:
    sign = 1.0 if damage.higher_is_worse else -1.0
    for g in sorted(failing):
        both = g in cured and damage.metric in failing[g] and damage.metric in cured[g]
        if both and sign * (failing[g][damage.metric] - cured[g][damage.metric]) > damage.margin:
            return g
    return None


def monitor_claims(
    alarms: Sequence[AlarmConfig],
    measured: Measured,
    failing: Sequence[str],
    cured: Sequence[str],
    damage: Damage,
    unit: str = "generation",
) -> list[Claim]:
    """One claim per `warn` alarm of the recipe, when it has a failing and a cured arm."""
    claims: list[Claim] = []
    if not failing or not cured:
        return claims
    series = measured.metrics
    for alarm in (a for a in alarms if a.action == "warn"):
        fired = {arm: first_trip(series[arm], alarm) for arm in (*failing, *cured)}
        seen = {arm: first_damage(series[arm], series[cured[0]], damage) for arm in failing}
        parts = [
            f"{arm}: fires at {unit} {fired[arm]}, damage visible at {seen[arm]}"
            if fired[arm] is not None
            else f"{arm}: never fires (damage visible at {seen[arm]})"
            for arm in failing
        ]
        parts += [
            f"{arm} (cured): {'never fires' if fired[arm] is None else f'fires at {unit} {fired[arm]}'}"
            for arm in cured
        ]
        bound = f"< {alarm.below:g}" if alarm.below is not None else f"> {alarm.above:g}"
        text = (
            f"the monitor {alarm.metric} {bound} fires on the failing arms and not on the cured "
            f"(damage: {damage.metric} {damage.margin:g} worse than the cured arm's)"
        )
        holds = all(fired[a] is not None for a in failing) and all(fired[a] is None for a in cured)
        threshold = alarm.above if alarm.above is not None else alarm.below
        plot = ClaimPlot(alarm.metric, (*failing, *cured), None, threshold, "alarm threshold")
        claims.append(Claim(text, "; ".join(parts), holds, plot))
    return claims
