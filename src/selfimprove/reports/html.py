"""One self-contained HTML page per run (plots embedded as PNG), and the tour page."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path

from selfimprove.core.records import Claim
from selfimprove.core.store import RunStore
from selfimprove.reports.exhibits import exhibits_section
from selfimprove.reports.plots import (
    Series,
    families,
    plot_family,
    plot_metric,
    plot_sweep,
    plottable_keys,
    sweep_keys,
)

_AGAINST_TIME = ("pons/", "ladder/", "eval/in_play")
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(640px, 1fr)); gap: 8px; }
.plots img { width: 100%; }
.holds { color: #176317; font-weight: bold; } .fails { color: #a11; font-weight: bold; }
pre { background: #f6f6f6; padding: 0.8em; font-size: 0.8em; overflow-x: auto; }
details { margin: 0.5em 0; }
"""


def run_section(store: RunStore, claims: Sequence[Claim] = (), heading: str | None = None) -> str:
    info = store.info()
    arms: dict[str, Series] = {name: store.metrics(name) for name, _ in store.arms()}
    statuses = {name: store.current(status) for name, status in store.arms()}
    parts = [f"<h2>{html.escape(heading or info.id)}</h2>"]
    parts.append(
        f"<p>run <code>{html.escape(info.id)}</code> · kind <code>{html.escape(info.kind)}</code> · "
        f"seed {info.seed} · status <b>{html.escape(store.current(info.status))}</b> · started {info.created}</p>"
    )
    if claims:
        parts.append(_claims_table(claims))
    parts.append(_final_table(arms, statuses))
    sweep = sweep_keys(arms)
    if sweep is not None:
        for y_key in ("eval/accuracy_mean",):
            png = base64.b64encode(plot_sweep(arms, *sweep, y_key)).decode()
            parts.append(
                f'<img alt="sweep {html.escape(sweep[0])}" src="data:image/png;base64,{png}">'
            )
    for name, members in families(plottable_keys(arms)).items():
        png = base64.b64encode(plot_family(arms, name, members)).decode()
        parts.append(
            f'<img alt="{html.escape(name)}" src="data:image/png;base64,{png}" style="max-width:100%">'
        )
    parts.append('<div class="plots">')
    for key in plottable_keys(arms):
        if _constant(arms, key):
            continue  # the table shows it; a flat line says nothing
        png = base64.b64encode(plot_metric(arms, key)).decode()
        parts.append(f'<img alt="{html.escape(key)}" src="data:image/png;base64,{png}">')
    parts.append("</div>")
    timed = [k for k in plottable_keys(arms) if k.startswith(_AGAINST_TIME)]
    if timed:  # self-play progress is judged against compute time, as the papers report it
        minutes = {name: store.compute_minutes(name) for name in arms}
        parts.append('<h3>against training time</h3><div class="plots">')
        for key in timed:
            image = plot_metric(arms, key, f"{key} against time", minutes, "training minutes")
            data = base64.b64encode(image).decode()
            parts.append(
                f'<img alt="{html.escape(key)} (time)" src="data:image/png;base64,{data}">'
            )
        parts.append("</div>")
    parts.append(exhibits_section(store))
    parts.append(_decisions_table(store, arms))
    parts.append(_events_table(store))
    parts.append(_provenance_table(store, arms))
    config = json.dumps(info.config, indent=2)
    parts.append(
        f"<details><summary>resolved config</summary><pre>{html.escape(config)}</pre></details>"
    )
    return "\n".join(parts)


def write_page(path: Path, title: str, sections: Sequence[str], intro: str = "") -> Path:
    body = "\n".join(sections)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{intro}{body}</body></html>"
    )
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(page)
    temporary.replace(path)
    return path


def write_run_report(store: RunStore, claims: Sequence[Claim] = ()) -> Path:
    info = store.info()
    return write_page(
        store.run_dir / "report.html", f"selfimprove run {info.id}", [run_section(store, claims)]
    )


def _claims_table(claims: Sequence[Claim]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(c.text)}</td><td>{html.escape(c.measured)}</td>"
        f"<td class='{'holds' if c.holds else 'fails'}'>{'holds' if c.holds else 'does not hold'}</td></tr>"
        for c in claims
    )
    return f"<table><tr><th>claim</th><th>measured</th><th></th></tr>{rows}</table>"


