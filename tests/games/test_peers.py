"""OpenSpiel's C++ MCTSBot as a peer in our arena (extra 'peers'; `make test` installs it)."""

from __future__ import annotations

import numpy as np
import pytest

from selfimprove.core.config import ConfigError
from selfimprove.experiments import parse_config
from selfimprove.games.arena import play_pairs, random_openings
from selfimprove.games.bots import MctsBot
from selfimprove.games.peers import OpenSpielMcts, move_sequence
from selfimprove.games.rules import ConnectFour, boards_from_moves

C4 = ConnectFour()


def test_move_sequence_rebuilds_every_board_of_random_games() -> None:
    rng = np.random.default_rng(0)
    for plies in (0, 1, 2, 7, 12, 20):
        for board in random_openings(C4, 40, plies, rng):
            order = move_sequence(board)
            assert len(order) == plies
            assert (boards_from_moves(C4, [order])[0] == board).all()


def test_move_sequence_refuses_boards_no_game_reaches() -> None:
    floating = C4.initial(1)[0]
    floating[3, 3] = 1  # a stone in mid-air
    counts = C4.initial(1)[0]
    counts[5, :3] = -1  # three opponent stones, none of the mover's
    for board in (floating, counts):
        with pytest.raises(ValueError):
            move_sequence(board)


def test_openspiel_mcts_takes_an_immediate_win_and_blocks_a_forced_loss() -> None:
    pytest.importorskip("pyspiel")
    roots = boards_from_moves(C4, [[0, 0, 1, 1, 2, 2], [0, 6, 1, 6, 2]])
    assert OpenSpielMcts(300)(roots, np.random.default_rng(0)).tolist() == [3, 3]


def test_openspiel_mcts_and_ours_are_the_same_player_class() -> None:
    """Both are random-rollout MCTS: at 100 simulations each neither side is swept (paired
    openings), while our bot sweeps OpenSpiel's at 5 simulations."""
    pytest.importorskip("pyspiel")
    openings = random_openings(C4, 12, 2, np.random.default_rng(1))
    ours = play_pairs(C4, MctsBot(C4, 100), OpenSpielMcts(100), openings, np.random.default_rng(2))
    weak = play_pairs(C4, MctsBot(C4, 100), OpenSpielMcts(5), openings, np.random.default_rng(3))
    assert 0.15 < ours.score < 0.85
    assert weak.score > 0.8


def test_peers_are_refused_outside_connect4() -> None:
    data = {"kind": "games.alphazero", "game": "tictactoe", "evaluation": {"peers": [100]}}
    with pytest.raises(ConfigError, match="connect4"):
        parse_config(data, "test")
