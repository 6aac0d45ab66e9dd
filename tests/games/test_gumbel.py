"""Gumbel root search: budget, known answers, and a proper improved policy."""

import numpy as np

from selfimprove.games.bots import RolloutEvaluator, UniformEvaluator
from selfimprove.games.gumbel import gumbel_search
from selfimprove.games.mcts import SearchConfig
from selfimprove.games.rules import ConnectFour, TicTacToe, boards_from_moves
from selfimprove.games.solvers import solve_tictactoe

C4 = ConnectFour()


def test_spends_exactly_the_budget_and_returns_a_policy() -> None:
    roots = boards_from_moves(C4, [[], [0] * 6, [3, 3, 4]])  # the second has a full column
    result = gumbel_search(
        C4,
        UniformEvaluator(7),
        roots,
        SearchConfig(num_simulations=13),
        4,
        np.random.default_rng(0),
    )
    assert result.visits.sum(axis=1).tolist() == [13, 13, 13]
    assert np.allclose(result.policy.sum(axis=1), 1.0)
    assert result.policy[1, 0] == 0.0 and result.visits[1, 0] == 0  # illegal: never considered
    assert C4.legal_actions(roots)[np.arange(3), result.action].all()


def test_finds_an_immediate_win_with_few_simulations() -> None:
    roots = boards_from_moves(C4, [[0, 0, 1, 1, 2, 2]] * 8)  # X to move wins at column 3
    result = gumbel_search(
        C4,
        UniformEvaluator(7),
        roots,
        SearchConfig(num_simulations=16),
        7,
        np.random.default_rng(1),
    )
    assert (result.action == 3).all()
    assert (result.policy.argmax(axis=1) == 3).all()  # the improved policy learns it too


def test_agrees_with_minimax_where_a_move_is_forced() -> None:
    game, solution = TicTacToe(), solve_tictactoe()
    boards = solution.forced_positions()
    result = gumbel_search(
        game,
        RolloutEvaluator(game),
        boards,
        SearchConfig(num_simulations=64),
        9,
        np.random.default_rng(2),
    )
    right = np.mean(
        [solution.optimal_actions(b)[a] for b, a in zip(boards, result.action, strict=True)]
    )
    assert right > 0.9, f"{right:.3f}"


def test_gumbel_self_play_records_improved_policies() -> None:
    from selfimprove.games.selfplay import SelfPlaySettings, self_play

    game = TicTacToe()
    positions = self_play(
        game,
        UniformEvaluator(9),
        SearchConfig(num_simulations=8),
        10,
        np.random.default_rng(3),
        SelfPlaySettings(temperature_moves=0, gumbel_considered=4),
    )
    assert np.allclose(positions.policies.sum(axis=1), 1.0)
    assert (positions.policies[positions.boards.reshape(-1, 9) != 0] == 0).all()
    assert set(np.unique(positions.values)) <= {-1.0, 0.0, 1.0}
