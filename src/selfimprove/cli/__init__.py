"""The command line: run, resume, runs, show, report, export, play, tour, gc, recipes, review,
audit, serve, serve-model, refine.

Bad input (a missing file, an unknown key, a wrong type, an unknown run) is one line on
stderr and exit code 2, never a traceback. Parsing imports nothing heavy, so `--help` and a
usage error answer at once; a command's module (and torch behind it) is imported only once
its arguments parse.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from selfimprove import __version__
from selfimprove.core.names import did_you_mean
from selfimprove.recipes import find_recipes

KINDS = (
    "collapse.fresh_data",
    "collapse.gaussian",
    "collapse.gmm",
    "collapse.ngram",
    "collapse.pretrained_lm",
    "collapse.regression",
    "collapse.tiny_gpt",
    "collapse.vae",
    "collapse.zipf",
    "constitutional.rl_cai",
    "constitutional.sl_cai",
    "distill.classifier",
    "distill.lm",
    "failures.facts",
    "failures.forgetting",
    "failures.self_labelling",
    "failures.shift",
    "failures.urn",
    "games.alphazero",
    "hacking.gridworld",
    "reasoning.star",
    "reasoning.synthesis",
)
"""Every experiment kind, named here so that `run --help` need not import them (a test
holds it equal to `selfimprove.experiments.KINDS`)."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from selfimprove.cli.commands import dispatch  # the heavy imports start here

    return dispatch(args)


def one_line(message: str) -> str:
    """A message on one line: what a user typed (a path, a value) with line breaks and other
    control characters shown escaped, so it can neither break the line nor drive the
    terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message.rstrip("\n"))


_CHOICE = re.compile(r"invalid choice: '(?P<word>.*)' \(choose from (?P<known>.*)\)\Z", re.DOTALL)


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors in one line (the full usage only with `--help`) and a
    "did you mean" for a mistyped command, choice or flag."""

    def error(self, message: str) -> NoReturn:
        choice = _CHOICE.search(message)
        if choice is not None:
            # the choices, quoted ('run', 'resume') or not (Python 3.12.8+: run, resume)
            known = [w.strip().strip("'") for w in choice["known"].split(",")]
            hint = did_you_mean(choice["word"], known)
            message = message[: choice.start()] + f"invalid choice: {choice['word']!r}{hint} "
            message += f"(choose from {choice['known']})"
        hint = f"; `{self.prog} --help` shows usage"
        self.exit(2, f"selfimprove: error: {one_line(message)}{hint}\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        command = getattr(parsed, "command", None)
        if extras and self.prog == "selfimprove" and command in _SUBPARSERS:
            sub = _SUBPARSERS[command]
            flags = [f for action in sub._actions for f in action.option_strings]
            hint = did_you_mean(extras[0], flags) if extras[0].startswith("-") else ""
            sub.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed, extras


_SUBPARSERS: dict[str, argparse.ArgumentParser] = {}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 10**6:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 1000000")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535; 0: any free one)")
    return int(text)


