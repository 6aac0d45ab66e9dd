"""What each command does, once its arguments have parsed (this module imports the
experiments, and torch behind them; `selfimprove.cli` imports it only after parsing)."""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from selfimprove.cli import one_line
from selfimprove.cli.progress import progress_bars
from selfimprove.core.config import ConfigError, field_docs
from selfimprove.core.engine import NondeterminismError
from selfimprove.core.garbage import collect_garbage
from selfimprove.core.memory import peak_bytes
from selfimprove.core.names import did_you_mean
from selfimprove.core.records import Claim
from selfimprove.core.snapshot import SnapshotError
from selfimprove.core.store import (
    CorruptRunError,
    RunBusyError,
    RunNotFoundError,
    RunStore,
    list_runs,
)
from selfimprove.core.tracking import attach_report
from selfimprove.oversight.audit import AuditError
from selfimprove.oversight.queue import ReviewError, ReviewQueue
from selfimprove.recipes import TOUR, find_recipes
from selfimprove.reports.metrics import describe

if TYPE_CHECKING:
    from selfimprove.core.engine import Progress
    from selfimprove.experiments import RunResult
    from selfimprove.reports.plots import Series

# The experiments (and torch behind them) are imported by the commands that run or read a
# model, not at the top: `runs`, `gc`, `recipes` and `show` answer in under a second.

