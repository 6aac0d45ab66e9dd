"""The command line: run, resume, runs, show, report, export, play, tour, gc.

Bad input (a missing file, an unknown key, a wrong type, an unknown run) is one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from selfimprove import __version__
from selfimprove.core.config import ConfigError, field_docs
from selfimprove.core.engine import NondeterminismError
from selfimprove.core.garbage import collect_garbage
from selfimprove.core.memory import peak_bytes
from selfimprove.core.records import Claim
from selfimprove.core.snapshot import SnapshotError
from selfimprove.core.store import (
    CorruptRunError,
    RunBusyError,
    RunInfo,
    RunNotFoundError,
    RunStore,
    list_runs,
)
from selfimprove.experiments import (
    RunResult,
    build_arms,
    claims_for,
    experiment_of,
    export_kept,
    load_config,
    newest_state,
    parse_config,
    resume_run,
    start_run,
)
from selfimprove.reports.html import write_run_report
from selfimprove.reports.plots import plottable_keys
from selfimprove.tour import run_tour

_USER_ERRORS = (
    ConfigError,
    RunNotFoundError,
    RunBusyError,
    CorruptRunError,
    NondeterminismError,
    SnapshotError,
)
console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 240)  # piped: never cut run ids


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        _check_runs_dir(args.runs_dir)
        code: int = args.handler(args)
        return code
    except _USER_ERRORS as error:
        print(f"selfimprove: error: {_one_line(str(error))}", file=sys.stderr)
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
            f"selfimprove: error: {_one_line(f'{error.strerror or error}{where}')}", file=sys.stderr
        )
        return 2


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors in one line (the full usage only with `--help`)."""

    def error(self, message: str) -> NoReturn:
        hint = f"; `{self.prog} --help` shows usage"
        self.exit(2, f"selfimprove: error: {_one_line(message)}{hint}\n")


