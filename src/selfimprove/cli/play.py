"""`selfimprove play`: a person against a trained agent, in the terminal."""

from __future__ import annotations

import argparse

import numpy as np
from rich.console import Console

from selfimprove.core.config import ConfigError
from selfimprove.core.store import RunInfo
from selfimprove.experiments import newest_state
from selfimprove.games.alphazero import agent_move, make_game
from selfimprove.games.rules import render
from selfimprove.games.shipped import shipped


def play(args: argparse.Namespace, out: Console) -> int:
    """One game; a move the rules forbid is refused with the legal ones, `q` quits."""

    def this_game(info: RunInfo) -> None:
        if info.kind != "games.alphazero" or info.config.get("game") != args.game:
            raise ConfigError(
                f"run {info.id} is a {info.kind} run of {info.config.get('game', '-')}, "
                f"not {args.game}"
            )

    if args.run is None:
        agent = shipped(args.game)
        if agent is None:
            raise ConfigError(f"no agent ships for {args.game}; train one and give --run RUN")
        model, where = agent.model, f"the shipped agent (run {agent.about.get('run')}"
        where += f", generation {agent.about.get('generation')})"
    else:
        saved = newest_state(args.run, args.runs_dir, check=this_game)
        model, where = saved.state.incumbent, f"agent from generation {saved.generation}"
    game, _ = make_game(args.game)
    rng = np.random.default_rng()
    board = game.initial(1)[0]
    human_first = args.first == "human"
    marks = ("X", "O")
    out.print(
        f"{where}; you are {'X' if human_first else 'O'}; moves are 1-{game.num_actions}, q quits"
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
                choices = [int(a) + 1 for a in np.flatnonzero(legal)]
                out.print(f"not a legal move: {text!r}; choose one of {choices}")
                continue
            action = int(text) - 1
        else:
            action, value = agent_move(model, game, board, args.simulations, rng, args.solver)
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
