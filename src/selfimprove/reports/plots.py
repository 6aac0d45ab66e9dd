"""Plots of metrics per generation, arms overlaid, as PNG bytes for embedding in HTML.

A metric `x_median` with `x_q10` / `x_q90` beside it is drawn as a line with a band over
seeds; `analytic/<key>` is drawn dashed beside `<key>`; `axis/<name>` replaces the
generation as the x axis (log scale, and then log y for positive metrics: a scaling law is a
line). Otherwise the y axis is logarithmic when positive values span more than `_LOG_SPAN`
times.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from selfimprove.core.records import Metrics

_LOG_SPAN = 30.0
_UNIT_INTERVAL = ("/precision", "/recall")
Series = dict[int, Metrics]  # generation -> metrics of one arm


def plottable_keys(arms: dict[str, Series]) -> list[str]:
    """Metric keys that get a plot of their own, in a stable order."""
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


def x_axis(arms: dict[str, Series]) -> str | None:
    """The `axis/*` key every arm reports, if any."""
    common: set[str] | None = None
    for series in arms.values():
        keys = {k for metrics in series.values() for k in metrics if k.startswith("axis/")}
        common = keys if common is None else common & keys
    return sorted(common)[0] if common else None


def plot_metric(
    arms: dict[str, Series],
    key: str,
    title: str | None = None,
    x_values: dict[str, dict[int, float]] | None = None,
    x_label: str = "",
) -> bytes:
    """One metric, arms overlaid; `x_values` (arm -> generation -> x) replaces the generation."""
    if x_values is not None:
        arms = {
            arm: {
                g: m | {"axis/override": x_values[arm][g]}
                for g, m in s.items()
                if g in x_values[arm]
            }
            for arm, s in arms.items()
        }
    axis_key = x_axis(arms)
    figure, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    values: list[float] = []
    theory_labelled = False
    for index, (arm, series) in enumerate(arms.items()):
        color = f"C{index % 10}"
        gens = [g for g in sorted(series) if _finite(series[g].get(key))]
        if not gens:
            continue
        xs = [series[g][axis_key] if axis_key else g for g in gens]
        ys = [series[g][key] for g in gens]
        values += ys
        ax.plot(xs, ys, color=color, label=arm, marker="o" if len(xs) <= 25 else None, ms=3, lw=1.6)
        _band(ax, series, gens, xs, key, color)
        theory_labelled |= _analytic(
            ax, series, axis_key, f"analytic/{key}", color, theory_labelled
        )
    ax.set_title(title or key, fontsize=11)
    if x_values is not None:
        ax.set_xlabel(x_label)
    else:
        ax.set_xlabel(
            axis_key.removeprefix("axis/").replace("_", " ") if axis_key else "generation"
        )
        if axis_key:
            ax.set_xscale("log")
    positive = [v for v in values if v > 0]
    if key.endswith(_UNIT_INTERVAL):
        ax.set_ylim(-0.02, 1.02)  # shares: a zoomed axis would make sampling noise look dramatic
    elif (
        positive
        and len(positive) == len(values)
        and (
            (axis_key is not None and x_values is None) or max(positive) / min(positive) > _LOG_SPAN
        )
    ):  # against a size axis, log-log shows a scaling law as a line
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(arms) > 1 or any(f"analytic/{key}" in m for s in arms.values() for m in s.values()):
        ax.legend(fontsize=7, loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _band(ax: Axes, series: Series, gens: list[int], xs: list[float], key: str, color: str) -> None:
    """Shade an interval (`<key>_low .. <key>_high`) or seed percentiles (`_q10 .. _q90`)."""
    stem = key.removesuffix("_median")
    pairs = (
        (f"{key}_low", f"{key}_high"),
        (f"{key}_q10", f"{key}_q90"),
        (f"{stem}_q10", f"{stem}_q90"),
    )
    for low_key, high_key in pairs:
        low = [series[g].get(low_key, math.nan) for g in gens]
        high = [series[g].get(high_key, math.nan) for g in gens]
        if all(math.isfinite(v) for v in low + high):
            ax.fill_between(xs, low, high, color=color, alpha=0.15, lw=0)
            return


def _analytic(
    ax: Axes, series: Series, axis_key: str | None, key: str, color: str, labelled: bool
) -> bool:
    """Draw the theory's curve dashed; returns whether it drew one."""
    gens = [g for g in sorted(series) if _finite(series[g].get(key))]
    if not gens:
        return False
    xs = [series[g][axis_key] if axis_key else g for g in gens]
    label = None if labelled else "theory (dashed)"
    ys = [series[g][key] for g in gens]
    ax.plot(xs, ys, color=color, ls="--", lw=1.2, alpha=0.8, label=label)
    return True


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


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


def plot_family(arms: dict[str, Series], name: str, members: list[tuple[int, str]]) -> bytes:
    """One panel per arm, one line per member (the paper's 'accuracy per digit length per
    iteration' figure)."""
    figure, axes = plt.subplots(
        1, len(arms), figsize=(4.2 * len(arms), 3.6), dpi=100, sharey=True, squeeze=False
    )
    cmap = plt.get_cmap("viridis")
    for ax, (arm, series) in zip(axes[0], arms.items(), strict=True):
        for index, (n, key) in enumerate(members):
            gens = [g for g in sorted(series) if _finite(series[g].get(key))]
            color = cmap(index / max(len(members) - 1, 1))
            ax.plot(
                gens, [series[g][key] for g in gens], color=color, marker="o", ms=3, label=str(n)
            )
        ax.set_title(arm, fontsize=10)
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
    head, _, tail = name.partition("_N")
    unit = tail.lstrip("_") or head.rsplit("_", 1)[-1]  # what N counts
    axes[0][0].set_ylabel(f"{head} per {tail.lstrip('_')}" if tail else head)
    axes[0][-1].legend(fontsize=7, title=unit, loc="best")
    title = f"{head} by {tail.lstrip('_')}" if tail else head
    figure.suptitle(title.replace("_", " "), fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


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


def plot_sweep(arms: dict[str, Series], x_key: str, group_key: str, y_key: str) -> bytes:
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
    figure, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    groups = sorted(set(points) | set(baselines))
    cmap = plt.get_cmap("viridis")
    name = group_key.rsplit("/", 1)[-1]
    for index, group in enumerate(groups):
        color = cmap(index / max(len(groups) - 1, 1))
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
                color=color,
                marker="o",
                ms=4,
                capsize=3,
                label=f"{name} {group:g}",
            )
        for value in baselines.get(group, []):
            ax.axhline(
                value,
                color=color,
                ls="--",
                lw=1.2,
                label=f"{name} {group:g}, no {x_key.rsplit('/', 1)[-1]}",
            )
    ax.set_xlabel(x_key.rsplit("/", 1)[-1])
    ax.set_ylabel(y_key)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{y_key} against {x_key.rsplit('/', 1)[-1]}", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
