"""One self-contained HTML page per run, and the tour page: contents first (every claim and
its verdict, failing claims first with their numbers), then per study the claims' own
figures, a table of final values, and every other figure grouped and collapsed.

A page is one file with its figures inline (small palette PNGs, `images.py`), no address
outside it, no horizontal overflow at 1400 px, and a filter box over the figures. Figures
that would carry no information (a constant metric) are left out, and the page says so.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from selfimprove.core.experiment import Measured, carried
from selfimprove.core.records import Claim, ClaimPlot
from selfimprove.core.store import RunStore
from selfimprove.reports.exhibits import exhibits_section
from selfimprove.reports.images import img_tag
from selfimprove.reports.metrics import describe
from selfimprove.reports.plots import (
    Series,
    claim_figure,
    families,
    family_figure,
    metric_figure,
    plottable_keys,
    sweep_figure,
    sweep_keys,
    uninformative,
)

_AGAINST_TIME = ("pons/", "ladder/", "eval/in_play")
_GROUPS = (
    ("collapse/", "the model itself"),
    ("monitor/", "monitors on the generated data"),
    ("eval/", "evaluation on held-out data"),
    ("val/", "validation (what the gate reads)"),
    ("pons/", "Connect Four test sets"),
    ("ladder/", "Elo ladder"),
    ("peers/", "against peer implementations"),
    ("class/", "class balance of generated samples"),
    ("hacking/", "the proxy and the intent (observed return, hidden performance)"),
    ("feedback/", "the feedback loop (what the model feeds itself, against the truth)"),
    ("facts/", "the model's facts against the knowledge base"),
    ("review/", "review"),
    ("kept/", "the kept data"),
    ("train/", "training"),
    ("model/", "model size"),
    ("timing/", "speed on this machine"),
)
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1340px;
  padding: 0 20px; color: #222; line-height: 1.4; overflow-wrap: anywhere; }
h1 { font-size: 1.6em; } h2 { margin-top: 2.2em; border-bottom: 1px solid #ccc; }
h3 { margin-top: 1.4em; }
.scroll { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
td.text { text-align: left; }
.verdict { white-space: nowrap; overflow-wrap: normal; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 600px), 1fr));
  gap: 10px; }
figure { margin: 0; } img { max-width: 100%; height: auto; }
figcaption { font-size: 0.8em; color: #444; }
.holds { color: #176317; font-weight: bold; } .fails { color: #a11; font-weight: bold; }
.unchecked { color: #666; font-weight: bold; }
pre { background: #f6f6f6; padding: 0.8em; font-size: 0.8em; white-space: pre-wrap; }
details { margin: 0.5em 0; } summary { cursor: pointer; }
nav li { margin: 0.15em 0; } .meta { color: #555; font-size: 0.9em; }
#filter { font-size: 1em; padding: 4px 8px; width: min(100%, 420px); }
"""
_SCRIPT = """
document.getElementById('filter').addEventListener('input', function () {
  const words = this.value.toLowerCase().split(/\\s+/).filter(Boolean);
  document.querySelectorAll('figure[data-search]').forEach(function (f) {
    const text = f.dataset.search;
    f.style.display = words.every(w => text.includes(w)) ? '' : 'none';
  });
  if (words.length) document.querySelectorAll('details.figures').forEach(d => d.open = true);
});
"""
_CSS_CLASS = {True: "holds", False: "fails", None: "unchecked"}


@dataclass(frozen=True)
class Study:
    """One section of a page: a run with its heading, its claims and its HTML."""

    title: str
    anchor: str
    claims: tuple[Claim, ...]
    html: str


def study(
    store: RunStore,
    claims: Sequence[Claim],
    title: str,
    anchor: str,
    figures_at: str | None = None,
) -> Study:
    section = run_section(store, claims, title, anchor, figures_at)
    return Study(title, anchor, tuple(claims), section)


