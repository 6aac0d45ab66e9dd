"""Game rules against hand-checked positions."""

import numpy as np

from selfimprove.games.rules import ConnectFour, Othello, TicTacToe, boards_from_moves, legal
from selfimprove.games.solvers import solve_tictactoe
from tests.games.lines import has_line

C4 = ConnectFour()


def test_connect4_stones_fall_and_boards_flip_to_the_player_to_move() -> None:
    board = boards_from_moves(C4, [[3, 3, 4]])[0]  # X d, O d, X e
    # X has moved twice, O once: O is to move, so O's stone is +1, X's are -1.
    assert board[5, 3] == -1 and board[4, 3] == 1 and board[5, 4] == -1
    assert (board != 0).sum() == 3


def test_connect4_horizontal_vertical_and_both_diagonal_wins() -> None:
    games = {
        "horizontal": [0, 0, 1, 1, 2, 2, 3],
        "vertical": [0, 1, 0, 1, 0, 1, 0],
        "diagonal /": [0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3],
        "diagonal \\": [6, 5, 5, 4, 4, 3, 4, 3, 3, 0, 3],
    }
    for name, moves in games.items():
        board = boards_from_moves(C4, [moves[:-1]])
        step = C4.play(board, np.array([moves[-1]]))
        assert step.terminal[0] and step.mover_won[0], name
        before = C4.play(boards_from_moves(C4, [moves[:-2]]), np.array([moves[-2]]))
        assert not before.terminal[0], name


def test_connect4_full_column_is_illegal_and_a_full_board_is_a_draw() -> None:
    board = boards_from_moves(C4, [[0] * 6])
    assert C4.legal_actions(board).tolist() == [[False] + [True] * 6]
    # A known drawn filling: columns in pairs, shifted so that no four line up.
    order = [
        0,
        1,
        0,
        1,
        0,
        1,
        1,
        0,
        1,
        0,
        1,
        0,
        2,
        3,
        2,
        3,
        2,
        3,
        3,
        2,
        3,
        2,
        3,
        2,
        4,
        5,
        4,
        5,
        4,
        5,
        5,
        4,
        5,
        4,
        5,
        4,
        6,
        6,
        6,
        6,
        6,
        6,
    ]
    boards = C4.initial(1)
    for i, move in enumerate(order):
        step = C4.play(boards, np.array([move]))
        boards = step.boards
        assert step.mover_won[0] == False  # noqa: E712
        assert step.terminal[0] == (i == len(order) - 1)


def test_tictactoe_lines_and_draw() -> None:
    ttt = TicTacToe()
    win = boards_from_moves(ttt, [[0, 3, 1, 4]])
    step = ttt.play(win, np.array([2]))
    assert step.terminal[0] and step.mover_won[0]
    draw = [0, 1, 2, 4, 3, 5, 7, 6, 8]  # X O X / X O O / O X X
    boards = boards_from_moves(ttt, [draw[:-1]])
    step = ttt.play(boards, np.array([draw[-1]]))
    assert step.terminal[0] and not step.mover_won[0]


def test_has_line_lengths() -> None:
    row = np.zeros((1, 6, 7), dtype=bool)
    row[0, 2, 1:4] = True
    assert not has_line(row, 4)[0] and has_line(row, 3)[0]


def _reference_play(boards: np.ndarray, actions: np.ndarray, length: int) -> tuple:
    """The rules spelled out in numpy: place a +1 stone (Connect Four: in the lowest empty
    cell of the column), look for a line anywhere, flip the board to the next mover."""
    placed = boards.copy()
    for i, action in enumerate(actions):
        if length == 4:
            row = max(r for r in range(6) if boards[i, r, action] == 0)
            placed[i, row, action] = 1
        else:
            placed[i, action // 3, action % 3] = 1
    won = has_line(placed == 1, length)
    full = (placed != 0).all(axis=(1, 2))
    return -placed, won | full, won.astype(float)


def test_compiled_rules_agree_with_the_rules_spelled_out_in_numpy() -> None:
    rng = np.random.default_rng(0)
    c4_boards = np.concatenate(
        [
            boards_from_moves(C4, [list(rng.integers(7, size=plies))])
            for plies in rng.integers(0, 30, size=400)
        ]
    )
    c4_boards = c4_boards[~(has_line(c4_boards == 1, 4) | has_line(c4_boards == -1, 4))]
    ttt = TicTacToe()
    ttt_boards = np.stack(  # every non-terminal position reachable in play
        [np.frombuffer(key, dtype=np.int8).reshape(3, 3) for key in solve_tictactoe().action_values]
    )
    for game, boards, length in ((C4, c4_boards, 4), (ttt, ttt_boards, 3)):
        moves = game.legal_actions(boards)
        row = np.zeros(game.num_actions, dtype=bool)
        for board, expected in zip(boards, moves, strict=True):  # the compiled legal moves
            legal(game.compiled, board, row)
            assert np.array_equal(row, expected)
        for action in range(game.num_actions):
            can = moves[:, action]
            actions = np.full(int(can.sum()), action)
            step = game.play(boards[can], actions)
            after, terminal, result = _reference_play(boards[can], actions, length)
            assert np.array_equal(step.boards, after) and np.array_equal(step.terminal, terminal)
            assert np.array_equal(step.mover_result, result)
    assert Othello().compiled is None
