"""The claims a STaR run tests, checked against the metrics it stored."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from selfimprove.core.experiment import Measured, carried, column
from selfimprove.core.records import Claim, ClaimPlot, Metrics

if TYPE_CHECKING:  # the method files import these claims for their Experiment records
    from selfimprove.reasoning.star import StarArm, StarConfig
    from selfimprove.reasoning.synthesis import SynthesisConfig

ACCURACY = "eval/accuracy_trained_lengths"
HELD_OUT = "eval/accuracy_held_out"
UNEQUAL, EQUAL = "eval/accuracy_unequal", "eval/accuracy_equal"
BASELINE = "star"  # the arm the shape and faithfulness claims compare against


def _span(lengths: Sequence[int]) -> str:
    """`2-5` for a run of lengths, else `1, 3`."""
    ordered = sorted(lengths)
    if len(ordered) > 1 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}-{ordered[-1]}"
    return ", ".join(map(str, ordered))


def _headline(config: StarConfig, last: Metrics) -> tuple[str, str]:
    """The headline metric and the lengths it averages: the trained lengths with held-out
    sums never trained on (runs that predate it: every trained length)."""
    if HELD_OUT not in last or math.isnan(last[HELD_OUT]):
        return ACCURACY, f"the trained lengths {_span(config.train_digits)}"
    from selfimprove.reasoning.star import Data  # star imports these claims

    held = set(Data.of(config).held_out_lengths)
    inside = [d for d in config.train_digits if d in held]
    apart = [d for d in config.train_digits if d not in held]
    text = f"the trained lengths {_span(inside)}"
    if apart:
        text += (
            f" (length {_span(apart)} left out: every one of its sums is also trained on, so "
            "none is held out)"
        )
    return HELD_OUT, text


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
        headline, lengths = _headline(config, last)
        found.append(
            Claim(
                "star: from the seed rationales alone the model starts low (< 50% held-out)",
                f"{100 * first[headline]:.1f}% at generation 0",
                first[headline] < 0.5,
            )
        )
        found.append(
            Claim(
                f"star: held-out accuracy on {lengths} rises above {100 * target:g}%",
                f"{100 * last[headline]:.1f}% at generation {n}",
                last[headline] > target,
                ClaimPlot(headline, ("star",), (target, None)),
            )
        )
        clock = minutes.get("star", {})
        reached = _first_reaching(star, headline, target + 1e-12)
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
                    f"{100 * last[headline]:.1f}% ({last['train/tokens_total'] / 1e6:.1f}M tokens)"
                    f" vs {100 * d[headline]:.1f}% ({d['train/tokens_total'] / 1e6:.1f}M tokens)",
                    last[headline] > d[headline]
                    and d["train/tokens_total"] >= last["train/tokens_total"],
                    ClaimPlot(headline, ("star", "direct")),
                )
            )
    plain = table.get("star_no_rationalization")
    if star and plain:
        found.append(_one_by_one(config, plain, star))
    if config.review is not None and config.review.control:
        found.extend(_review_claims(config, measured))
    if config.review is None:  # a review study's claims are about review
        found.extend(shape_claims(config, table, minutes))
        found.extend(faithful_claims(config, table, minutes))
    return found


def _mean(series: dict[int, Metrics], key: str) -> float:
    values = [v for v in column(series, key) if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def shape_claims(
    config: StarConfig, table: dict[str, dict[int, Metrics]], minutes: dict[str, dict[int, float]]
) -> list[Claim]:
    """Evaluation by shape: the baseline learns the common shape (equal operand lengths); the
    diversity monitor sees it in the kept data without held-out answers; an arm whose
    problems are drawn with more unequal sums (the cure) reaches the bar on unequal sums
    without losing equal ones, within the time limit, and without losing a robustness set."""
    lengths = _span(config.shape_lengths)
    star = table.get(BASELINE)
    if not star or UNEQUAL not in star[max(star)]:
        return []
    n = max(star)
    base = star[n]
    found = [
        Claim(
            f"{BASELINE}: trained on the task's own draw (about 10% of sums have operands of "
            "unequal length), the model learns the common shape, not addition: held-out "
            f"unequal-length sums over {lengths} digits trail equal-length ones by more than "
            "10 points",
            f"unequal {100 * base[UNEQUAL]:.1f}% vs equal {100 * base[EQUAL]:.1f}% at generation "
            f"{n} (per length, unequal / equal: {_per_length(config, base)}); robustness sets: "
            + _robust(base),
            base[EQUAL] - base[UNEQUAL] > 0.10,
            ClaimPlot(UNEQUAL, (), None),
        )
    ]
    covered, missed = _mean(star, "kept/coverage_equal"), _mean(star, "kept/coverage_unequal")
    if not math.isnan(covered) and not math.isnan(missed):
        found.append(
            Claim(
                f"{BASELINE}: the diversity monitor sees it without held-out answers: the kept "
                "rationales cover a smaller share of the pool's unequal-length sums than of its "
                "equal-length ones",
                f"{100 * missed:.1f}% of unequal vs {100 * covered:.1f}% of equal sums kept "
                "(mean over generations)",
                missed < covered,
                ClaimPlot("kept/coverage_unequal", (), None),
            )
        )
    bar, tolerance = config.target_unequal_accuracy, config.equal_tolerance
    for arm in config.arm_specs:
        series = table.get(arm.name)
        if arm.draw is None or arm.name == BASELINE or not series:
            continue
        last = series[max(series)]
        clock = minutes.get(arm.name, {})
        floor = base[EQUAL] - tolerance - 1e-12

        def cured(m: Metrics, floor: float = floor) -> bool:
            return m[UNEQUAL] >= bar and m[EQUAL] >= floor

        reached = next((g for g in sorted(series) if cured(series[g])), None)
        if reached is None:
            when = f"never in {max(series)} generations"
        elif clock:
            when = f"first at generation {reached}, {clock[reached]:.1f} CPU-minutes"
        else:
            when = f"first at generation {reached} (CPU time not recorded)"
        found.append(
            Claim(
                f"{arm.name} ({_draw(arm)}): "
                f"unequal-length accuracy over {lengths} digits reaches {100 * bar:g}% while "
                f"equal-length accuracy stays within {100 * tolerance:g} points of {BASELINE}'s "
                f"last, within {config.target_minutes:g} CPU-minutes",
                f"{when}; at generation {max(series)}: unequal {100 * last[UNEQUAL]:.1f}% "
                f"({BASELINE} {100 * base[UNEQUAL]:.1f}%), equal {100 * last[EQUAL]:.1f}% "
                f"({BASELINE} {100 * base[EQUAL]:.1f}%), per length, unequal / equal: "
                f"{_per_length(config, last)}"
                + (f"; {clock[max(series)]:.1f} CPU-minutes in all" if clock else ""),
                reached is not None
                and bool(clock)
                and clock[reached] <= config.target_minutes + 1e-12,
                ClaimPlot(UNEQUAL, (BASELINE, arm.name), (bar, None)),
            )
        )
        robust = sorted(k for k in last if k.startswith("eval/robust_"))
        worse = {k: base[k] - last[k] for k in robust if k in base}
        found.append(
            Claim(
                f"{arm.name}: the cure trades no shape for another: on every robustness set "
                f"it is within {100 * tolerance:g} points of {BASELINE} or better",
                _robust(last, base),
                all(w <= tolerance + 1e-12 for w in worse.values()),
            )
        )
    return found


def _draw(arm: StarArm) -> str:
    if arm.unequal_share is not None:
        return f"seed set and pool drawn {100 * arm.unequal_share:g}% unequal sums"
    return f"the task's draw plus {100 * (arm.rare_share or 0):g}% more, all unequal sums"


def _robust(metrics: Metrics, baseline: Metrics | None = None) -> str:
    """`carry_chain 80% (star 60%), ...`: accuracy per robustness set."""
    return ", ".join(
        f"{k.removeprefix('eval/robust_')} {100 * v:.0f}%"
        + (f" ({BASELINE} {100 * baseline[k]:.0f}%)" if baseline and k in baseline else "")
        for k, v in sorted(metrics.items())
        if k.startswith("eval/robust_")
    )


def _per_length(config: StarConfig, metrics: Metrics) -> str:
    return ", ".join(
        f"{d}: {100 * metrics[f'eval/unequal_{d}_digits']:.0f} / "
        f"{100 * metrics[f'eval/equal_{d}_digits']:.0f}"
        for d in config.shape_lengths
        if f"eval/unequal_{d}_digits" in metrics
    )


def faithful_claims(
    config: StarConfig, table: dict[str, dict[int, Metrics]], minutes: dict[str, dict[int, float]]
) -> list[Claim]:
    """Right answers with wrong working at the longest trained length, as a share of right
    answers: the answer check lets them through (and its kept set fills with them); an arm
    whose verifier reads the working keeps it under the bar, at a stated cost."""
    longest = max(config.train_digits)
    key = f"eval/right_wrong_working_{longest}_digits"
    star = table.get(BASELINE)
    if not star or key not in star[max(star)]:
        return []
    base = star[max(star)]
    headline, _ = _headline(config, base)
    bar = config.target_wrong_working
    base_cpu = minutes.get(BASELINE, {}).get(max(star))
    found = []
    if config.verifier == "answer":
        kept = column(star, WRONG)
        found.append(
            Claim(
                f"{BASELINE}: the answer check keeps right answers reached by wrong working, and "
                f"the model learns them: at {longest} digits more than {100 * bar:g}% of its "
                "right answers have wrong working",
                (
                    f"{100 * base[key]:.1f}% of right answers"
                    if not math.isnan(base[key])
                    else f"not checked: no right answer at {longest} digits"
                )
                + f" at generation {max(star)}; kept "
                "rationales with wrong working: "
                + " -> ".join(f"{100 * v:.0f}%" for v in kept[:: max(1, len(kept) // 6)])
                + " (every few generations)",
                None if math.isnan(base[key]) else base[key] > bar,
                ClaimPlot(key, (), (None, bar)),
            )
        )
    for arm in config.arm_specs:
        series = table.get(arm.name)
        verifier = arm.verifier or config.verifier
        if arm.name == BASELINE or arm.method == "direct" or verifier == "answer" or not series:
            continue
        last = series[max(series)]
        cpu = minutes.get(arm.name, {}).get(max(series))
        cost = (
            f"; {cpu:.1f} vs {base_cpu:.1f} CPU-minutes"
            if cpu is not None and base_cpu is not None
            else ""
        )
        found.append(
            Claim(
                f"{arm.name} ({verifier} check): right answers with wrong working at {longest} "
                f"digits fall to {100 * bar:g}% of right answers or fewer",
                f"{100 * last[key]:.1f}% ({BASELINE} {100 * base[key]:.1f}%); held-out accuracy "
                f"{100 * last[headline]:.1f}% ({BASELINE} {100 * base[headline]:.1f}%), kept "
                f"{_mean(series, 'kept/size'):.0f} rationales per generation ({BASELINE} "
                f"{_mean(star, 'kept/size'):.0f}){cost}",
                None if math.isnan(last[key]) else last[key] <= bar,
                ClaimPlot(key, (BASELINE, arm.name), (None, bar)),
            )
        )
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
    for arm in config.arm_names:
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