def run_section(
    store: RunStore,
    claims: Sequence[Claim],
    heading: str,
    anchor: str,
    figures_at: str | None = None,
) -> str:
    """One run's section. With `figures_at` (a page with many runs, such as the tour's), the
    figures of every metric are left to the run's own report at that relative address, and
    the section keeps the claims with their figures, the tables and the exhibits."""
    info = store.info()
    arms: dict[str, Series] = {name: store.metrics(name) for name, _ in store.arms()}
    statuses = {name: store.current(status) for name, status in store.arms()}
    decisions = {name: store.decisions(name) for name in arms}
    parts = [f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>']
    parts.append(
        f"<p class='meta'>run <code>{html.escape(info.id)}</code> · kind "
        f"<code>{html.escape(info.kind)}</code> · seed {info.seed} · status "
        f"<b>{html.escape(store.current(info.status))}</b> · started {info.created}</p>"
    )
    if claims:
        parts.append(_claims_table(claims, anchor))
        # a claim reads the model each arm carried (a rejected candidate is not the model),
        # so its figure draws the same series
        measured = Measured(arms, {}, decisions)
        held = {name: carried(measured, name) for name in arms}
        parts.append(_claim_figures(held, claims, anchor))
    parts.append(_final_table(arms, statuses))
    if figures_at is None:
        parts.append(_metric_figures(store, arms))
    else:
        parts.append(
            f"<p class='meta'>Every metric's figure: <a href='{html.escape(figures_at)}'>"
            "the run's own report</a>.</p>"
        )
    parts.append(exhibits_section(store))
    parts.append(_decisions_table(decisions))
    parts.append(_events_table(store))
    parts.append(_provenance_table(store, arms))
    config = json.dumps(info.config, indent=2)
    parts.append(
        f"<details><summary>resolved config</summary><pre>{html.escape(config)}</pre></details>"
    )
    parts.append("</section>")
    return "\n".join(parts)


def write_page(path: Path, title: str, studies: Sequence[Study], intro: str = "") -> Path:
    """The page: title, intro, contents (failing claims first), then every study."""
    body = "\n".join(s.html for s in studies)
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{intro}{_contents(studies)}{body}"
        f"<script>{_SCRIPT}</script></body></html>"
    )
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(page)
    temporary.replace(path)
    return path


def write_run_report(store: RunStore, claims: Sequence[Claim] = ()) -> Path:
    info = store.info()
    section = study(store, claims, info.id, "run")
    return write_page(store.run_dir / "report.html", f"selfimprove run {info.id}", [section])


def tally(claims: Sequence[Claim]) -> str:
    """`5 of 7 claims hold, 1 does not, 1 not checked at these settings`."""
    held = sum(c.holds is True for c in claims)
    failed = sum(c.holds is False for c in claims)
    unchecked = sum(c.holds is None for c in claims)
    text = f"{held} of {len(claims)} claims hold"
    if failed:
        text += f", {failed} {'does' if failed == 1 else 'do'} not"
    if unchecked:
        text += f", {unchecked} not checked at these settings"
    return text


def _contents(studies: Sequence[Study]) -> str:
    claims = [c for s in studies for c in s.claims]
    parts = ["<nav id='contents'><h2>Contents</h2>"]
    if claims:
        parts.append(f"<p><b>{html.escape(tally(claims))}</b>.</p>")
    for verdict, heading in ((False, "Claims that do not hold"), (None, "Not checked")):
        rows = [
            f"<li><a href='#{s.anchor}-claim-{i}'>{html.escape(s.title)}</a>: "
            f"{html.escape(c.text)} — <i>{html.escape(c.measured)}</i></li>"
            for s in studies
            for i, c in enumerate(s.claims)
            if c.holds is verdict
        ]
        if rows:
            css = _CSS_CLASS[verdict]
            parts.append(f"<h3 class='{css}'>{heading} ({len(rows)})</h3><ol>{''.join(rows)}</ol>")
    if len(studies) > 1 or claims:
        items = []
        for s in studies:
            marks = "".join(
                f"<li><span class='{_CSS_CLASS[c.holds]}'>{c.verdict}</span> "
                f"<a href='#{s.anchor}-claim-{i}'>{html.escape(c.text)}</a></li>"
                for i, c in enumerate(s.claims)
            )
            count = f" — {html.escape(tally(s.claims))}" if s.claims else ""
            items.append(
                f"<li><a href='#{s.anchor}'>{html.escape(s.title)}</a>{count}<ul>{marks}</ul></li>"
            )
        parts.append(f"<h3>Studies</h3><ol>{''.join(items)}</ol>")
    parts.append(
        "<p><label>Filter figures: <input id='filter' type='search' "
        "placeholder='a metric title or key, e.g. sigma, monitor/'></label></p></nav>"
    )
    return "\n".join(parts)


def _claims_table(claims: Sequence[Claim], anchor: str) -> str:
    rows = "".join(
        f"<tr id='{anchor}-claim-{i}'><td class='text'>{html.escape(c.text)}</td>"
        f"<td class='text'>{html.escape(c.measured)}</td>"
        f"<td class='verdict {_CSS_CLASS[c.holds]}'>{c.verdict}</td></tr>"
        for i, c in enumerate(claims)
    )
    header = "<tr><th>claim</th><th>measured</th><th class='verdict'>verdict</th></tr>"
    table = f"<table>{header}{rows}</table>"
    return f"<div class='scroll'>{table}</div>"


