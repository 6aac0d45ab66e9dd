"""Figures of metrics per generation, arms overlaid (matplotlib `Figure`s; `images.py` embeds
them).

Every figure has the registry's human title and a y axis label with its unit
(`reports/metrics.py`); generations are integer ticks; legends sit outside the axes. A
metric `x_median` with `x_q10` / `x_q90` beside it is drawn as a line with a band over
seeds; `analytic/<key>` is drawn dashed beside `<key>`; `axis/<name>` replaces the
generation as the x axis (log scale, and then log y for positive metrics: a scaling law is a
line). Arms whose series are identical are drawn once and named together. A metric with one
value per arm (no generations to speak of) is a dot plot, arms side by side.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from selfimprove.core.records import ClaimPlot, Metrics
from selfimprove.reports.metrics import describe

_LOG_SPAN = 30.0
_SIZE = (6.0, 3.3)
Series = dict[int, Metrics]  # generation -> metrics of one arm


def plottable_keys(arms: dict[str, Series]) -> list[str]:
    """Metric keys that get a figure of their own, in a stable order."""
    keys: set[str] = set()
    for series in arms.values():
        for metrics in series.values():
            keys.update(metrics)
    hidden = ("analytic/", "axis/", "sweep/")
    bounds = ("_q10", "_q90", "_low", "_high")  # drawn as bands around their metric
    shown = {k for k in keys if not k.startswith(hidden) and not k.endswith(bounds)}
    return sorted(shown, key=_display_order)


def _display_order(key: str) -> tuple[bool, bool, str]:
    """Headline metrics first: the study's own (`collapse/...`) medians and means, then the rest."""
    headline = key.endswith(("_median", "_mean"))
    return (not key.startswith("collapse/"), not headline, key)


def uninformative(arms: dict[str, Series], key: str) -> str | None:
    """Why a figure of `key` would carry no information (None: it would)."""
    values = [m[key] for s in arms.values() for m in s.values() if _finite(m.get(key))]
    if not values:
        return "no finite value"
    low, high = min(values), max(values)
    if high - low <= 1e-9 * max(1.0, abs(high)):
        return f"{_short(high)} in every arm and generation"
    return None


def x_axis(arms: dict[str, Series]) -> str | None:
    """The `axis/*` key every arm reports, if any."""
    common: set[str] | None = None
    for series in arms.values():
        keys = {k for metrics in series.values() for k in metrics if k.startswith("axis/")}
        common = keys if common is None else common & keys
    return sorted(common)[0] if common else None


def single_points(arms: dict[str, Series], key: str) -> bool:
    """Every arm has at most one value of `key`: there is no x axis to draw along."""
    return all(sum(_finite(m.get(key)) for m in s.values()) <= 1 for s in arms.values())


def metric_figure(
    arms: dict[str, Series],
    key: str,
    x_values: dict[str, dict[int, float]] | None = None,
    x_label: str = "",
) -> Figure:
    """One metric, arms overlaid; `x_values` (arm -> generation -> x) replaces the generation."""
    if single_points(arms, key):
        return dot_figure(arms, key)
    figure, ax = plt.subplots(figsize=_SIZE, dpi=90)
    _draw_lines(ax, arms, key, x_values, x_label)
    _legend(ax)
    return figure


