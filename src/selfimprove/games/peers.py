"""Peers: OpenSpiel's C++ `MCTSBot` (random rollouts) as an arena opponent for Connect Four.

An independent implementation of the same classic player our ladder's anchors are, so a user
can check both our bots and our agent against a tool they know. Optional extra `peers`
(`pip install 'selfimprove[peers]'`, which installs `open-spiel`); without it, asking for a
peer is a one-line error.

Our players see canonical boards, OpenSpiel's bot needs a game state: `move_sequence` finds
an order of alternating drops that builds the board (in Connect Four the position, not the
order, decides the rest of the game), and the state replays it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from selfimprove.core.config import ConfigError


def _pyspiel() -> ModuleType:
    try:
        import pyspiel
    except ImportError as error:
        raise ConfigError(
            "OpenSpiel peers need the 'peers' extra: pip install 'selfimprove[peers]'"
        ) from error
    return pyspiel


def move_sequence(board: np.ndarray) -> list[int]:
    """0-indexed columns, first player first, that build `board` (canonical `[6, 7]`, the
    player to move = +1, no four in a row). Raises `ValueError` if no order of alternating
    drops reaches it (floating stones, wrong stone counts)."""
    rows, cols = board.shape
    stacks = [
        [int(board[r, c]) for r in range(rows - 1, -1, -1) if board[r, c]] for c in range(cols)
    ]
    for c in range(cols):  # stones must sit on stones: no gap below a stone
        if (board[rows - len(stacks[c]) :, c] == 0).any():
            raise ValueError(f"column {c} has a floating stone")
    mover, other = int((board == 1).sum()), int((board == -1).sum())
    if mover not in (other, other - 1):
        raise ValueError(f"stone counts {mover} and {other} are not a position's")
    first = 1 if mover == other else -1
    total = mover + other
    dead: set[tuple[int, ...]] = set()
    order: list[int] = []
    placed = [0] * cols

    def extend() -> bool:  # depth-first, remembering the fillings that lead nowhere
        if len(order) == total:
            return True
        key = tuple(placed)
        if key in dead:
            return False
        stone = first if len(order) % 2 == 0 else -first
        for c in range(cols):
            if placed[c] < len(stacks[c]) and stacks[c][placed[c]] == stone:
                placed[c] += 1
                order.append(c)
                if extend():
                    return True
                order.pop()
                placed[c] -= 1
        dead.add(key)
        return False

    if not extend():
        raise ValueError("no alternating order of drops builds this board")
    return order


@dataclass(frozen=True)
class OpenSpielMcts:
    """OpenSpiel's C++ MCTS with one random rollout per leaf, `num_simulations` per move; a
    batched arena player `(boards, rng) -> actions` (it searches the boards one by one)."""

    num_simulations: int
    uct_c: float = 2.0
    solve: bool = False  # True: OpenSpiel's MCTS-Solver backs up proven wins and losses

    def __call__(self, boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        pyspiel = _pyspiel()
        game = pyspiel.load_game("connect_four")
        actions = np.zeros(len(boards), dtype=np.int64)
        for i, board in enumerate(boards):
            seed = int(rng.integers(2**31 - 1))
            state = _state(game, board)
            bot = pyspiel.MCTSBot(
                game,
                pyspiel.RandomRolloutEvaluator(1, seed),
                self.uct_c,
                self.num_simulations,
                1000,  # max_memory_mb
                self.solve,
                seed,
                False,  # verbose
            )
            actions[i] = bot.step(state)
        return actions


def _state(game: Any, board: np.ndarray) -> Any:
    state = game.new_initial_state()
    for column in move_sequence(board):
        state.apply_action(column)
    return state