def _claim_figures(arms: dict[str, Series], claims: Sequence[Claim], anchor: str) -> str:
    """One figure per distinct `ClaimPlot`, captioned with the claims it shows."""
    groups: dict[ClaimPlot, list[tuple[int, Claim]]] = {}
    for index, claim in enumerate(claims):
        if claim.plot is not None and _has_metric(arms, claim.plot):
            groups.setdefault(claim.plot, []).append((index, claim))
    figures = []
    for plot, members in groups.items():
        verdicts = {c.holds for _, c in members}
        verdict = members[0][1].verdict if len(verdicts) == 1 else "mixed"
        caption = "<br>".join(
            f"<a href='#{anchor}-claim-{i}' class='{_CSS_CLASS[c.holds]}'>{c.verdict}</a> "
            f"{html.escape(c.text)}"
            for i, c in members
        )
        image = img_tag(claim_figure(arms, plot, verdict), f"{describe(plot.metric).title}")
        search = html.escape(f"{plot.metric} {describe(plot.metric).title} claim".lower())
        figures.append(
            f"<figure data-search='{search}'>{image}<figcaption>{caption} "
            f"<code>{html.escape(plot.metric)}</code></figcaption></figure>"
        )
    if not figures:
        return ""
    return f"<div class='plots'>{''.join(figures)}</div>"


def _has_metric(arms: dict[str, Series], plot: ClaimPlot) -> bool:
    return any(
        plot.metric in m
        for a, s in arms.items()
        if not plot.arms or a in plot.arms
        for m in s.values()
    )


def _metric_figures(store: RunStore, arms: dict[str, Series]) -> str:
    """Every other metric's figure, grouped by what it measures, each group collapsed."""
    keys = plottable_keys(arms)
    empty = {k: why for k in keys if (why := uninformative(arms, k)) is not None}
    shown = [k for k in keys if k not in empty]
    in_family = {key for _, members in families(shown).items() for _, key in members}
    figures: dict[str, list[str]] = {}
    for name, members in families(shown).items():
        figure = family_figure(arms, name, members)
        title = figure.texts[0].get_text() if figure.texts else name
        figures.setdefault(_group(name), []).append(_figure(figure, name, title))
    sweep = sweep_keys(arms)
    swept = {m[sweep[0]] for s in arms.values() for m in s.values() if sweep and sweep[0] in m}
    if sweep is not None and len(swept) > 1:  # one swept value is no sweep to draw
        figure = sweep_figure(arms, *sweep, "eval/accuracy_mean")
        title = figure.axes[0].get_title()
        figures.setdefault(_group("eval/"), []).append(_figure(figure, sweep[0], title))
    for key in shown:
        if key not in in_family:
            figures.setdefault(_group(key), []).append(_figure(metric_figure(arms, key), key))
    timed = [k for k in shown if k.startswith(_AGAINST_TIME) and k not in in_family]
    if timed:  # self-play progress is judged against compute time, as the papers report it
        minutes = {name: store.compute_minutes(name) for name in arms}
        for key in timed:
            figure = metric_figure(arms, key, minutes, "training minutes (wall clock)")
            figures.setdefault("against training time", []).append(_figure(figure, key))
    parts = [f"<h3>All metrics ({sum(len(f) for f in figures.values())} figures)</h3>"]
    for group, items in figures.items():
        parts.append(
            f"<details class='figures'><summary>{html.escape(group)} ({len(items)})</summary>"
            f"<div class='plots'>{''.join(items)}</div></details>"
        )
    if empty:
        left = "; ".join(
            f"<code>{html.escape(k)}</code> ({html.escape(why)})" for k, why in empty.items()
        )
        parts.append(f"<p class='meta'>Left out, a figure would carry no information: {left}.</p>")
    return "\n".join(parts)


def _figure(figure: Figure, key: str, title: str | None = None) -> str:
    info = describe(key)
    title = title or info.title
    search = html.escape(f"{key} {title}".lower())
    image = img_tag(figure, title)
    return (
        f"<figure data-search='{search}'>{image}<figcaption><code>{html.escape(key)}</code> "
        f"{html.escape(info.description)}</figcaption></figure>"
    )


def _group(key: str) -> str:
    for prefix, name in _GROUPS:
        if key.startswith(prefix):
            return name
    return "other"


