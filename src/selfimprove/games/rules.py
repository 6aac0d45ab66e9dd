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
from numba import njit


@dataclass(frozen=True)
class Step:
    boards: np.ndarray  # [B, R, C], canonical for the player to move next
    terminal: np.ndarray  # [B] bool
    mover_result: np.ndarray  # [B] for the player who just moved: +1 won, -1 lost, 0 otherwise

    @property
    def mover_won(self) -> np.ndarray:
        return self.mover_result > 0


class Game(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def rows(self) -> int: ...

    @property
    def cols(self) -> int: ...

    @property
    def num_actions(self) -> int: ...

    @property
    def max_plies(self) -> int:
        """An upper bound on a game's length in moves (passes included)."""
        ...

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
    max_plies: int = 9

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
        return Step(-placed, won | full, won.astype(float))


@dataclass(frozen=True)
class ConnectFour:
    """7 columns x 6 rows, four in a row; action = column (0 = leftmost); row 0 is the top."""

    name: str = "connect4"
    rows: int = 6
    cols: int = 7
    num_actions: int = 7
    max_plies: int = 42

    def initial(self, num: int) -> np.ndarray:
        return np.zeros((num, 6, 7), dtype=np.int8)

    def legal_actions(self, boards: np.ndarray) -> np.ndarray:
        return boards[:, 0, :] == 0

    def play(self, boards: np.ndarray, actions: np.ndarray) -> Step:
        after = np.empty_like(boards)
        won, full = np.empty(len(boards), dtype=bool), np.empty(len(boards), dtype=bool)
        _drop(boards, np.asarray(actions, dtype=np.int64), after, won, full)
        return Step(after, won | full, won.astype(float))


@njit(cache=True)
def _drop(
    boards: np.ndarray, actions: np.ndarray, after: np.ndarray, won: np.ndarray, full: np.ndarray
) -> None:
    """Connect Four's move, compiled: drop a +1 stone in each board's column, look for four
    through that stone only, and write the board negated (the next mover's view)."""
    rows, cols = boards.shape[1], boards.shape[2]
    for b in range(boards.shape[0]):
        column = actions[b]
        row = rows - 1
        while row > 0 and boards[b, row, column] != 0:  # the lowest empty cell
            row -= 1
        won[b] = False
        for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
            count = 1
            for sign in (1, -1):
                r, c = row + sign * dr, column + sign * dc
                while 0 <= r < rows and 0 <= c < cols and boards[b, r, c] == 1:
                    count += 1
                    r, c = r + sign * dr, c + sign * dc
            if count >= 4:
                won[b] = True
        full[b] = True
        for r in range(rows):
            for c in range(cols):
                after[b, r, c] = -boards[b, r, c]
        after[b, row, column] = -1
        for c in range(cols):
            if after[b, 0, c] == 0:
                full[b] = False


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


_DIRECTIONS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


@dataclass(frozen=True)
class Othello:
    """Othello on a 6x6 board; actions are cells `row * 6 + col`, and the last one is a pass,
    legal only when no placement is. The game ends when neither player can place; the one
    with more discs wins (the mover may lose on its own last move)."""

    name: str = "othello6"
    rows: int = 6
    cols: int = 6
    num_actions: int = 37
    max_plies: int = 64  # 32 placements, and passes never come two in a row before the end

    def initial(self, num: int) -> np.ndarray:
        boards = np.zeros((num, 6, 6), dtype=np.int8)
        boards[:, 2, 3] = boards[:, 3, 2] = 1  # the player to move (dark) at d3 and c4
        boards[:, 2, 2] = boards[:, 3, 3] = -1
        return boards

    def legal_actions(self, boards: np.ndarray) -> np.ndarray:
        placements = self._placements(boards)  # [B, 36]
        return np.concatenate([placements, ~placements.any(axis=1, keepdims=True)], axis=1)

    def play(self, boards: np.ndarray, actions: np.ndarray) -> Step:
        num = boards.shape[0]
        placed = boards.copy()
        cells = np.flatnonzero(actions < 36)
        rows, cols = actions[cells] // 6, actions[cells] % 6
        flips = _flips(boards[cells], rows, cols)  # [b, 6, 6]
        placed[cells] = np.where(flips, 1, boards[cells])
        placed[cells, rows, cols] = 1
        nobody_can_place = ~self._placements(-placed).any(axis=1) & ~self._placements(placed).any(
            axis=1
        )
        margin = (placed == 1).sum(axis=(1, 2)) - (placed == -1).sum(axis=(1, 2))
        result = np.where(nobody_can_place, np.sign(margin), 0).astype(float)
        return Step(-placed, nobody_can_place | np.zeros(num, dtype=bool), result)

    def _placements(self, boards: np.ndarray) -> np.ndarray:
        """`[B, 36]`: empty cells where a +1 disc would flip at least one -1 disc."""
        num = boards.shape[0]
        repeated = np.repeat(boards, 36, axis=0)  # every (board, cell) pair at once
        cells = np.tile(np.arange(36), num)
        flips = _flips(repeated, cells // 6, cells % 6).any(axis=(1, 2))
        return (flips & (repeated.reshape(-1, 36)[np.arange(num * 36), cells] == 0)).reshape(
            num, 36
        )


def _flips(boards: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Discs flipped by a +1 disc at (row, col) of each board: runs of -1 closed by a +1."""
    num, size_r, size_c = boards.shape
    index = np.arange(num)
    flips = np.zeros(boards.shape, dtype=bool)
    for dr, dc in _DIRECTIONS:
        run = np.zeros(boards.shape, dtype=bool)
        open_run = np.ones(num, dtype=bool)  # still walking over opponent discs
        closed = np.zeros(num, dtype=bool)
        for step in range(1, max(size_r, size_c)):
            r, c = rows + dr * step, cols + dc * step
            inside = (r >= 0) & (r < size_r) & (c >= 0) & (c < size_c)
            value = np.where(
                inside, boards[index, np.clip(r, 0, size_r - 1), np.clip(c, 0, size_c - 1)], 0
            )
            closed |= open_run & (value == 1) & (step > 1)
            open_run &= value == -1
            run[index[open_run], r[open_run], c[open_run]] = True
        flips |= run & closed[:, None, None]
    return flips
