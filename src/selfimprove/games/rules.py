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

    @property
    def compiled(self) -> int | None:
        """Which of the compiled rules below are this game's (None where it has none): MCTS
        then runs a whole simulation step in compiled code (see `mcts.search`)."""
        ...


# Games whose rules are also compiled for one board, so that compiled code (MCTS's simulation
# step, `play`) can call them: `move` and `legal` take one of these ids. A kernel built per
# game around its functions instead would be a closure over them, which numba cannot cache.
CONNECT4, TICTACTOE = 1, 2


@njit(inline="always")
def move(rules: int, board: np.ndarray, action: int, out: np.ndarray) -> tuple[bool, float]:
    """Write the board after `action` into `out` (canonical for the next mover); return
    (terminal, result for the mover) as `play` does."""
    if rules == CONNECT4:
        return _drop(board, action, out)
    return _tictactoe_move(board, action, out)


@njit(inline="always")
def legal(rules: int, board: np.ndarray, out: np.ndarray) -> None:
    """Write the board's legal actions into the bool row `out`."""
    if rules == CONNECT4:
        _open_columns(board, out)
    else:
        _empty_cells(board, out)


@njit(cache=True)
def _play_all(
    rules: int,
    boards: np.ndarray,
    actions: np.ndarray,
    after: np.ndarray,
    terminal: np.ndarray,
    result: np.ndarray,
) -> None:
    for b in range(boards.shape[0]):
        terminal[b], result[b] = move(rules, boards[b], actions[b], after[b])


def _play(rules: int, boards: np.ndarray, actions: np.ndarray) -> Step:
    after = np.empty_like(boards)
    terminal, result = np.empty(len(boards), dtype=bool), np.empty(len(boards))
    _play_all(rules, boards, np.asarray(actions, dtype=np.int64), after, terminal, result)
    return Step(after, terminal, result)


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
        return _play(TICTACTOE, boards, actions)

    @property
    def compiled(self) -> int:
        return TICTACTOE


@njit(inline="always")
def _tictactoe_move(board: np.ndarray, action: int, out: np.ndarray) -> tuple[bool, float]:
    row, col = action // 3, action % 3
    full = True
    for r in range(3):
        for c in range(3):
            out[r, c] = -board[r, c]
            if board[r, c] == 0 and (r != row or c != col):
                full = False
    out[row, col] = -1
    won = (
        (board[row, (col + 1) % 3] == 1 and board[row, (col + 2) % 3] == 1)
        or (board[(row + 1) % 3, col] == 1 and board[(row + 2) % 3, col] == 1)
        or (row == col and board[(row + 1) % 3, (col + 1) % 3] == 1
            and board[(row + 2) % 3, (col + 2) % 3] == 1)
        or (row + col == 2 and board[(row + 1) % 3, (col + 2) % 3] == 1
            and board[(row + 2) % 3, (col + 1) % 3] == 1)
    )  # fmt: skip
    return won or full, 1.0 if won else 0.0


@njit(inline="always")
def _empty_cells(board: np.ndarray, out: np.ndarray) -> None:
    for r in range(board.shape[0]):
        for c in range(board.shape[1]):
            out[r * board.shape[1] + c] = board[r, c] == 0


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
        return _play(CONNECT4, boards, actions)

    @property
    def compiled(self) -> int:
        return CONNECT4


@njit(inline="always")
def _drop(board: np.ndarray, column: int, out: np.ndarray) -> tuple[bool, float]:
    """Connect Four's move, compiled: drop a +1 stone in the column, look for four through
    that stone only, and write the board negated (the next mover's view) into `out`."""
    rows, cols = board.shape
    row = rows - 1
    while row > 0 and board[row, column] != 0:  # the lowest empty cell
        row -= 1
    won = False
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        count = 1
        for sign in (1, -1):
            r, c = row + sign * dr, column + sign * dc
            while 0 <= r < rows and 0 <= c < cols and board[r, c] == 1:
                count += 1
                r, c = r + sign * dr, c + sign * dc
        if count >= 4:
            won = True
    for r in range(rows):
        for c in range(cols):
            out[r, c] = -board[r, c]
    out[row, column] = -1
    full = True
    for c in range(cols):
        if out[0, c] == 0:
            full = False
    return won or full, 1.0 if won else 0.0


@njit(inline="always")
def _open_columns(board: np.ndarray, out: np.ndarray) -> None:
    for c in range(board.shape[1]):
        out[c] = board[0, c] == 0


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

    @property
    def compiled(self) -> None:
        return None

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