def claim_figure(arms: dict[str, Series], plot: ClaimPlot, verdict: str) -> Figure:
    """The claim's own figure: its metric for the arms it names, the region where the newest
    value must land shaded green, the paper's or theory's value dashed."""
    chosen = {a: s for a, s in arms.items() if not plot.arms or a in plot.arms}
    if plot.x == "arm" or single_points(chosen, plot.metric):
        figure = dot_figure(chosen, plot.metric)
        ax = figure.axes[0]
    else:
        figure, ax = plt.subplots(figsize=(6.4, 3.6), dpi=90)
        _draw_lines(ax, chosen, plot.metric, None, "")
    if plot.holds_within is not None:
        low, high = plot.holds_within
        bottom, top = ax.get_ylim()
        span_low = bottom if low is None else low
        span_high = top if high is None else high
        ax.axhspan(span_low, span_high, color="#2ca02c", alpha=0.12, lw=0, label="claim holds here")
        ax.set_ylim(min(bottom, span_low), max(top, span_high))
    if plot.reference is not None:
        ax.axhline(
            plot.reference, color="0.35", ls="--", lw=1.2, label=plot.reference_label or "reference"
        )
    colour = {"holds": "#176317", "does not hold": "#a11111"}.get(verdict, "#555555")
    ax.text(
        0.01,
        0.98,
        verdict,
        transform=ax.transAxes,
        va="top",
        fontsize=9,
        color="white",
        bbox={"facecolor": colour, "edgecolor": "none", "pad": 2},
    )
    _legend(ax)
    return figure


