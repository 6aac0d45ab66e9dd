"""Batched MCTS against answers known in advance."""

import numpy as np

from selfimprove.games.bots import MctsBot, RolloutEvaluator, UniformEvaluator, rollout_values
from selfimprove.games.mcts import SearchConfig, advance, search
from selfimprove.games.network import NetEvaluator, NetSpec, initial_model
from selfimprove.games.rules import ConnectFour, TicTacToe, boards_from_moves
from selfimprove.games.solvers import solve_tictactoe

C4 = ConnectFour()


def test_visit_counts_sum_to_the_simulations() -> None:
    roots = boards_from_moves(C4, [[], [3, 3], [0, 1, 2, 3, 4]])
    result = search(
        C4, UniformEvaluator(7), roots, SearchConfig(num_simulations=57), np.random.default_rng(0)
    )
    assert result.visits.sum(axis=1).tolist() == [57, 57, 57]
    assert (result.visits[:, ~C4.legal_actions(roots)[0]] == 0).all()


def test_mcts_takes_an_immediate_win_and_blocks_a_forced_loss() -> None:
    win = [0, 0, 1, 1, 2, 2]  # X: a, b, c on the bottom row; X to move wins at d
    block = [0, 6, 1, 6, 2]  # X: a, b, c; O to move must block at d
    roots = boards_from_moves(C4, [win, block])
    for evaluator in (UniformEvaluator(7), RolloutEvaluator(C4)):
        result = search(
            C4, evaluator, roots, SearchConfig(num_simulations=300), np.random.default_rng(1)
        )
        assert result.visits.argmax(axis=1).tolist() == [3, 3], type(evaluator).__name__
    assert result.q[0, 3] == 1.0  # the winning move's value is exact: a terminal win


def test_one_batched_search_equals_searching_each_game_alone() -> None:
    roots = boards_from_moves(C4, [[3], [2, 4, 3]])
    config = SearchConfig(num_simulations=40)
    together = search(C4, UniformEvaluator(7), roots, config, np.random.default_rng(2)).visits
    for i in range(2):
        alone = search(
            C4, UniformEvaluator(7), roots[i : i + 1], config, np.random.default_rng(2)
        ).visits
        assert (alone[0] == together[i]).all()


def test_rollout_values_of_decided_positions() -> None:
    ttt = TicTacToe()
    # X O X / X O O / O X . with X to move: the last cell draws, whatever the rollout does.
    board = boards_from_moves(ttt, [[0, 1, 2, 4, 3, 5, 7, 6]])
    assert rollout_values(ttt, board, np.random.default_rng(0)).tolist() == [0.0]
    # X X . / O O X / X . O with O to move, cells 2 and 7 left: O at 2 draws; O at 7 lets X
    # win at 2. Random rollouts see both outcomes, from O's view 0 and -1, and nothing else.
    board = boards_from_moves(ttt, [[0, 3, 1, 4, 6, 8, 5]])
    values = rollout_values(ttt, np.repeat(board, 200, axis=0), np.random.default_rng(0))
    assert set(values.tolist()) == {0.0, -1.0}


def test_mcts_agrees_with_minimax_where_a_move_is_forced() -> None:
    """Every reachable tic-tac-toe position with exactly one optimal move that wins or saves."""
    ttt, solution = TicTacToe(), solve_tictactoe()
    boards = solution.forced_positions()
    assert len(boards) == 2184
    bot = MctsBot(ttt, num_simulations=400)
    chosen = bot(boards, np.random.default_rng(3))
    right = [solution.optimal_actions(b)[a] for b, a in zip(boards, chosen, strict=True)]
    assert np.mean(right) > 0.97, f"{np.mean(right):.3f} of {len(boards)} forced positions"


def test_subtree_reuse_carries_the_chosen_childs_visits_into_the_next_search() -> None:
    roots = boards_from_moves(C4, [[], [3], [3, 3]])
    config = SearchConfig(num_simulations=60)
    first = search(C4, UniformEvaluator(7), roots, config, np.random.default_rng(0))
    actions = first.visits.argmax(axis=1)
    rows = np.arange(3)
    child = first.forest.children[rows, 0, actions]
    carried = first.forest.visits[rows, child].sum(axis=1)  # visits below the chosen child
    assert (carried > 0).all()
    keep = np.array([True, False, True])  # drop the second game, as if it had ended
    forest = advance(C4, first.forest, actions, keep)
    after = C4.play(roots, actions).boards[keep]
    second = search(C4, UniformEvaluator(7), after, config, np.random.default_rng(1), reuse=forest)
    assert second.visits.sum(axis=1).tolist() == (carried[keep] + 60).tolist()
    assert (second.forest.boards[np.arange(2), second.forest.root] == after).all()


def test_the_forest_grows_past_its_first_capacity() -> None:
    boards = C4.initial(2)
    config = SearchConfig(num_simulations=30)
    forest = None
    for _ in range(6):  # six moves, 30 new nodes each: far past the first 31 slots
        result = search(
            C4, UniformEvaluator(7), boards, config, np.random.default_rng(2), reuse=forest
        )
        actions = result.visits.argmax(axis=1)
        step = C4.play(boards, actions)
        forest = advance(C4, result.forest, actions, ~step.terminal)
        boards = step.boards
    assert forest.children.shape[1] > 31 and forest.size.max() <= forest.children.shape[1]


class _Uncompiled(ConnectFour):
    """Connect Four without its compiled rules: the search takes the generic numpy path."""

    @property
    def compiled(self) -> None:
        return None


def test_the_compiled_step_searches_exactly_as_the_generic_path() -> None:
    rng = np.random.default_rng(3)
    model = initial_model(NetSpec(kind="mlp", hidden=16), 6, 7, 7, rng)
    roots = boards_from_moves(C4, [[], [3, 3], [0, 1, 0, 1, 0], [3, 2, 3, 2, 3, 2]])
    for evaluator in (NetEvaluator.of(model), RolloutEvaluator(C4)):
        for config in (
            SearchConfig(num_simulations=80, dirichlet_fraction=0.25),
            SearchConfig(num_simulations=80, solver=True),
        ):
            results = []
            for game in (C4, _Uncompiled()):
                first = search(game, evaluator, roots, config, np.random.default_rng(4))
                actions = first.visits.argmax(axis=1)
                forest = advance(game, first.forest, actions, np.ones(4, dtype=bool))
                after = C4.play(roots, actions).boards
                second = search(game, evaluator, after, config, np.random.default_rng(5), forest)
                results.append((first, second))
            for compiled, generic in zip(*results, strict=True):
                for field in ("visits", "q", "value", "proven"):
                    assert np.array_equal(
                        getattr(compiled, field), getattr(generic, field), equal_nan=True
                    ), field
                assert np.array_equal(compiled.forest.boards, generic.forest.boards)