def _final_table(arms: dict[str, Series], statuses: dict[str, str]) -> str:
    """Each arm's newest value of each headline metric (some are computed every N generations)."""
    keys = [k for k in plottable_keys(arms) if not k.startswith("monitor/")]
    header = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = []
    for arm, series in arms.items():
        if not series:
            continue
        newest = {k: series[g][k] for g in sorted(series) for k in keys if k in series[g]}
        cells = "".join(f"<td>{_number(newest.get(k))}</td>" for k in keys)
        status = statuses.get(arm, "")
        rows.append(
            f"<tr><td>{html.escape(arm)}</td><td>{status}</td><td>{max(series)}</td>{cells}</tr>"
        )
    table_head = f"<tr><th>arm</th><th>status</th><th>generation</th>{header}</tr>"
    return f"<table>{table_head}{''.join(rows)}</table>"


def _events_table(store: RunStore) -> str:
    events = store.events()
    if not events:
        return "<p>Event log: no alarms, rejections or halts.</p>"
    rows = "".join(
        f"<tr><td>{t}</td><td>{html.escape(a or '')}</td><td>{'' if g is None else g}</td>"
        f"<td>{html.escape(k)}</td><td>{html.escape(m)}</td></tr>"
        for t, a, g, k, m in events[:200]
    )
    more = f"<p>... and {len(events) - 200} more events.</p>" if len(events) > 200 else ""
    return (
        f"<details><summary>event log ({len(events)} events)</summary><table><tr><th>time</th>"
        f"<th>arm</th><th>generation</th><th>kind</th><th>message</th></tr>{rows}</table>{more}</details>"
    )


def _provenance_table(store: RunStore, arms: dict[str, Series]) -> str:
    rows = []
    for arm, series in arms.items():
        if not series:
            continue
        last = max(series)
        counts: dict[str, int] = {}
        models: dict[str, int] = {}
        for row in store.provenance(arm, last):
            counts[row.source] = counts.get(row.source, 0) + row.count
            models[row.model] = models.get(row.model, 0) + row.count
        total = sum(counts.values()) or 1
        mix = ", ".join(f"{s} {100 * n / total:.1f}%" for s, n in sorted(counts.items()))
        made = ", ".join(f"{html.escape(m)} ({n})" for m, n in models.items())
        rows.append(
            f"<tr><td>{html.escape(arm)}</td><td>{last}</td><td>{mix}</td><td>{made}</td></tr>"
        )
    return (
        "<details><summary>provenance of the last generation's kept data "
        "(<code>selfimprove show RUN --provenance</code> lists every generation)</summary><table>"
        "<tr><th>arm</th><th>generation</th><th>real / synthetic share</th>"
        f"<th>made by (samples)</th></tr>{''.join(rows)}</table></details>"
    )


def _decisions_table(store: RunStore, arms: dict[str, Series]) -> str:
    """Each arm's gate and alarm decisions: how many of each, and every one that was not an
    acceptance, with its reason."""
    rows, summary = [], []
    for arm in arms:
        decisions = store.decisions(arm)
        tally: dict[str, int] = {}
        for generation, (action, reason) in sorted(decisions.items()):
            tally[action] = tally.get(action, 0) + 1
            if action != "accept":
                rows.append(
                    f"<tr><td>{html.escape(arm)}</td><td>{generation}</td>"
                    f"<td class='fails'>{html.escape(action)}</td><td>{html.escape(reason)}</td></tr>"
                )
        counted = ", ".join(f"{n} {a}" for a, n in sorted(tally.items()))
        summary.append(f"<li>{html.escape(arm)}: {html.escape(counted)}</li>")
    if not rows:
        return f"<h3>decisions</h3><ul>{''.join(summary)}</ul><p>Every candidate was accepted.</p>"
    table = (
        "<table><tr><th>arm</th><th>generation</th><th>decision</th><th>reason</th></tr>"
        f"{''.join(rows)}</table>"
    )
    shown = "open" if len(rows) <= 20 else ""
    return (
        f"<h3>decisions</h3><ul>{''.join(summary)}</ul>"
        f"<details {shown}><summary>{len(rows)} candidates not accepted, and why</summary>"
        f"{table}</details>"
    )


def _constant(arms: dict[str, Series], key: str) -> bool:
    """A single arm's metric that never changed (a parameter count, say)."""
    values = [m[key] for series in arms.values() for m in series.values() if key in m]
    return len(arms) == 1 and len(values) > 1 and len(set(values)) == 1


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.4g}"