def _one_line(message: str) -> str:
    """A message on one line: what a user typed (a path, a value) with line breaks and other
    control characters shown escaped, so it can neither break the line nor drive the
    terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message.rstrip("\n"))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 10**6:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 1000000")
    return value


def _check_runs_dir(runs_dir: Path) -> None:
    if runs_dir.exists() and not runs_dir.is_dir():
        raise ConfigError(f"--runs-dir {runs_dir}: not a folder")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="selfimprove", description=__doc__)
    parser.add_argument("--version", action="version", version=f"selfimprove {__version__}")
    parser.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="where runs live (default: runs)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a recipe; prints the run id and the report path")
    run.add_argument("config", type=Path, nargs="?", help="a recipe (YAML)")
    run.add_argument(
        "--explain",
        metavar="KIND",
        help="print every config field of an experiment kind (type, default, description)",
    )
    run.add_argument(
        "--check",
        action="store_true",
        help="validate the recipe and build its arms (sizes checked against this machine's "
        "memory), then stop; writes nothing",
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set generations=20 (repeatable)",
    )
    run.set_defaults(handler=_run)

    resume = commands.add_parser("resume", help="continue a crashed or stopped run")
    resume.add_argument("run")
    resume.set_defaults(handler=_resume)

    runs = commands.add_parser("runs", help="list runs")
    runs.set_defaults(handler=_runs)

    show = commands.add_parser("show", help="per-generation table of a run")
    show.add_argument("run")
    show.add_argument(
        "--rows", type=_positive, default=20, help="about how many generations to show per arm"
    )
    show.add_argument(
        "--provenance",
        action="store_true",
        help="what each generation kept: source, origin generation, model, verifier, verdict",
    )
    show.set_defaults(handler=_show)

    report = commands.add_parser("report", help="write the run's HTML report with plots")
    report.add_argument("run")
    report.set_defaults(handler=_report)

    play = commands.add_parser("play", help="play a trained agent in the terminal")
    play.add_argument(
        "game",
        choices=["connect4", "tictactoe", "othello6"],
        help="moves: columns 1-7 (connect4); cells 1-9 (tictactoe); cells 1-36 row by row, 37 passes (othello6)",
    )
    play.add_argument("--run", required=True, help="a games.alphazero run of that game")
    play.add_argument("--first", choices=["human", "agent"], default="human")
    play.add_argument(
        "--simulations", type=_positive, default=200, help="agent's search per move (1-1000000)"
    )
    play.add_argument(
        "--solver", action="store_true", help="MCTS-Solver: proven wins first, proven losses last"
    )
    play.set_defaults(handler=_play)

    export = commands.add_parser(
        "export", help="write a reasoning run's kept data as JSONL (TRL prompt/completion)"
    )
    export.add_argument("run")
    export.add_argument("--arm", help="which arm (default: the first)")
    export.add_argument("--out", type=Path, default=Path("kept.jsonl"), help="default: kept.jsonl")
    export.set_defaults(handler=_export)

    tour = commands.add_parser("tour", help="run the chapter's claims and write one page")
    tour.add_argument("--quick", action="store_true", help="smaller settings (about a minute)")
    tour.add_argument("--file", type=Path, default=Path("configs/tour.yaml"), help="tour file")
    tour.set_defaults(handler=_tour)

    gc = commands.add_parser(
        "gc", help="free old snapshots and leftovers of killed writes in runs not running"
    )
    gc.add_argument(
        "--keep-last",
        type=int,
        default=1,
        metavar="N",
        help="snapshots kept per arm (default 1: the one resume, play and export read)",
    )
    gc.add_argument("--dry-run", action="store_true", help="say what would be freed; remove none")
    gc.set_defaults(handler=_gc)
    return parser


@contextmanager
def _progress() -> Iterator[Callable[[str, str, int, int], None]]:
    """Progress bars, shown from the first finished generation on (a command that fails
    before one, such as a resume refused, prints nothing but its error)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    bar = Progress(*columns, console=console, transient=False)
    tasks: dict[str, TaskID] = {}

    def update(run: str, arm: str, generation: int, total: int) -> None:
        key = f"{run}/{arm}"
        if not tasks:
            bar.start()
        if key not in tasks:
            tasks[key] = bar.add_task(arm[:48], total=total)
        bar.update(tasks[key], completed=generation)

    try:
        yield update
    finally:
        if tasks:
            bar.stop()


def _write_report(run: str | Path, runs_dir: Path) -> tuple[Path, list[Claim]]:
    """Check the run's claims against its metrics and write its HTML report."""
    store = RunStore.open(run, runs_dir)
    try:
        claims = claims_for(parse_config(store.info().config, store.run_dir.name), store)
        return write_run_report(store, claims), claims
    finally:
        store.close()


def _finish(result: RunResult, runs_dir: Path) -> int:
    path, claims = _write_report(result.run_dir, runs_dir)
    for claim in claims:
        mark = "[green]holds[/]" if claim.holds else "[red]does not hold[/]"
        console.print(f"  {mark}  {claim.text}: {claim.measured}")
    console.print(f"run {result.run_id} {result.status}")
    console.print(f"report: {path}")
    out.print(result.run_id)
    return 0


def _run(args: argparse.Namespace) -> int:
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
    with _progress() as progress:
        result = start_run(config, args.runs_dir, progress)
    return _finish(result, args.runs_dir)


def _resume(args: argparse.Namespace) -> int:
    with _progress() as progress:
        result = resume_run(args.run, args.runs_dir, progress)
    return _finish(result, args.runs_dir)


def _runs(args: argparse.Namespace) -> int:
    table = Table("run", "kind", "status", "started", "arms")
    for info in list_runs(args.runs_dir):
        arms = info.config.get("arms", [])
        table.add_row(info.id, info.kind, info.status, info.created, str(len(arms)))
    out.print(table)
    return 0


def _explain(kind: str) -> int:
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


