"""The claims a STaR run tests, checked against the metrics it stored."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from selfimprove.core.experiment import Measured, carried, column
from selfimprove.core.records import Claim, ClaimPlot, Metrics

if TYPE_CHECKING:  # the method files import these claims for their Experiment records
    from selfimprove.reasoning.star import StarConfig
    from selfimprove.reasoning.synthesis import SynthesisConfig

ACCURACY = "eval/accuracy_trained_lengths"


def _first_reaching(series: dict[int, Metrics], key: str, level: float) -> int | None:
    return next((g for g in sorted(series) if series[g].get(key, 0.0) >= level), None)


def star_claims(config: StarConfig, measured: Measured) -> list[Claim]:
    """The claims read the model each arm carried (a candidate the gate rejected is not the
    model); the time claim reads compute minutes (the process's CPU time; for runs that did
    not record it, wall time, an upper bound for a one-thread process)."""
    table = {arm: carried(measured, arm) for arm in measured.metrics}
    minutes = measured.cpu_minutes
    found: list[Claim] = []
    target = config.target_accuracy
    star = table.get("star")
    if star:
        first, n = star[0], max(star)
        last = star[n]
        found.append(
            Claim(
                "star: from the seed rationales alone the model starts low (< 50% held-out)",
                f"{100 * first[ACCURACY]:.1f}% at generation 0",
                first[ACCURACY] < 0.5,
            )
        )
        found.append(
            Claim(
                f"star: held-out accuracy on the trained lengths {config.train_digits[0]}-"
                f"{config.train_digits[-1]} rises above {100 * target:g}%",
                f"{100 * last[ACCURACY]:.1f}% at generation {n}",
                last[ACCURACY] > target,
                ClaimPlot(ACCURACY, ("star",), (target, None)),
            )
        )
        clock = minutes.get("star", {})
        reached = _first_reaching(star, ACCURACY, target + 1e-12)
        if clock:
            when = "never" if reached is None else f"generation {reached}, {clock[reached]:.1f} min"
            found.append(
                Claim(
                    f"star: above {100 * target:g}% within {config.target_minutes:g} CPU-minutes "
                    "(one core)",
                    when,
                    reached is not None and clock[reached] <= config.target_minutes,
                )
            )
        direct = table.get("direct")
        if direct:
            d = direct[max(direct)]
            found.append(
                Claim(
                    "star beats direct fine-tuning on answers, given at least as many tokens",
                    f"{100 * last[ACCURACY]:.1f}% ({last['train/tokens_total'] / 1e6:.1f}M tokens) "
                    f"vs {100 * d[ACCURACY]:.1f}% ({d['train/tokens_total'] / 1e6:.1f}M tokens)",
                    last[ACCURACY] > d[ACCURACY]
                    and d["train/tokens_total"] >= last["train/tokens_total"],
                    ClaimPlot(ACCURACY, ("star", "direct")),
                )
            )
    plain = table.get("star_no_rationalization")
    if star and plain:
        found.append(_one_by_one(config, plain, star))
    if config.review is not None and config.review.control:
        found.extend(_review_claims(config, measured))
    return found


WRONG = "kept/wrong_working_fraction"


def _review_claims(config: StarConfig, measured: Measured) -> list[Claim]:
    """With a review gate and its control arm: the share of kept rationales that reach the
    right answer by wrong working (what an answer-only verifier lets through), averaged over
    the generations, is at least halved by review. The kept data of each generation is what
    the claim reads (not the carried model): review acts on the data."""
    assert config.review is not None
    reviewers = config.review.reviewers
    who = (
        f"a simulated reviewer {reviewers[0].accuracy:.0%} accurate"
        if len(reviewers) == 1
        else "review"
    )
    found = []
    for arm in config.arms:
        control, reviewed = measured.metrics.get(f"{arm}-unreviewed"), measured.metrics.get(arm)
        if not control or not reviewed:
            continue
        before, after = column(control, WRONG), column(reviewed, WRONG)
        if not before or not after:
            continue
        was, now = float(np.mean(before)), float(np.mean(after))
        text = (
            f"{arm}: {who} at least halves the kept rationales with a right answer but wrong "
            "working (mean over generations)"
        )
        numbers = f"{100 * was:.1f}% without review, {100 * now:.1f}% with"
        holds: bool | None = now <= 0.5 * was
        if was == 0:
            holds, numbers = None, "not checked at these settings: no wrong working kept"
        found.append(Claim(text, numbers, holds, ClaimPlot(WRONG, (f"{arm}-unreviewed", arm))))
    return found


def _one_by_one(config: StarConfig, plain: dict[int, Metrics], star: dict[int, Metrics]) -> Claim:
    """The paper's pattern: without rationalization, lengths are learned one after another;
    with it, together. Measured as the generations between the shortest and the longest
    trained length first reaching 50%."""

    def reached(series: dict[int, Metrics]) -> list[int | None]:
        return [
            _first_reaching(series, f"eval/accuracy_{d}_digits", 0.5) for d in config.train_digits
        ]

    def spread(found: list[int | None], series: dict[int, Metrics]) -> int:
        never = max(series) + 1
        values = [never if g is None else g for g in found]
        return max(values) - min(values)

    a, b = reached(plain), reached(star)
    text = (
        "without rationalization lengths are learned one by one, with it together: the "
        "generations from the first to the last trained length reaching 50% are more without"
    )

    def shown(found: list[int | None]) -> str:
        return "[" + ", ".join("never" if g is None else str(g) for g in found) + "]"

    measured = (
        f"first generation at >= 50% per length {list(config.train_digits)}: without "
        f"{shown(a)}, with {shown(b)}"
    )
    return Claim(text, measured, spread(a, plain) > spread(b, star))


def synthesis_claims(config: SynthesisConfig, measured: Measured) -> list[Claim]:
    """Execution filtering improves the model on specifications it never trained on (the
    model each arm carried: a rejected candidate is not the model)."""
    del config
    found = []
    for arm in measured.metrics:
        series = carried(measured, arm)
        first, n = series[0], max(series)
        last = series[n]
        found.append(
            Claim(
                f"{arm}: training on programs that passed their tests raises the held-out pass "
                "rate (specifications never trained on)",
                f"{100 * first['eval/pass_rate']:.0f}% -> {100 * last['eval/pass_rate']:.0f}% "
                f"after {n} generations",
                last["eval/pass_rate"] > first["eval/pass_rate"],
            )
        )
    return found
