"""Board games as pure numpy rules, every function batched over many games.

Conventions, stated once: a board is `[B, rows, cols]` int8 in canonical form, from the view
of the player to move: +1 their stones, -1 the opponent's, 0 empty. `play` places a +1 stone
and returns the board negated, so it is again from the view of the (new) player to move.
Values are from the view of the player to move at that board: after a winning move the next
player's terminal value is -1; a draw is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Step:
    boards: np.ndarray  # [B, R, C], canonical for the player to move next
    terminal: np.ndarray  # [B] bool
    mover_won: np.ndarray  # [B] bool: the player who just moved completed a line


class Game(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def rows(self) -> int: ...

    @property
    def cols(self) -> int: ...

    @property
    def num_actions(self) -> int: ...

    def initial(self, num: int) -> np.ndarray: ...

    def legal_actions(self, boards: np.ndarray) -> np.ndarray:
        """`[B, R, C] -> [B, A]` bool."""
        ...

    def play(self, boards: np.ndarray, actions: np.ndarray) -> Step: ...


def has_line(stones: np.ndarray, length: int) -> np.ndarray:
    """Whether each `[B, R, C]` boolean board has `length` in a row in any direction. `-> [B]`."""
    k, (_, rows, cols) = length, stones.shape
    found = np.zeros(stones.shape[0], dtype=bool)
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        r_end, c_start = rows - dr * (k - 1), max(0, -dc * (k - 1))
        c_end = cols - max(0, dc * (k - 1))
        line = np.ones((stones.shape[0], r_end, c_end - c_start), dtype=bool)
        for i in range(k):
            line &= stones[:, dr * i : dr * i + r_end, c_start + dc * i : c_end + dc * i]
        found |= line.any(axis=(1, 2))
    return found


@dataclass(frozen=True)
class TicTacToe:
    """3x3, three in a row; action = cell index `row * 3 + col`."""

    name: str = "tictactoe"
    rows: int = 3
    cols: int = 3
    num_actions: int = 9

    def initial(self, num: int) -> np.ndarray:
        return np.zeros((num, 3, 3), dtype=np.int8)

    def legal_actions(self, boards: np.ndarray) -> np.ndarray:
        return boards.reshape(boards.shape[0], 9) == 0

    def play(self, boards: np.ndarray, actions: np.ndarray) -> Step:
        cells = boards.reshape(-1, 9).copy()
        cells[np.arange(cells.shape[0]), actions] = 1
        placed = cells.reshape(-1, 3, 3)
        won = has_line(placed == 1, 3)
        full = (placed != 0).all(axis=(1, 2))
        return Step(-placed, won | full, won)


@dataclass(frozen=True)
class ConnectFour:
    """7 columns x 6 rows, four in a row; action = column (0 = leftmost); row 0 is the top."""

    name: str = "connect4"
    rows: int = 6
    cols: int = 7
    num_actions: int = 7

    def initial(self, num: int) -> np.ndarray:
        return np.zeros((num, 6, 7), dtype=np.int8)

    def legal_actions(self, boards: np.ndarray) -> np.ndarray:
        return boards[:, 0, :] == 0

    def play(self, boards: np.ndarray, actions: np.ndarray) -> Step:
        placed = boards.copy()
        index = np.arange(boards.shape[0])
        height = (boards[index, :, actions] != 0).sum(axis=1)  # stones already in that column
        placed[index, self.rows - 1 - height, actions] = 1
        won = has_line(placed == 1, 4)
        full = (placed[:, 0, :] != 0).all(axis=1)
        return Step(-placed, won | full, won)


def boards_from_moves(game: Game, sequences: list[list[int]]) -> np.ndarray:
    """Canonical boards after each 0-indexed move sequence (all sequences the same length or not)."""
    boards = game.initial(len(sequences))
    longest = max((len(s) for s in sequences), default=0)
    for turn in range(longest):
        moving = np.array([turn < len(s) for s in sequences])
        if not moving.any():
            break
        actions = np.array([s[turn] for s, m in zip(sequences, moving, strict=True) if m])
        boards[moving] = game.play(boards[moving], actions).boards
    return boards


def render(board: np.ndarray, to_move: str = "X") -> str:
    """A text picture of one canonical board; `to_move` names the +1 stones."""
    other = "O" if to_move == "X" else "X"
    symbols = {1: to_move, -1: other, 0: "."}
    return "\n".join(" ".join(symbols[int(v)] for v in row) for row in board)