def _show(args: argparse.Namespace) -> int:
    store = RunStore.open(args.run, args.runs_dir)
    if args.provenance:
        try:
            _show_provenance(store)
        finally:
            store.close()
        return 0
    try:
        for arm, status in store.arms():
            series, decisions = store.metrics(arm), store.decisions(arm)
            keys = [k for k in plottable_keys({arm: series}) if not k.startswith("monitor/")][:6]
            title = f"{arm} ({store.current(status)})"
            table = Table("generation", "decision", *keys, title=title)
            step = max(1, len(series) // max(1, args.rows))
            for generation in sorted(series):
                if generation % step and generation != max(series):
                    continue
                action = decisions.get(generation, ("", ""))[0]
                values = (f"{series[generation].get(k, float('nan')):.4g}" for k in keys)
                table.add_row(str(generation), action, *values)
            out.print(table)
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
    arm, generation, count = export_kept(args.run, args.runs_dir, args.arm, args.out)
    console.print(f"{count} records kept by {arm} at generation {generation}")
    out.print(str(args.out))
    return 0


def _tour(args: argparse.Namespace) -> int:
    with _progress() as progress:
        path, results = run_tour(args.file, args.runs_dir, args.quick, progress)
    for title, claims in results:
        held = sum(c.holds for c in claims)
        console.print(f"{held}/{len(claims)} claims hold  {title}")
    console.print(f"tour report: {path.resolve()}")
    out.print(str(path.resolve()))
    return 0


def _gc(args: argparse.Namespace) -> int:
    for collected in collect_garbage(args.runs_dir, args.keep_last, args.dry_run):
        out.print(collected.describe(args.dry_run), markup=False, highlight=False, soft_wrap=True)
    return 0


def _play(args: argparse.Namespace) -> int:
    import numpy as np

    from selfimprove.games.alphazero import agent_move, make_game
    from selfimprove.games.rules import render

    def this_game(info: RunInfo) -> None:
        if info.kind != "games.alphazero" or info.config.get("game") != args.game:
            raise ConfigError(
                f"run {info.id} is a {info.kind} run of {info.config.get('game', '-')}, not {args.game}"
            )

    saved = newest_state(args.run, args.runs_dir, check=this_game)
    generation, state = saved.generation, saved.state
    game, _ = make_game(args.game)
    rng = np.random.default_rng()
    board = game.initial(1)[0]
    human_first = args.first == "human"
    marks = ("X", "O")
    out.print(
        f"agent from generation {generation}; you are {'X' if human_first else 'O'}; moves are 1-{game.num_actions}, q quits"
    )
    move = 0
    while True:
        to_move = marks[move % 2]
        out.print(render(board, to_move))
        human_turn = (move % 2 == 0) == human_first
        legal = game.legal_actions(board[None])[0]
        if human_turn:
            try:
                text = input(f"{to_move} to move> ").strip().lower()
            except EOFError:
                return 0
            if text in ("q", "quit"):
                return 0
            if (
                not text.isdigit()
                or not 1 <= int(text) <= game.num_actions
                or not legal[int(text) - 1]
            ):
                out.print(
                    f"not a legal move: {text!r}; choose one of {[int(a) + 1 for a in np.flatnonzero(legal)]}"
                )
                continue
            action = int(text) - 1
        else:
            action, value = agent_move(
                state.incumbent, game, board, args.simulations, rng, args.solver
            )
            out.print(f"agent plays {action + 1} (its value estimate: {value:+.2f})")
        step = game.play(board[None], np.array([action]))
        board = step.boards[0]
        move += 1
        if step.terminal[0]:
            out.print(render(board, marks[move % 2]))
            result = step.mover_result[0]
            other = marks[move % 2]
            out.print(
                f"{to_move} wins" if result > 0 else f"{other} wins" if result < 0 else "draw"
            )
            return 0


if __name__ == "__main__":
    sys.exit(main())
