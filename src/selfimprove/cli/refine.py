"""`selfimprove refine`: iterative refinement at inference time, printed round by round.

Model text is untrusted: it is printed through `cli.review.visible` (control characters
escaped) and written to `--json` as JSON strings, never interpreted."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

_WORD = re.compile(r"[a-z]{4,}")


def prompts_of(args: argparse.Namespace) -> tuple[object, ...]:
    """The prompts asked: `--prompt TEXT` (red-team by default; `--kind helpful`) or a slice
    of a shipped set, `--prompts KIND:SPLIT[:N]`."""
    from selfimprove.constitutional.prompts import Prompt, select
    from selfimprove.core.config import ConfigError

    if args.prompt:
        return tuple(
            Prompt(
                f"cli-{i}",
                text,
                args.kind,
                "command line",
                "test",
                topic=tuple(dict.fromkeys(_WORD.findall(text.lower()))),
            )
            for i, text in enumerate(args.prompt)
        )
    kind, _, rest = args.prompts.partition(":")
    split, _, count = rest.partition(":")
    if kind not in ("red_team", "helpful") or split not in ("train", "test"):
        raise ConfigError(
            f"--prompts {args.prompts}: KIND:SPLIT[:N], KIND red_team or helpful, "
            "SPLIT train or test"
        )
    if count and (not count.isdigit() or int(count) < 1):
        raise ConfigError(f"--prompts {args.prompts}: N is a positive whole number")
    return select(kind, split, int(count) if count else 16, args.seed)


def refine_command(args: argparse.Namespace, out: Console) -> int:
    from selfimprove.cli.review import visible
    from selfimprove.constitutional.chains import Budget, chain_record, chain_text
    from selfimprove.constitutional.checkers import HELD_OUT_CHECKERS, TRAINING_CHECKERS
    from selfimprove.constitutional.constitution import load_constitution
    from selfimprove.constitutional.refine import refine
    from selfimprove.core.config import ConfigError
    from selfimprove.models.chat import load_chat

    constitution = load_constitution(args.constitution)
    prompts = prompts_of(args)
    if args.json is not None and args.json.exists():
        raise ConfigError(f"--json {args.json}: the file exists (not overwritten)")
    checkers = TRAINING_CHECKERS if args.checkers == "training" else HELD_OUT_CHECKERS
    if args.checkers == "held-out":
        checkers = {k: v for k, v in checkers.items() if k != "refuses"}  # a meter, not a bar
    chat = load_chat(args.model, args.device)
    budget = Budget(args.max_tokens, args.critique_tokens, args.temperature)
    result = refine(chat, prompts, constitution, checkers, args.rounds, budget, args.seed)  # type: ignore[arg-type]
    out.print(f"{len(prompts)} prompts, {chat.name}, {args.checkers} checkers")
    out.print(f"{'round':>5}  {'pass rate':>9}  {'revised':>7}  {'tokens':>7}  {'seconds':>8}")
    for r in result.rounds:
        out.print(
            f"{r.round:>5}  {r.pass_rate:>9.3f}  {r.revised:>7}  {r.tokens:>7}  {r.seconds:>8.1f}"
        )
    if args.prompt:
        for chain, passed in zip(result.chains, result.passed, strict=True):
            out.print(visible(chain_text(chain)))
            out.print(f"PASSED: {passed}\n")
    if args.json is not None:
        record = {
            "rounds": [asdict(r) for r in result.rounds],
            "chains": [
                chain_record(c) | {"passed": p}
                for c, p in zip(result.chains, result.passed, strict=True)
            ],
        }
        args.json.write_text(json.dumps(record, indent=1))
        out.print(f"chains: {args.json}")
    return 0


def add_parser(command: argparse.ArgumentParser, positive: Callable[[str], int]) -> None:
    command.add_argument(
        "--model",
        default="packaged",
        help="packaged (default), tiny-random, hf:FOLDER, or http://HOST:PORT/v1[#model]",
    )
    command.add_argument(
        "--prompt", action="append", metavar="TEXT", help="a prompt of your own (repeatable)"
    )
    command.add_argument(
        "--kind",
        choices=("red_team", "helpful"),
        default="red_team",
        help="what --prompt prompts are checked as (default red_team)",
    )
    command.add_argument(
        "--prompts",
        default="red_team:test:16",
        metavar="KIND:SPLIT[:N]",
        help="a slice of the shipped prompt sets (default red_team:test:16)",
    )
    command.add_argument("--rounds", type=positive, default=4, help="revision rounds at most")
    command.add_argument("--constitution", default="default", help="shipped name or YAML path")
    command.add_argument(
        "--checkers",
        choices=("training", "held-out"),
        default="training",
        help="which checkers decide 'passes' (default training)",
    )
    command.add_argument("--max-tokens", type=positive, default=96, help="per answer")
    command.add_argument("--critique-tokens", type=positive, default=64, help="per critique")
    command.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default)")
    command.add_argument("--seed", type=int, default=0, help="sampling and prompt choice")
    command.add_argument("--device", default="cpu", help="torch device (default cpu)")
    command.add_argument("--json", type=Path, help="write every chain and round here (JSON)")