def _run_epilog() -> str:
    lines = [f"  {r.name:<28} {r.kind}" for r in find_recipes()]
    kinds = "\n".join(f"  {k}" for k in KINDS)
    return (
        "shipped recipes, by name (`selfimprove recipes` says what each does):\n"
        + "\n".join(lines)
        + f"\n\nexperiment kinds (`run --explain KIND` prints every field, its type, "
        f"default and description):\n{kinds}\n\n"
        "examples: selfimprove run collapse/gaussian --set generations=50\n"
        "          selfimprove run ./my_recipe.yaml"
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="selfimprove", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"selfimprove {__version__}")
    parser.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="where runs live (default: runs)"
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help: str, **kwargs: Any) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, **kwargs)
        _SUBPARSERS[name] = sub
        return sub

    run = command(
        "run",
        "run a recipe; prints the run id and the report path",
        epilog=_run_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "config", nargs="?", help="a shipped recipe's name (collapse/gaussian) or a YAML file"
    )
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

    wait_help = (
        "when the run waits for review, keep polling its queue and continue as soon as every "
        "item is decided (default: stop; `resume` continues)"
    )
    run.add_argument("--wait", action="store_true", help=wait_help)

    command("recipes", "list the shipped recipes with one line each")

    resume = command("resume", "continue a crashed, stopped or waiting run")
    resume.add_argument("run", help="a run id (or its folder)")
    resume.add_argument("--wait", action="store_true", help=wait_help)
    resume.add_argument(
        "--no-tracking",
        dest="tracking",
        action="store_false",
        help="leave the recipe's experiment tracker out this time (its server is gone); a "
        "later resume with it sends what it missed",
    )

    command("runs", "list runs (a run whose process is gone shows as stopped)")

    show = command("show", "per-generation table of a run")
    show.add_argument("run", help="a run id (or its folder)")
    show.add_argument(
        "--rows", type=_positive, default=20, help="about how many generations to show per arm"
    )
    show.add_argument(
        "--metrics",
        metavar="PATTERN",
        help="the metrics to show, shell-style, e.g. 'monitor/*' or 'eval/*,collapse/sigma*' "
        "(default: the first six; `--metrics list` names them all with their titles)",
    )
    show.add_argument(
        "--provenance",
        action="store_true",
        help="what each generation kept: source, origin generation, model, verifier, verdict",
    )

    report = command("report", "write the run's HTML report with plots")
    report.add_argument("run", help="a run id (or its folder)")

    play = command("play", "play a trained agent in the terminal")
    play.add_argument(
        "game",
        choices=["connect4", "tictactoe", "othello6"],
        help="moves: columns 1-7 (connect4); cells 1-9 (tictactoe); cells 1-36 row by row, "
        "37 passes (othello6)",
    )
    play.add_argument(
        "--run",
        help="a games.alphazero run of that game (default: the agent that ships for it, "
        "Connect Four)",
    )
    play.add_argument(
        "--first",
        choices=["human", "agent"],
        default="human",
        help="who moves first (default: human)",
    )
    play.add_argument(
        "--simulations", type=_positive, default=200, help="agent's search per move (1-1000000)"
    )
    play.add_argument(
        "--solver", action="store_true", help="MCTS-Solver: proven wins first, proven losses last"
    )

    export = command(
        "export",
        "write a reasoning run's kept data (TRL prompt/completion) or its reviewed items "
        "(Prodigy, Argilla, Label Studio) as JSONL / JSON",
    )
    export.add_argument("run", help="a run id (or its folder)")
    export.add_argument("--arm", help="which arm (default: the first)")
    export.add_argument("--out", type=Path, default=Path("kept.jsonl"), help="default: kept.jsonl")
    export.add_argument(
        "--format",
        choices=["trl", "prodigy", "argilla", "labelstudio"],
        default="trl",
        help="trl: what the incumbent was trained on (default); prodigy: reviewed items as "
        "JSONL with `answer`; argilla: records with responses and their status; labelstudio: "
        "tasks with `annotations` (a JSON list)",
    )

    review = command("review", "review a run's queue in the terminal: single keys, works over SSH")
    review.add_argument("run", help="a run id (or its folder)")
    review.add_argument(
        "--reviewer",
        default=None,
        help="your name in the decisions and the audit log (default: $USER)",
    )
    review.add_argument(
        "--adjudicate",
        action="store_true",
        help="decide the items reviewers disagree on (your word is final)",
    )

    audit = command(
        "audit", "verify a run's audit log (a hash chain) and say what trained a checkpoint"
    )
    audit.add_argument("run", help="a run id (or its folder)")
    audit.add_argument(
        "--trained",
        metavar="ARM:GENERATION",
        help="list the reviewed items generation GENERATION of ARM was trained on",
    )

    serve = command(
        "serve", "local web app: runs dashboard, review queue, play (127.0.0.1, with a token)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    serve.add_argument("--port", type=_port, default=8765, help="default 8765 (0: any free port)")
    serve.add_argument(
        "--token",
        default=None,
        help="the token every page and write needs (default: a random one, printed at start)",
    )
    serve.add_argument(
        "--play-simulations",
        type=_positive,
        default=400,
        help="the play page's agent searches this many simulations a move (the shipped net's "
        "MCTS, or random-rollout MCTS where no net ships; default 400)",
    )

    serve_model = command(
        "serve-model",
        "serve a chat model over the OpenAI chat-completions API (127.0.0.1; docs/serving.md)",
    )
    serve_model.add_argument(
        "model", help="packaged, tiny-random, hf:FOLDER (a fine-tune), or http://HOST:PORT/v1"
    )
    serve_model.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine; elsewhere there is no "
        "authentication unless --api-key is given)",
    )
    serve_model.add_argument("--port", type=_port, default=8000, help="default 8000 (0: any)")
    serve_model.add_argument("--device", default="cpu", help="torch device (default cpu)")
    serve_model.add_argument(
        "--batch-size", type=_positive, default=16, help="rows per forward pass (default 16)"
    )
    serve_model.add_argument(
        "--api-key",
        default=None,
        help="require `Authorization: Bearer KEY` on every request (default: "
        "$SELFIMPROVE_API_KEY; unset: none)",
    )

    from selfimprove.cli.refine import add_parser as add_refine

    add_refine(
        command(
            "refine",
            "answer prompts, then critique and revise the failing answers until the checkers "
            "pass or the rounds run out (no training); pass rate and cost per round",
        ),
        _positive,
    )

    tour = command("tour", "run the chapter's claims and write one page")
    tour.add_argument(
        "--quick",
        action="store_true",
        help="smaller settings (4-7 minutes on 2 cores; the full tour takes hours)",
    )
    tour.add_argument(
        "--only",
        metavar="TEXT",
        help="run only the studies whose recipe or title contains TEXT, e.g. --only collapse",
    )
    tour.add_argument(
        "--file", type=Path, help="a tour file of one's own (default: the shipped tour)"
    )

    gc = command("gc", "free old snapshots and leftovers of killed writes in runs not running")
    gc.add_argument(
        "--keep-last",
        type=int,
        default=1,
        metavar="N",
        help="snapshots kept per arm (default 1: the one resume, play and export read)",
    )
    gc.add_argument("--dry-run", action="store_true", help="say what would be freed; remove none")
    return parser


if __name__ == "__main__":
    sys.exit(main())
