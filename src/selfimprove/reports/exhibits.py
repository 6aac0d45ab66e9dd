"""What a run shows besides its metrics: samples per generation (text, image grids) and the
distribution of a per-sample score per generation, from the exhibits `evaluate` stored.

Exhibit names and shapes: `samples` (a list of strings), `grid` (`{"count", "side",
"pixels"}`: base64 of uint8 images), and any list of numbers (drawn as histograms).
"""

from __future__ import annotations

import base64
import html

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from selfimprove.core.store import RunStore
from selfimprove.reports.images import img_tag

_GRID_COLUMNS = 20


def grid_figure(arm: str, grids: dict[int, dict[str, object]]) -> Figure:
    """One row of sample images per generation."""
    rows = []
    for generation, grid in sorted(grids.items()):
        side = int(str(grid["side"]))
        pixels = np.frombuffer(base64.b64decode(str(grid["pixels"])), dtype=np.uint8)
        images = pixels.reshape(-1, side, side)[:_GRID_COLUMNS]
        row = np.ones((side, _GRID_COLUMNS * (side + 2)), dtype=np.uint8) * 255
        for index, image in enumerate(images):
            row[:, index * (side + 2) : index * (side + 2) + side] = 255 - image
        rows.append((generation, row))
    figure, axes = plt.subplots(
        len(rows), 1, figsize=(12, 0.75 * len(rows) + 0.4), dpi=100, squeeze=False
    )
    for ax, (generation, row) in zip(axes[:, 0], rows, strict=True):
        ax.imshow(row, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"gen {generation}", rotation=0, ha="right", va="center", fontsize=9)
    figure.suptitle(f"{arm}: samples of each generation's model", fontsize=11)
    return figure


def histogram_figure(name: str, arms: dict[str, dict[int, list[float]]]) -> Figure:
    """One panel per arm; one outline histogram per generation (early dark, late light)."""
    values = [v for series in arms.values() for gen in series.values() for v in gen]
    edges = np.histogram_bin_edges(values, bins=40)
    figure, axes = plt.subplots(
        1, len(arms), figsize=(4.2 * len(arms), 3.4), dpi=100, sharey=True, squeeze=False
    )
    cmap = plt.get_cmap("viridis")
    for ax, (arm, series) in zip(axes[0], arms.items(), strict=True):
        last = max(series) if series else 1
        for generation, gen_values in sorted(series.items()):
            ax.hist(
                gen_values,
                bins=edges,
                histtype="step",
                density=True,
                color=cmap(generation / max(last, 1)),
                label=f"gen {generation}",
            )
        ax.set_title(arm, fontsize=10)
        ax.set_xlabel(name.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("density")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.suptitle(f"{name.replace('_', ' ')}: distribution per generation", fontsize=11)
    return figure


def exhibits_section(store: RunStore) -> str:
    """The exhibits of every arm: image grids, histograms across arms, sample text."""
    arms = [name for name, _ in store.arms()]
    names = {arm: store.exhibit_names(arm) for arm in arms}
    if not any(names.values()):
        return ""
    parts = ["<h3>Samples and distributions per generation</h3>"]
    for arm in arms:
        if "grid" in names[arm]:
            figure = grid_figure(arm, store.exhibits(arm, "grid"))
            parts.append(img_tag(figure, f"{arm}: samples of each generation's model"))
    numeric = sorted({n for arm in arms for n in names[arm] if n not in ("grid", "samples")})
    for name in numeric:
        series = {arm: store.exhibits(arm, name) for arm in arms if name in names[arm]}
        figure = histogram_figure(name, series)
        parts.append(img_tag(figure, f"{name.replace('_', ' ')}: distribution per generation"))
    for arm in arms:
        if "samples" not in names[arm]:
            continue
        rows = []
        for generation, texts in sorted(store.exhibits(arm, "samples").items()):
            shown = "\n---\n".join(str(t) for t in texts[:2])
            rows.append(f"<b>generation {generation}</b><pre>{html.escape(shown)}</pre>")
        parts.append(
            f"<details><summary>{html.escape(arm)}: sample text of each generation's model"
            f"</summary>{''.join(rows)}</details>"
        )
    return "\n".join(parts)