USER_ERRORS = (
    ConfigError,
    RunNotFoundError,
    RunBusyError,
    CorruptRunError,
    NondeterminismError,
    SnapshotError,
    ReviewError,
    AuditError,
)
# No markup: arm names, claims, recipe headers and typed input are shown as they are (a
# `[/b]` in an arm's name is text, not a style tag that would end the run in an error).
console = Console(stderr=True, markup=False)
out = Console(width=None if sys.stdout.isatty() else 240, markup=False)  # piped: never cut ids


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; a user's mistake is one line on stderr and exit code 2."""
    try:
        _check_runs_dir(args.runs_dir)
        return HANDLERS[args.command](args)
    except USER_ERRORS as error:
        print(f"selfimprove: error: {one_line(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("selfimprove: interrupted; `selfimprove resume RUN` continues a run", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as rich does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:  # the file system said no: a folder missing, no space, no right
        where = f": {error.filename}" if error.filename else ""
        print(
            f"selfimprove: error: {one_line(f'{error.strerror or error}{where}')}", file=sys.stderr
        )
        return 2


def _check_runs_dir(runs_dir: Path) -> None:
    if runs_dir.exists() and not runs_dir.is_dir():
        raise ConfigError(f"--runs-dir {runs_dir}: not a folder")


def _write_report(
    run: str | Path, runs_dir: Path, tracking: bool = True
) -> tuple[Path, list[Claim]]:
    """Check the run's claims against its metrics and write its HTML report (and attach it
    to the run's experiment tracker, unless `tracking` is off)."""
    from selfimprove.experiments import claims_for, parse_config
    from selfimprove.reports.html import write_run_report

    store = RunStore.open(run, runs_dir)
    try:
        config = parse_config(store.info().config, store.run_dir.name)
        claims = claims_for(config, store)
        path = write_run_report(store, claims)
    finally:
        store.close()
    if tracking and config.tracking is not None:  # the tracked run's last artifact
        attach_report(config.tracking, store.run_dir, path)
    return path, claims


def _wall(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _print_claims(claims: list[Claim]) -> None:
    styles = {True: "green", False: "red", None: "yellow"}
    for claim in claims:
        line = Text.assemble(
            "  ", (claim.verdict, styles[claim.holds]), f"  {claim.text}: {claim.measured}"
        )
        console.print(line)


def _finish(result: RunResult, runs_dir: Path, started: float, tracking: bool = True) -> int:
    path, claims = _write_report(result.run_dir, runs_dir, tracking)
    _print_claims(claims)
    console.print(f"run {result.run_id} {result.status} in {_wall(time.monotonic() - started)}")
    console.print(f"report: {path}")
    out.print(result.run_id)
    return 0


def _run(args: argparse.Namespace) -> int:
    from selfimprove.experiments import build_arms, load_config, start_run

    if args.explain is not None:
        return _explain(args.explain)
    if args.config is None:
        raise ConfigError("run: give a recipe (a YAML file), or --explain KIND")
    config = load_config(args.config, args.overrides)
    if args.check:
        arms = build_arms(config)
        peak = peak_bytes(config) / 2**30
        out.print(f"ok: {config.kind}, {len(arms)} arm(s), about {peak:.2f} GiB at peak")
        return 0
    started = time.monotonic()
    with progress_bars(console) as progress:
        result = start_run(config, args.runs_dir, progress)
        result = _follow(result, args, progress)
    return _finish(result, args.runs_dir, started)


def _resume(args: argparse.Namespace) -> int:
    from selfimprove.experiments import resume_run

    started = time.monotonic()
    with progress_bars(console) as progress:
        result = resume_run(args.run, args.runs_dir, progress, tracking=args.tracking)
        result = _follow(result, args, progress)
    return _finish(result, args.runs_dir, started, args.tracking)


POLL_SECONDS = 1.0


def _follow(result: RunResult, args: argparse.Namespace, progress: Progress) -> RunResult:
    """With --wait: while the run waits for review, poll its queue and continue it as soon as
    no item is left open (Ctrl+C stops waiting; `resume` continues later)."""
    from selfimprove.experiments import resume_run

    while args.wait and result.status == "waiting":
        with ReviewQueue.open(result.run_dir, create=False) as queue:
            counts = queue.counts()
            left = counts["pending"] + counts["disputed"]
            if left:
                console.print(
                    f"waiting for review: {left} items open (selfimprove review "
                    f"{result.run_id}, or selfimprove serve); polling",
                    highlight=False,
                )
            while left:
                time.sleep(POLL_SECONDS)
                counts = queue.counts()
                left = counts["pending"] + counts["disputed"]
        tracking = getattr(args, "tracking", True)  # `resume --no-tracking`
        result = resume_run(result.run_dir, args.runs_dir, progress, tracking=tracking)
    return result


def _recipes(args: argparse.Namespace) -> int:
    del args
    table = Table("recipe", "kind", "what it runs", title="`selfimprove run NAME` runs one")
    for recipe in find_recipes():
        table.add_row(recipe.name, recipe.kind, recipe.summary)
    out.print(table)
    return 0


def _arm_count(info_id: str, runs_dir: Path) -> str:
    try:
        store = RunStore.open(info_id, runs_dir)
    except USER_ERRORS:
        return "-"
    try:
        return str(len(store.arms()))
    finally:
        store.close()


def _status(status: str, run_dir: Path) -> str:
    """A waiting run's status says how many review items wait for people."""
    if status != "waiting" or not ReviewQueue.exists(run_dir):
        return status
    with ReviewQueue.open(run_dir, create=False) as queue:
        counts = queue.counts()
    waiting = counts["pending"] + counts["disputed"]
    return f"waiting: {waiting} to review" if waiting else status


def _runs(args: argparse.Namespace) -> int:
    infos = list_runs(args.runs_dir)
    if not infos:
        where = args.runs_dir.resolve()
        console.print(
            f"no runs in {where}; `--runs-dir` names another folder",
            highlight=False,
            soft_wrap=True,
        )
        return 0
    table = Table("run", "kind", "status", "started", "arms")
    for info in infos:
        broken = info.status.startswith("broken")
        arms = "-" if broken else _arm_count(info.id, args.runs_dir)
        table.add_row(
            info.id, info.kind, _status(info.status, args.runs_dir / info.id), info.created, arms
        )
    out.print(table)
    return 0


def _explain(kind: str) -> int:
    from selfimprove.experiments import experiment_of

    experiment = experiment_of(kind, "--explain")
    table = Table("field", "type", "default", "description", title=f"{kind}: {experiment.summary}")
    for doc in field_docs(experiment.config):
        table.add_row(doc.path, doc.type, doc.default, doc.description)
    out.print(table)
    return 0


def _show_provenance(store: RunStore) -> None:
    for arm, status in store.arms():
        table = Table(
            "generation",
            "kept",
            "source",
            "made in",
            "model",
            "verifier",
            "verdict",
            "revision",
            title=f"{arm} ({store.current(status)}): provenance of what each generation kept",
        )
        for row in store.provenance(arm):
            verdict = {True: "passed", False: "failed", None: "-"}[row.passed]
            table.add_row(
                str(row.generation),
                str(row.count),
                row.source,
                str(row.origin_generation),
                f"{row.origin_arm}: {row.model}" if row.origin_arm else row.model,
                row.verifier or "-",
                verdict,
                str(row.revision),
            )
        out.print(table)


def _chosen_metrics(every: dict[str, Series], keys: list[str], pattern: str | None) -> list[str]:
    """The metric keys `show` prints: the first six (monitors aside), or every key (of
    `keys`, all the run's) matching one of the comma-separated shell patterns."""
    from selfimprove.reports.plots import plottable_keys

    if pattern is None:
        return [k for k in plottable_keys(every) if not k.startswith("monitor/")][:6]
    patterns = [p.strip() for p in pattern.split(",") if p.strip()]
    chosen = [k for k in keys if any(fnmatch.fnmatchcase(k, p) for p in patterns)]
    if not chosen:
        hint = did_you_mean(patterns[0] if patterns else "", keys)
        groups = sorted({k.split("/")[0] + "/*" for k in keys})
        raise ConfigError(
            f"show --metrics {pattern!r}: matches none of this run's metrics{hint} "
            f"(its groups: {', '.join(groups)}; `--metrics list` names every metric)"
        )
    return chosen


def _list_metrics(keys: list[str]) -> None:
    table = Table("metric", "title", "axis (unit)", "what it measures")
    for key in keys:
        info = describe(key)
        table.add_row(key, info.title, info.axis, info.description)
    out.print(table)


def _show(args: argparse.Namespace) -> int:
    store = RunStore.open(args.run, args.runs_dir)
    try:
        if args.provenance:
            _show_provenance(store)
            return 0
        statuses = store.arms()
        every = {arm: store.metrics(arm) for arm, _ in statuses}  # read once
        keys = sorted({k for series in every.values() for m in series.values() for k in m})
        if args.metrics == "list":
            _list_metrics(keys)
            return 0
        shown = _chosen_metrics(every, keys, args.metrics)
        for arm, status in statuses:
            series, decisions = every[arm], store.decisions(arm)
            title = f"{arm} ({store.current(status)})"
            table = Table("generation", "decision", *shown, title=title)
            step = max(1, len(series) // max(1, args.rows))
            for generation in sorted(series):
                if generation % step and generation != max(series):
                    continue
                action = decisions.get(generation, ("", ""))[0]
                values = (f"{series[generation].get(k, float('nan')):.4g}" for k in shown)
                table.add_row(str(generation), action, *values)
            out.print(table)
        legend = "; ".join(f"{k}: {describe(k).title} [{describe(k).axis}]" for k in shown)
        if args.metrics is None and len(keys) > len(shown):
            legend += (
                f" ({len(keys) - len(shown)} more metrics: `--metrics list` names them, "
                "`--metrics 'monitor/*'` shows a group)"
            )
        console.print(legend, highlight=False, soft_wrap=True)
    finally:
        store.close()
    return 0


def _report(args: argparse.Namespace) -> int:
    path, _ = _write_report(args.run, args.runs_dir)
    out.print(str(path))
    return 0


def _export(args: argparse.Namespace) -> int:
    if args.out.is_dir():
        raise ConfigError(f"--out {args.out}: is a folder; give a file name, e.g. kept.jsonl")
    if not args.out.parent.is_dir():
        raise ConfigError(f"--out {args.out}: folder {args.out.parent} does not exist")
    if args.format != "trl":
        from selfimprove.oversight.exports import export_reviewed

        count = export_reviewed(_run_dir(args.run, args.runs_dir), args.format, args.out)
        console.print(f"{count} reviewed items as {args.format}")
        out.print(str(args.out))
        return 0
    from selfimprove.experiments import export_kept

    arm, generation, count = export_kept(args.run, args.runs_dir, args.arm, args.out)
    console.print(f"{count} records kept by {arm} at generation {generation}")
    out.print(str(args.out))
    return 0


def _tour(args: argparse.Namespace) -> int:
    from selfimprove.tour import run_tour

    started = time.monotonic()
    with progress_bars(console) as progress:
        tour_file = TOUR if args.file is None else args.file
        path, results = run_tour(tour_file, args.runs_dir, args.quick, progress, args.only)
    for title, claims in results:
        held = sum(c.holds is True for c in claims)
        checked = sum(c.holds is not None for c in claims)
        unchecked = f" ({len(claims) - checked} not checked)" if checked < len(claims) else ""
        console.print(f"{held}/{checked} claims hold{unchecked}  {title}", highlight=False)
        _print_claims([c for c in claims if c.holds is False])
    console.print(f"tour finished in {_wall(time.monotonic() - started)}")
    console.print(f"tour report: {path.resolve()}")
    out.print(str(path.resolve()))
    return 0


def _gc(args: argparse.Namespace) -> int:
    for collected in collect_garbage(args.runs_dir, args.keep_last, args.dry_run):
        out.print(collected.describe(args.dry_run), markup=False, highlight=False, soft_wrap=True)
    return 0


def _run_dir(run: str, runs_dir: Path) -> Path:
    """A run's folder, checked as every command checks it (exists, one sound store)."""
    store = RunStore.open(run, runs_dir)
    try:
        return store.run_dir
    finally:
        store.close()


def _audit(args: argparse.Namespace) -> int:
    from selfimprove.oversight.queue import ReviewQueue

    run_dir = _run_dir(args.run, args.runs_dir)
    with ReviewQueue.open(run_dir, create=False) as queue:
        check = queue.audit.verify(queue.audit_entries())
        if not check.ok:
            print(
                f"selfimprove: audit: run {run_dir.name}: the log does not verify: {check.problem}",
                file=sys.stderr,
            )
            return 1
        out.print(
            f"audit log of {run_dir.name}: {check.entries} entries, chain intact, "
            f"head {check.head}",
            highlight=False,
        )
        _print_agreement(queue)
        if args.trained:
            arm, _, generation = args.trained.rpartition(":")
            if not arm or not generation.isdigit():
                raise ConfigError(f"--trained {args.trained!r}: give ARM:GENERATION, e.g. star:3")
            resolution = queue.resolution(arm, int(generation))
            if resolution is None:
                raise ConfigError(
                    f"--trained {args.trained}: no review decided generation {generation} "
                    f"of arm {arm!r} in run {run_dir.name}"
                )
            outcomes, _ = resolution
            store = RunStore.open(run_dir)
            try:
                action, why = store.decisions(arm).get(int(generation), ("wait", "not committed"))
            finally:
                store.close()
            table = Table("item", "outcome", "reviewers", "trained on", box=None)
            for ident, outcome in sorted(outcomes.items()):
                deciders = sorted({d.reviewer for d in queue.decisions(ident)})
                through = outcome.status in ("accept", "edit") and action != "halt"
                table.add_row(ident, outcome.status, ", ".join(deciders) or "-", _yes(through))
            out.print(table)
            if action != "accept":
                out.print(
                    f"generation {generation} ended in {action} ({why}): no model from it was kept",
                    highlight=False,
                    soft_wrap=True,
                )
    return 0


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _print_agreement(queue: ReviewQueue) -> None:
    """Who decided how much, their accuracy on gold items, and how far they agree."""
    from selfimprove.oversight.agreement import agreement

    found = agreement(queue)
    decided: dict[str, int] = {}
    for decision in queue.decisions():
        if decision.action != "skip":
            decided[decision.reviewer] = decided.get(decision.reviewer, 0) + 1
    if not decided:
        out.print("no decisions yet", highlight=False)
        return
    table = Table("reviewer", "decisions", "right on gold items", box=None)
    for name in sorted(decided):
        right, total = found.accuracy.get(name, (0, 0))
        gold = f"{right}/{total} ({right / total:.0%})" if total else "-"
        table.add_row(name, str(decided[name]), gold)
    out.print(table)
    if found.percent is None:
        out.print(f"agreement: {found.problem}", highlight=False)
        return
    alpha = "-" if found.alpha is None else f"{found.alpha:.3f}"
    out.print(
        f"agreement on {found.num_items} items decided by two or more: "
        f"{found.percent:.1%}, Krippendorff's alpha {alpha}",
        highlight=False,
    )
    for pair in found.pairs:
        kappa = "-" if pair.kappa is None else f"{pair.kappa:.3f}"
        out.print(
            f"  {pair.first} / {pair.second}: {pair.num_items} items, {pair.percent:.1%}, "
            f"Cohen's kappa {kappa}",
            highlight=False,
        )


def _review(args: argparse.Namespace) -> int:
    from selfimprove.cli.review import review

    return review(_run_dir(args.run, args.runs_dir), args, out)


def _serve(args: argparse.Namespace) -> int:
    from selfimprove.web.server import serve

    return serve(args, out)


def _serve_model(args: argparse.Namespace) -> int:
    from selfimprove.models.serve import serve_model

    return serve_model(args, out)


def _refine(args: argparse.Namespace) -> int:
    from selfimprove.cli.refine import refine_command

    return refine_command(args, out)


def _play(args: argparse.Namespace) -> int:
    from selfimprove.cli.play import play

    return play(args, out)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _run,
    "recipes": _recipes,
    "resume": _resume,
    "runs": _runs,
    "show": _show,
    "report": _report,
    "play": _play,
    "export": _export,
    "tour": _tour,
    "gc": _gc,
    "review": _review,
    "audit": _audit,
    "serve": _serve,
    "serve-model": _serve_model,
    "refine": _refine,
}
