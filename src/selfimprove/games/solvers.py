"""Exact solvers used as ground truth.

Tic-tac-toe: minimax over every reachable position (5,478 including terminal ones), keyed by
the canonical board's bytes. Values are from the view of the player to move: +1 win, 0 draw,
-1 loss with perfect play.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selfimprove.games.rules import TicTacToe


@dataclass(frozen=True)
class Solution:
    values: dict[bytes, int]  # every reachable position, terminal ones included
    action_values: dict[bytes, np.ndarray]  # non-terminal positions: [9], nan where illegal

    def forced_positions(self) -> np.ndarray:
        """`[n, 3, 3]`: non-lost positions where exactly one move keeps the value and some
        move gives it up (a win to take or a loss to block): known answers for a search."""
        boards = [
            np.frombuffer(key, dtype=np.int8).reshape(3, 3)
            for key, values in self.action_values.items()
            if (values == np.nanmax(values)).sum() == 1
            and np.nanmax(values) >= 0
            and np.nanmin(values) < np.nanmax(values)
        ]
        return np.stack(boards)

    def optimal_actions(self, board: np.ndarray) -> np.ndarray:
        """Boolean `[9]`: the moves that keep the best achievable result."""
        values = self.action_values[board.tobytes()]
        return values == np.nanmax(values)


def solve_tictactoe() -> Solution:
    game = TicTacToe()
    values: dict[bytes, int] = {}
    action_values: dict[bytes, np.ndarray] = {}

    def value(board: np.ndarray) -> int:
        key = board.tobytes()
        if key in values:
            return values[key]
        legal = np.flatnonzero(game.legal_actions(board[None])[0])
        children = game.play(np.repeat(board[None], len(legal), axis=0), legal)
        scores = np.full(9, np.nan)
        for i, action in enumerate(legal):
            if children.mover_won[i]:
                scores[action] = 1.0
            elif children.terminal[i]:
                scores[action] = 0.0
                values.setdefault(children.boards[i].tobytes(), 0)
            else:
                scores[action] = -value(children.boards[i])
            if children.mover_won[i]:
                values.setdefault(children.boards[i].tobytes(), -1)
        action_values[key] = scores
        values[key] = int(np.nanmax(scores))
        return values[key]

    value(game.initial(1)[0])
    return Solution(values, action_values)