def dot_figure(arms: dict[str, Series], key: str) -> Figure:
    """One value per arm (its newest), with its interval as an error bar: arms side by side."""
    info = describe(key)
    names, values, lows, highs = [], [], [], []
    for arm, series in arms.items():
        gens = [g for g in sorted(series) if _finite(series[g].get(key))]
        if not gens:
            continue
        metrics = series[gens[-1]]
        value = metrics[key]
        low, high = _bounds(metrics, key)
        names.append(arm)
        values.append(value)
        lows.append(value - low if low is not None else 0.0)
        highs.append(high - value if high is not None else 0.0)
    figure, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 2.0), 3.3), dpi=90)
    positions = list(range(len(names)))
    ax.errorbar(positions, values, yerr=[lows, highs], fmt="o", color="C0", capsize=4, ms=6)
    ax.set_xticks(positions, [_wrap(n) for n in names], fontsize=7)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_title(info.title, fontsize=10)
    ax.set_ylabel(info.axis, fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    _share_axis(ax, info.share, values)
    return figure


def _draw_lines(
    ax: Axes,
    arms: dict[str, Series],
    key: str,
    x_values: dict[str, dict[int, float]] | None,
    x_label: str,
) -> None:
    info = describe(key)
    if x_values is not None:
        arms = {
            arm: {
                g: m | {"axis/override": x_values[arm][g]}
                for g, m in s.items()
                if g in x_values.get(arm, {})
            }
            for arm, s in arms.items()
        }
    axis_key = x_axis(arms)
    values: list[float] = []
    theory_labelled = False
    for index, (names, series) in enumerate(_distinct(arms, key).items()):
        colour = f"C{index % 10}"
        gens = [g for g in sorted(series) if _finite(series[g].get(key))]
        xs = [series[g][axis_key] if axis_key else g for g in gens]
        ys = [series[g][key] for g in gens]
        values += ys
        label = " = ".join(names) + (" (identical)" if len(names) > 1 else "")
        marker = "o" if len(xs) <= 25 else None
        ax.plot(xs, ys, color=colour, label=_wrap(label), marker=marker, ms=3, lw=1.6)
        _band(ax, series, key, axis_key, colour)
        theory_labelled |= _analytic(ax, series, axis_key, key, colour, theory_labelled)
    ax.set_title(info.title, fontsize=10)
    ax.set_ylabel(info.axis, fontsize=8)
    if x_values is not None:
        ax.set_xlabel(x_label, fontsize=8)
    elif axis_key:
        ax.set_xlabel(axis_key.removeprefix("axis/").replace("_", " "), fontsize=8)
        ax.set_xscale("log")
    else:
        ax.set_xlabel("generation", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    positive = [v for v in values if v > 0]
    if info.share:
        _share_axis(ax, True, values)
    elif (
        positive
        and len(positive) == len(values)
        and (
            (axis_key is not None and x_values is None) or max(positive) / min(positive) > _LOG_SPAN
        )
    ):  # against a size axis, log-log shows a scaling law as a line
        ax.set_yscale("log")
    ax.grid(alpha=0.3)


def _distinct(arms: dict[str, Series], key: str) -> dict[tuple[str, ...], Series]:
    """Arms grouped by identical series of `key` (and its band): drawn once, named together."""
    groups: dict[tuple[object, ...], list[str]] = {}
    series_of: dict[tuple[object, ...], Series] = {}
    for arm, series in arms.items():
        signature = tuple(
            (g, series[g].get(key), series[g].get(f"{key}_q10"), series[g].get(f"{key}_q90"))
            for g in sorted(series)
            if _finite(series[g].get(key))
        )
        if not signature:
            continue
        groups.setdefault(signature, []).append(arm)
        series_of.setdefault(signature, series)
    return {tuple(names): series_of[sig] for sig, names in groups.items()}


def _share_axis(ax: Axes, share: bool, values: list[float]) -> None:
    """A share that moves over much of its range is drawn on 0..1; a small one keeps 0 in view."""
    if not share or not values:
        return
    if max(values) - min(values) > 0.2 or min(values) > 0.8:
        ax.set_ylim(-0.02, 1.02)
    else:
        ax.set_ylim(bottom=0.0)


def _bounds(metrics: Metrics, key: str) -> tuple[float | None, float | None]:
    stem = key.removesuffix("_median").removesuffix("_mean")
    for low_key, high_key in (
        (f"{key}_low", f"{key}_high"),
        (f"{stem}_low", f"{stem}_high"),
        (f"{stem}_q10", f"{stem}_q90"),
    ):
        low, high = metrics.get(low_key), metrics.get(high_key)
        if _finite(low) and _finite(high):
            return low, high
    return None, None


def _band(ax: Axes, series: Series, key: str, axis_key: str | None, colour: str) -> None:
    """Shade an interval (`_low .. _high`) or seed percentiles (`_q10 .. _q90`) over every
    generation that reports both ends."""
    points = []
    for g in sorted(series):
        low, high = _bounds(series[g], key)
        if low is not None and high is not None and _finite(series[g].get(key)):
            points.append((series[g][axis_key] if axis_key else g, low, high))
    if len(points) > 1:
        xs, lows, highs = zip(*points, strict=True)
        ax.fill_between(xs, lows, highs, color=colour, alpha=0.15, lw=0)


def _analytic(
    ax: Axes, series: Series, axis_key: str | None, key: str, colour: str, labelled: bool
) -> bool:
    """Draw the theory's curve dashed; returns whether it drew one."""
    theory = f"analytic/{key}"
    gens = [g for g in sorted(series) if _finite(series[g].get(theory))]
    if not gens:
        return False
    xs = [series[g][axis_key] if axis_key else g for g in gens]
    label = None if labelled else "theory (dashed)"
    ax.plot(xs, [series[g][theory] for g in gens], color=colour, ls="--", lw=1.2, label=label)
    return True


def _legend(ax: Axes) -> None:
    """Outside the axes, on the right: never over the data."""
    _, labels = ax.get_legend_handles_labels()
    if len(labels) > 1:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _wrap(text: str, width: int = 22) -> str:
    words, lines, line = text.split(" "), [], ""
    for word in words:
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _short(value: float) -> str:
    return f"{value:.4g}"


_MEMBER = re.compile(r"^(?P<head>.+)_(?P<n>\d+)(?:_(?P<tail>[a-z]+))?$")


def families(keys: Sequence[str]) -> dict[str, list[tuple[int, str]]]:
    """Keys that differ only by a number (`eval/accuracy_3_digits`, `class/share_of_digit_3`):
    family name (`eval/accuracy_N_digits`, `class/share_of_digit_N`) -> sorted (number, key).
    Only families of three or more."""
    found: dict[str, list[tuple[int, str]]] = {}
    for key in keys:
        match = _MEMBER.match(key)
        if match:
            tail = f"_{match['tail']}" if match["tail"] else ""
            name = f"{match['head']}_N{tail}"
            found.setdefault(name, []).append((int(match["n"]), key))
    return {name: sorted(members) for name, members in found.items() if len(members) >= 3}


def family_figure(arms: dict[str, Series], name: str, members: list[tuple[int, str]]) -> Figure:
    """One panel per arm, one line per member (the paper's 'accuracy per digit length per
    iteration' figure)."""
    figure, axes = plt.subplots(
        1, len(arms), figsize=(3.6 * len(arms) + 0.8, 3.2), dpi=90, sharey=True, squeeze=False
    )
    cmap = plt.get_cmap("viridis")
    info = describe(members[0][1])
    for ax, (arm, series) in zip(axes[0], arms.items(), strict=True):
        for index, (n, key) in enumerate(members):
            gens = [g for g in sorted(series) if _finite(series[g].get(key))]
            colour = cmap(index / max(len(members) - 1, 1))
            ax.plot(
                gens, [series[g][key] for g in gens], color=colour, marker="o", ms=3, label=str(n)
            )
        ax.set_title(arm, fontsize=9)
        ax.set_xlabel("generation", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(info.axis, fontsize=8)
    head, _, tail = name.partition("_N")
    unit = tail.lstrip("_") or head.rsplit("_", 1)[-1]  # what N counts
    axes[0][-1].legend(
        fontsize=7, title=unit, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False
    )
    title = re.sub(r"\b\d+\b", "N", info.short)
    figure.suptitle(f"{title}, one line per {unit}", fontsize=10)
    return figure


def sweep_keys(arms: dict[str, Series]) -> tuple[str, str] | None:
    """`(sweep/x/<name>, sweep/group/<name>)` when generation 0 of some arm carries both: a
    sweep of one setting (x) for several groups (say, temperature per student size)."""
    for series in arms.values():
        first = series.get(0, {})
        xs = [k for k in first if k.startswith("sweep/x/")]
        groups = [k for k in first if k.startswith("sweep/group/")]
        if xs and groups:
            return xs[0], groups[0]
    return None


def sweep_figure(arms: dict[str, Series], x_key: str, group_key: str, y_key: str) -> Figure:
    """`y_key` at generation 0 against `x_key`, one line per group value (with its
    `_low` / `_high` as error bars); arms without an x value (a baseline such as hard labels)
    are dashed horizontal lines in their group's colour."""
    points: dict[float, list[tuple[float, float, float, float]]] = {}
    baselines: dict[float, list[float]] = {}
    stem = y_key.removesuffix("_mean")
    for series in arms.values():
        m = series.get(0, {})
        if group_key not in m or y_key not in m:
            continue
        if x_key in m:
            low, high = m.get(f"{stem}_low", m[y_key]), m.get(f"{stem}_high", m[y_key])
            points.setdefault(m[group_key], []).append((m[x_key], m[y_key], low, high))
        else:
            baselines.setdefault(m[group_key], []).append(m[y_key])
    figure, ax = plt.subplots(figsize=(6.4, 3.6), dpi=90)
    groups = sorted(set(points) | set(baselines))
    cmap = plt.get_cmap("viridis")
    name = group_key.rsplit("/", 1)[-1].replace("_", " ")
    x_name = x_key.rsplit("/", 1)[-1].replace("_", " ")
    for index, group in enumerate(groups):
        colour = cmap(index / max(len(groups) - 1, 1))
        rows = sorted(points.get(group, []))
        if rows:
            xs, ys, lows, highs = zip(*rows, strict=True)
            err = [
                [y - lo for y, lo in zip(ys, lows, strict=True)],
                [h - y for y, h in zip(ys, highs, strict=True)],
            ]
            ax.errorbar(
                xs,
                ys,
                yerr=err,
                color=colour,
                marker="o",
                ms=4,
                capsize=3,
                label=f"{name} {group:g}",
            )
        for value in baselines.get(group, []):
            ax.axhline(value, color=colour, ls="--", lw=1.2, label=f"{name} {group:g}, no {x_name}")
    info = describe(y_key)
    ax.set_xlabel(x_name, fontsize=8)
    ax.set_ylabel(info.axis, fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(f"{info.short} against {x_name}", fontsize=10)
    _legend(ax)
    return figure
