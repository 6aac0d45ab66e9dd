"""Ground truth: the tic-tac-toe solver's known answers and the Pons table's scoring."""

import numpy as np
import pytest

from selfimprove.games.bots import UniformEvaluator
from selfimprove.games.mcts import SearchConfig, search
from selfimprove.games.pons import load_pons, wilson_interval
from selfimprove.games.rules import ConnectFour, TicTacToe, boards_from_moves
from selfimprove.games.solvers import solve_tictactoe
from tests.conftest import REPO

PONS = REPO.parent / "shared" / "data" / "connect4" / "pons_move_scores.tsv"


def test_tictactoe_has_5478_positions_and_is_a_draw() -> None:
    solution = solve_tictactoe()
    assert len(solution.values) == 5478
    assert solution.values[TicTacToe().initial(1)[0].tobytes()] == 0


def test_tictactoe_known_positions() -> None:
    solution, ttt = solve_tictactoe(), TicTacToe()
    # X: 0, 1; O: 3, 4; X to move wins at once by completing the top row.
    board = boards_from_moves(ttt, [[0, 3, 1, 4]])[0]
    assert solution.values[board.tobytes()] == 1
    assert solution.optimal_actions(board).tolist() == [i == 2 for i in range(9)]
    # X in a corner, O answers on an edge next to it: X wins with perfect play.
    assert solution.values[boards_from_moves(ttt, [[0, 1]])[0].tobytes()] == 1
    # X in a corner, O in the centre: a draw.
    assert solution.values[boards_from_moves(ttt, [[0, 4]])[0].tobytes()] == 0


@pytest.mark.skipif(not PONS.is_file(), reason="shared/data is not beside this checkout")
def test_pons_table_scores_rows_by_hand() -> None:
    sets = load_pons(PONS)
    assert {name: len(s.sequences) for name, s in sets.items()} == dict.fromkeys(
        ["Test_L3_R1", "Test_L2_R1", "Test_L2_R2", "Test_L1_R1"], 1000
    )
    end = sets["Test_L3_R1"]
    # Row 1: 2252576253462244111563365343671351441, scores . . . . . -1 -2: both legal moves
    # lose, so no move is a mistake (the row still counts in the denominator).
    assert end.sequences[0] == "2252576253462244111563365343671351441"
    one = end.subset(slice(0, 1))
    assert one.mistakes(np.array([5])).tolist() == [False]
    assert one.mistakes(np.array([6])).tolist() == [False]
    # Row 2: scores -3 1 . . -4 1 . : columns 2 and 6 win; 1 and 5 are mistakes.
    two = end.subset(slice(1, 2))
    assert [two.mistakes(np.array([a]))[0] for a in (0, 1, 4, 5)] == [True, False, True, False]
    with pytest.raises(ValueError, match="full column"):
        two.mistakes(np.array([2]))


@pytest.mark.skipif(not PONS.is_file(), reason="shared/data is not beside this checkout")
def test_pons_boards_and_best_moves_agree_with_the_rules() -> None:
    sets = load_pons(PONS)
    for pons_set in sets.values():
        boards = pons_set.boards
        legal = ConnectFour().legal_actions(boards)
        assert (legal == ~np.isnan(pons_set.move_scores)).all()  # the table's "." are full columns
        best = np.nanargmax(pons_set.move_scores, axis=1)
        assert not pons_set.mistakes(best).any()  # a perfect player makes no mistakes


def test_wilson_interval() -> None:
    low, high = wilson_interval(0, 1000)
    assert low == 0.0 and 0.003 < high < 0.004
    low, high = wilson_interval(50, 1000)
    assert low < 0.05 < high and high - low < 0.03


@pytest.mark.skipif(not PONS.is_file(), reason="shared/data is not beside this checkout")
def test_rollout_mcts_1000_matches_the_published_pons_mistake_rates() -> None:
    """REFERENCES.md: random-rollout MCTS-1000 makes 0.3 / 0.6 / 7.7 / 3.7% mistakes on
    End-Easy / Middle-Easy / Middle-Medium / Beginning-Easy. Ours, on the first 300 positions
    of each set, must be no worse by more than 3 points (about 2 standard errors)."""
    from selfimprove.games.bots import MctsBot
    from selfimprove.games.pons import SET_LABELS

    published = {"End-Easy": 0.3, "Middle-Easy": 0.6, "Middle-Medium": 7.7, "Beginning-Easy": 3.7}
    bot = MctsBot(ConnectFour(), num_simulations=1000)
    for name, pons_set in load_pons(PONS).items():
        subset = pons_set.subset(slice(0, 300))
        rate = 100 * subset.mistakes(bot(subset.boards, np.random.default_rng(0))).mean()
        assert rate <= published[SET_LABELS[name]] + 3.0, f"{name}: {rate:.1f}%"


@pytest.mark.skipif(not PONS.is_file(), reason="shared/data is not beside this checkout")
def test_every_solver_proof_agrees_with_pons_exact_scores() -> None:
    """MCTS-Solver's proven root actions (win / draw / loss for the mover) match the sign of
    the exact move scores, on end-game and mid-game positions where it proves hundreds."""
    game = ConnectFour()
    for name in ("Test_L3_R1", "Test_L2_R1"):
        pons_set = load_pons(PONS)[name].subset(slice(0, 100))
        result = search(
            game,
            UniformEvaluator(7),
            pons_set.boards,
            SearchConfig(num_simulations=500, solver=True),
            np.random.default_rng(0),
        )
        proven = ~np.isnan(result.proven)
        assert proven.sum() > 150, name
        assert (result.proven[proven] == np.sign(pons_set.move_scores)[proven]).all(), name
        wins = (result.proven == 1).any(axis=1)  # a proven win is the move it plays
        assert (result.proven[np.arange(100), result.best_action][wins] == 1).all()
