"""Arena invariants and Elo arithmetic with known answers."""

import numpy as np
import pytest

from selfimprove.games.arena import (
    MatchResult,
    bootstrap_elo,
    elo_difference,
    ladder_elo,
    play_pairs,
    random_openings,
)
from selfimprove.games.bots import MctsBot, random_legal_actions
from selfimprove.games.rules import ConnectFour, TicTacToe
from selfimprove.games.solvers import solve_tictactoe
from tests.games.lines import has_line


def test_a_deterministic_player_against_itself_scores_exactly_one_point_per_pair() -> None:
    game = ConnectFour()
    first_legal = lambda boards, rng: game.legal_actions(boards).argmax(axis=1)  # noqa: E731
    openings = random_openings(game, 20, 4, np.random.default_rng(0))
    result = play_pairs(game, first_legal, first_legal, openings, np.random.default_rng(1))
    assert result.scores.tolist() == [1.0] * 20  # colours swap, the games mirror: luck cancels


def test_perfect_tictactoe_never_loses_to_random_and_draws_itself() -> None:
    game, solution = TicTacToe(), solve_tictactoe()

    def perfect(boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.array([int(np.flatnonzero(solution.optimal_actions(b))[0]) for b in boards])

    openings = random_openings(game, 50, 1, np.random.default_rng(2))
    versus_random = play_pairs(
        game,
        perfect,
        lambda b, r: random_legal_actions(game, b, r),
        openings,
        np.random.default_rng(3),
    )
    assert versus_random.losses == 0  # a perfect player never loses
    assert versus_random.score > 0.8
    assert play_pairs(game, perfect, perfect, openings, np.random.default_rng(4)).score == 0.5


def test_elo_arithmetic() -> None:
    assert elo_difference(0.5) == 0.0
    assert elo_difference(0.75) == pytest.approx(190.85, abs=0.01)
    # Against one anchor rated 100, scoring 75% means a rating of 100 + 190.85.
    result = MatchResult(np.ones(40), np.full(40, 0.5))  # 1.5 points per pair: 75%
    assert ladder_elo({100.0: result}) == pytest.approx(290.85, abs=0.5)
    low, high = bootstrap_elo(
        {100.0: MatchResult(np.array([1.0, 0.5] * 20), np.array([1.0, 0.5] * 20))},
        np.random.default_rng(0),
    )
    assert low < 290.85 < high


def test_more_simulations_beat_fewer() -> None:
    game = ConnectFour()
    openings = random_openings(game, 20, 2, np.random.default_rng(5))
    strong, weak = MctsBot(game, 200), MctsBot(game, 10)
    assert play_pairs(game, strong, weak, openings, np.random.default_rng(6)).score > 0.7


def test_deep_random_openings_end_no_game_and_never_hang() -> None:
    rng = np.random.default_rng(7)
    for game, plies, length in ((ConnectFour(), 34, 4), (TicTacToe(), 7, 3)):
        openings = random_openings(game, 40, plies, rng)  # both used to hang forever
        assert ((openings != 0).sum(axis=(1, 2)) == plies).all()
        assert not (has_line(openings == 1, length) | has_line(openings == -1, length)).any()
    with pytest.raises(ValueError, match="end every game"):
        random_openings(TicTacToe(), 5, 9, rng)