def _final_table(arms: dict[str, Series], statuses: dict[str, str]) -> str:
    """Each arm's newest value of each headline metric: one row per metric, one column per
    arm (arms are few, metrics many: the table grows down, not across)."""
    live = {arm: s for arm, s in arms.items() if s}
    if not live:
        return "<p>No generation finished yet.</p>"
    keys = [k for k in plottable_keys(live) if not k.startswith(("monitor/", "class/"))]
    newest = {
        arm: {k: s[g][k] for g in sorted(s) for k in keys if k in s[g]} for arm, s in live.items()
    }
    head = "".join(f"<th>{html.escape(arm)}</th>" for arm in live)
    rows = [
        "<tr><td>status (generation)</td>"
        + "".join(
            f"<td>{html.escape(statuses.get(a, ''))} ({max(s)})</td>" for a, s in live.items()
        )
        + "</tr>"
    ]
    for key in keys:
        info = describe(key)
        cells = "".join(f"<td>{_number(newest[arm].get(key))}</td>" for arm in live)
        rows.append(
            f"<tr><td title='{html.escape(info.description)}'>{html.escape(info.title)} "
            f"<code>{html.escape(key)}</code></td>{cells}</tr>"
        )
    table = f"<table><tr><th>newest value</th>{head}</tr>{''.join(rows)}</table>"
    return f"<h3>Final values</h3><div class='scroll'>{table}</div>"


def _events_table(store: RunStore) -> str:
    """Events summarized by arm and kind (a guarded run logs hundreds), then the first 200."""
    events = store.events()
    if not events:
        return "<p>Event log: no alarms, rejections or halts.</p>"
    summary: dict[tuple[str, str], list[int]] = {}
    for _, arm, generation, kind, _ in events:
        summary.setdefault((arm or "-", kind), []).append(-1 if generation is None else generation)
    lines = "".join(
        f"<tr><td>{html.escape(arm)}</td><td>{html.escape(kind)}</td><td>{len(gens)}</td>"
        f"<td>{min(gens)}–{max(gens)}</td></tr>"
        for (arm, kind), gens in summary.items()
    )
    times = {t for t, *_ in events}
    show_time = len(times) > 1
    rows = "".join(
        "<tr>"
        + (f"<td>{t}</td>" if show_time else "")
        + f"<td>{html.escape(a or '')}</td><td>{'' if g is None else g}</td>"
        f"<td>{html.escape(k)}</td><td class='text'>{html.escape(m)}</td></tr>"
        for t, a, g, k, m in events[:200]
    )
    more = f"<p>... and {len(events) - 200} more events.</p>" if len(events) > 200 else ""
    when = "" if show_time else f" (all logged at {next(iter(times))})"
    time_head = "<th>time</th>" if show_time else ""
    return (
        f"<h3>Events ({len(events)})</h3><div class='scroll'><table><tr><th>arm</th><th>kind</th>"
        f"<th>count</th><th>generations</th></tr>{lines}</table></div>"
        f"<details><summary>every event{when}</summary><div class='scroll'><table><tr>"
        f"{time_head}<th>arm</th><th>generation</th><th>kind</th><th>message</th></tr>{rows}"
        f"</table></div>{more}</details>"
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
            f"<tr><td>{html.escape(arm)}</td><td>{last}</td><td class='text'>{mix}</td>"
            f"<td class='text'>{made}</td></tr>"
        )
    return (
        "<details><summary>provenance of the last generation's kept data "
        "(<code>selfimprove show RUN --provenance</code> lists every generation)</summary>"
        "<div class='scroll'><table><tr><th>arm</th><th>generation</th>"
        f"<th>real / synthetic share</th><th>made by (samples)</th></tr>{''.join(rows)}</table>"
        "</div></details>"
    )


def _decisions_table(decisions_by_arm: dict[str, dict[int, tuple[str, str]]]) -> str:
    """Each arm's gate and alarm decisions: how many of each, and every one that was not an
    acceptance, with its reason."""
    rows, summary = [], []
    for arm, decisions in decisions_by_arm.items():
        counted: dict[str, int] = {}
        for generation, (action, reason) in sorted(decisions.items()):
            counted[action] = counted.get(action, 0) + 1
            if action != "accept":
                rows.append(
                    f"<tr><td>{html.escape(arm)}</td><td>{generation}</td>"
                    f"<td class='fails'>{html.escape(action)}</td>"
                    f"<td class='text'>{html.escape(reason)}</td></tr>"
                )
        text = ", ".join(f"{n} {a}" for a, n in sorted(counted.items()))
        summary.append(f"<li>{html.escape(arm)}: {html.escape(text)}</li>")
    if not rows:
        return f"<h3>Decisions</h3><ul>{''.join(summary)}</ul><p>Every candidate was accepted.</p>"
    table = (
        "<div class='scroll'><table><tr><th>arm</th><th>generation</th><th>decision</th>"
        f"<th>reason</th></tr>{''.join(rows)}</table></div>"
    )
    shown = "open" if len(rows) <= 20 else ""
    return (
        f"<h3>Decisions</h3><ul>{''.join(summary)}</ul>"
        f"<details {shown}><summary>{len(rows)} candidates not accepted, and why</summary>"
        f"{table}</details>"
    )


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.4g}"


def anchor_of(title: str, index: int) -> str:
    """A page anchor for a study: `s3-e1-a-gaussian`."""
    words = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40]
    return f"s{index}-{words}"
