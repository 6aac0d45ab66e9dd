"""Othello 6x6 rules against hand-checked positions."""

import numpy as np

from selfimprove.games.bots import random_legal_actions
from selfimprove.games.rules import Othello

GAME = Othello()


def test_opening_has_four_moves_and_a_move_flips_one_disc() -> None:
    board = GAME.initial(1)
    legal = GAME.legal_actions(board)[0]
    # Dark (to move) on d3 = (2, 3) and c4 = (3, 2); light on (2, 2) and (3, 3). Dark's moves
    # flank a light disc: (1, 2), (2, 1), (3, 4), (4, 3).
    assert sorted(np.flatnonzero(legal).tolist()) == [1 * 6 + 2, 2 * 6 + 1, 3 * 6 + 4, 4 * 6 + 3]
    step = GAME.play(board, np.array([1 * 6 + 2]))  # dark at (1, 2) flips (2, 2)
    after = -step.boards[0]  # back to dark's view
    assert after[1, 2] == 1 and after[2, 2] == 1 and after[3, 3] == -1
    assert (after == 1).sum() == 4 and (after == -1).sum() == 1
    assert not step.terminal[0]


def test_a_move_flips_in_several_directions_at_once() -> None:
    board = np.zeros((1, 6, 6), dtype=np.int8)
    board[0, 0, 0] = board[0, 0, 4] = board[0, 4, 4] = 1
    board[0, 1, 1] = board[0, 1, 3] = board[0, 0, 3] = board[0, 2, 4] = board[0, 3, 4] = -1
    # +1 at (2, 2): up-left runs (1, 1) then (0, 0) = +1, flip; up-right runs (1, 3) then
    # (0, 4) = +1, flip. (0, 3) lies on no line from (2, 2); the column (2..4, 4) is not
    # reached (the cell right of (2, 2) is empty).
    step = GAME.play(board, np.array([2 * 6 + 2]))
    after = -step.boards[0]
    assert after[1, 1] == 1 and after[1, 3] == 1
    assert after[0, 3] == -1 and after[2, 4] == -1 and after[3, 4] == -1
    assert (after == 1).sum() == 6


def test_pass_is_legal_only_without_a_placement_and_the_game_ends_when_nobody_can_place() -> None:
    board = np.zeros((1, 6, 6), dtype=np.int8)
    board[0, 0, 0], board[0, 0, 1] = 1, -1  # +1 cannot place (nothing to flank beyond (0, 1))
    board[0, 0, 3] = 1
    legal = GAME.legal_actions(board)[0]
    assert legal[0 * 6 + 2] and not legal[36]  # (0, 2) closes (0, 1) against (0, 0)
    step = GAME.play(board, np.array([2]))
    # Now +1 owns the row: 4 discs, the opponent none; nobody can place: the mover wins.
    assert step.terminal[0] and step.mover_result[0] == 1.0
    stuck = np.zeros((1, 6, 6), dtype=np.int8)
    stuck[0, 0, 0], stuck[0, 5, 5] = 1, -1
    assert GAME.legal_actions(stuck)[0].tolist() == [False] * 36 + [True]


def test_random_games_end_with_a_full_or_blocked_board_and_a_sign_result() -> None:
    rng = np.random.default_rng(0)
    boards = GAME.initial(64)
    alive = np.ones(64, dtype=bool)
    plies = 0
    results = np.zeros(64)
    while alive.any():
        index = np.flatnonzero(alive)
        step = GAME.play(boards[index], random_legal_actions(GAME, boards[index], rng))
        boards[index] = step.boards
        results[index[step.terminal]] = step.mover_result[step.terminal]
        alive[index[step.terminal]] = False
        plies += 1
        assert plies <= GAME.max_plies
    discs = (boards != 0).sum(axis=(1, 2))
    assert discs.max() == 36 and discs.min() >= 5
    assert set(np.unique(results)) <= {-1.0, 0.0, 1.0} and (results != 0).mean() > 0.8
