"""Fixed opponents: random players and random-rollout MCTS (the REFERENCES.md ladder)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selfimprove.games.mcts import SearchConfig, search
from selfimprove.games.rules import Game


def random_legal_actions(game: Game, boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    legal = game.legal_actions(boards)
    return (rng.random(legal.shape) * legal).argmax(axis=1)


def rollout_values(game: Game, boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Play random legal moves to the end; the result for the player to move at the start."""
    current = boards.copy()
    sign = np.ones(len(boards))  # +1 while the starting player is the one moving
    value = np.zeros(len(boards))
    alive = np.ones(len(boards), dtype=bool)
    while alive.any():
        index = np.flatnonzero(alive)
        step = game.play(current[index], random_legal_actions(game, current[index], rng))
        current[index] = step.boards
        ended = index[step.terminal]
        value[ended] = sign[ended] * step.mover_result[step.terminal]
        alive[index[step.terminal]] = False
        sign[index] = -sign[index]
    return value


@dataclass(frozen=True)
class RolloutEvaluator:
    """Uniform priors and one random playout per leaf: classic MCTS inside PUCT."""

    game: Game

    def __call__(
        self, boards: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        priors = np.ones((len(boards), self.game.num_actions))
        return priors, rollout_values(self.game, boards, rng)


@dataclass(frozen=True)
class UniformEvaluator:
    """Uniform priors, value 0: search guided only by terminal outcomes."""

    num_actions: int

    def __call__(
        self, boards: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        del rng
        return np.ones((len(boards), self.num_actions)), np.zeros(len(boards))


@dataclass(frozen=True)
class MctsBot:
    """Random-rollout MCTS with a fixed simulation budget; plays its most visited move."""

    game: Game
    num_simulations: int

    def __call__(self, boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        config = SearchConfig(num_simulations=self.num_simulations, c_puct=2.0)
        result = search(self.game, RolloutEvaluator(self.game), boards, config, rng)
        return result.visits.argmax(axis=1)
