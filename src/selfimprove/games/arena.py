"""Arena and Elo ladder: paired games against fixed opponents, with bootstrap intervals.

A small unpaired arena is noise (REFERENCES.md: 40 games at a 60% bar has a standard error of
~0.08). Here every randomized opening is played twice with colours swapped, so first-move
advantage and opening luck cancel within a pair, and the Elo interval comes from resampling
pairs. Players are batched callables `(boards, rng) -> actions`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from selfimprove.games.bots import random_legal_actions
from selfimprove.games.rules import Game

Player = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class MatchResult:
    a_first: np.ndarray  # [pairs] A's points (0, 0.5, 1) in the game where A moved first
    a_second: np.ndarray  # [pairs] A's points in the game where A moved second

    @property
    def scores(self) -> np.ndarray:
        """A's points per pair of games, 0 to 2."""
        return self.a_first + self.a_second

    @property
    def losses(self) -> int:
        """Games A lost."""
        return int((self.a_first == 0).sum() + (self.a_second == 0).sum())

    @property
    def score(self) -> float:
        """A's share of the points, 0..1."""
        return float(self.scores.mean() / 2)


def random_openings(
    game: Game, num: int, plies: int, rng: np.random.Generator, rounds: int = 20
) -> np.ndarray:
    """`num` positions after `plies` random moves that end no game. A move that ends a game is
    redrawn (up to 64 times); a line where no redraw helped (every move there ends the game,
    or bad luck) is dropped and drawn again from the start, for at most `rounds` rounds."""
    if plies >= game.max_plies:
        raise ValueError(f"{plies} plies end every game of {game.name}")
    boards = game.initial(num)
    stuck = np.zeros(num, dtype=bool)
    for _ in range(plies):
        moves = random_legal_actions(game, boards, rng)
        step = game.play(boards, moves)
        for _ in range(64):
            bad = step.terminal & ~stuck
            if not bad.any():
                break
            moves[bad] = random_legal_actions(game, boards[bad], rng)
            step = game.play(boards, moves)
        stuck |= step.terminal
        boards = np.where(stuck[:, None, None], boards, step.boards)
    if stuck.any():
        if rounds <= 1:
            raise ValueError(f"could not draw {num} openings of {plies} plies that end no game")
        boards[stuck] = random_openings(game, int(stuck.sum()), plies, rng, rounds - 1)
    return boards


def play_pairs(
    game: Game, player_a: Player, player_b: Player, openings: np.ndarray, rng: np.random.Generator
) -> MatchResult:
    """Each opening twice: A moves first once and second once."""
    points = {True: np.zeros(len(openings)), False: np.zeros(len(openings))}
    for a_moves_first in (True, False):
        boards = openings.copy()
        alive = np.ones(len(boards), dtype=bool)
        move = 0
        while alive.any():
            index = np.flatnonzero(alive)
            a_turn = (move % 2 == 0) == a_moves_first
            actions = (player_a if a_turn else player_b)(boards[index], rng)
            step = game.play(boards[index], actions)
            boards[index] = step.boards
            ended = index[step.terminal]
            result = step.mover_result[step.terminal]  # for the mover: +1, 0, -1
            points[a_moves_first][ended] = 0.5 + 0.5 * (result if a_turn else -result)
            alive[ended] = False
            move += 1
    return MatchResult(points[True], points[False])


def elo_difference(score: float) -> float:
    """Elo gap implied by an expected score (clipped away from 0 and 1)."""
    s = min(max(score, 1e-3), 1 - 1e-3)
    return 400.0 * math.log10(s / (1 - s))


def ladder_elo(results: Mapping[float, MatchResult]) -> float:
    """Maximum-likelihood rating of a player from matches against anchors of known rating."""
    points = [(rating, r.scores / 2) for rating, r in results.items()]

    def negative_log_likelihood(rating: float) -> float:
        total = 0.0
        for anchor, pair_scores in points:
            expected = 1 / (1 + 10 ** ((anchor - rating) / 400))
            expected = min(max(expected, 1e-9), 1 - 1e-9)
            total -= float(
                (
                    pair_scores * math.log(expected) + (1 - pair_scores) * math.log(1 - expected)
                ).sum()
            )
        return total

    return float(minimize_scalar(negative_log_likelihood, bounds=(-2000, 4000), method="bounded").x)


def bootstrap_elo(
    results: Mapping[float, MatchResult], rng: np.random.Generator, samples: int = 500
) -> tuple[float, float]:
    """95% interval of the ladder rating, resampling each match's pairs."""
    draws = []
    for _ in range(samples):
        resampled = {}
        for rating, r in results.items():
            pick = rng.integers(0, len(r.scores), len(r.scores))
            resampled[rating] = MatchResult(r.a_first[pick], r.a_second[pick])
        draws.append(ladder_elo(resampled))
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)
