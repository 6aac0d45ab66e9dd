"""Self-play: many games at once, one batched search per move for every unfinished game.

Each recorded position carries the search's visit distribution (the policy target) and the
final outcome from the view of the player to move there (the value target).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selfimprove.games.gumbel import gumbel_search
from selfimprove.games.mcts import Evaluator, Forest, SearchConfig, advance, search
from selfimprove.games.rules import Game


@dataclass(frozen=True)
class Positions:
    """Training positions from one generation's self-play games."""

    boards: np.ndarray  # [n, R, C] canonical
    policies: np.ndarray  # [n, A] visit distributions
    values: np.ndarray  # [n] final outcome for the player to move: +1 win, 0 draw, -1 loss
    search_values: np.ndarray  # [n] the search's root value there (same view), for value_mix
    generation: int
    num_games: int


def sample_actions(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row drawn from `probs` `[B, A]`."""
    cumulative = probs.cumsum(axis=1)
    u = rng.random((len(probs), 1)) * cumulative[:, -1:]
    return np.minimum((cumulative <= u).sum(axis=1), probs.shape[1] - 1)


def self_play(
    game: Game,
    evaluator: Evaluator,
    config: SearchConfig,
    num_games: int,
    temperature_moves: int,
    generation: int,
    rng: np.random.Generator,
    reuse_tree: bool = True,
    gumbel_considered: int = 0,
) -> Positions:
    """Play `num_games` games; moves before `temperature_moves` are sampled from the visits.
    With `reuse_tree`, the subtree under each move played carries its statistics into the
    next move's search. With `gumbel_considered` > 0, Gumbel root search picks the moves and
    its improved policy is the target (no temperature sampling: the Gumbel noise explores)."""
    boards = game.initial(num_games)
    alive = np.ones(num_games, dtype=bool)
    winner_parity = np.full(num_games, -1)  # parity of the winning mover; -1 while none / draw
    seen_boards, seen_policies, seen_games, seen_parity = [], [], [], []
    seen_values: list[np.ndarray] = []
    move = 0
    forest: Forest | None = None
    while alive.any():
        index = np.flatnonzero(alive)
        if gumbel_considered:
            planned = gumbel_search(game, evaluator, boards[index], config, gumbel_considered, rng)
            policy, actions, root_value = planned.policy, planned.action, planned.value
        else:
            result = search(game, evaluator, boards[index], config, rng, reuse=forest)
            visits, root_value = result.visits, result.value
            policy = visits / visits.sum(axis=1, keepdims=True)
            actions = (
                sample_actions(policy, rng) if move < temperature_moves else visits.argmax(axis=1)
            )
        seen_boards.append(boards[index])
        seen_policies.append(policy)
        seen_values.append(root_value)
        seen_games.append(index)
        seen_parity.append(np.full(len(index), move % 2))
        step = game.play(boards[index], actions)
        boards[index] = step.boards
        if reuse_tree and not gumbel_considered:
            forest = advance(game, result.forest, actions, ~step.terminal)
        winner_parity[index[step.mover_result > 0]] = move % 2
        winner_parity[index[step.mover_result < 0]] = 1 - move % 2  # the mover lost (Othello)
        alive[index[step.terminal]] = False
        move += 1
    games, parity = np.concatenate(seen_games), np.concatenate(seen_parity)
    winner = winner_parity[games]
    values = np.where(winner < 0, 0.0, np.where(winner == parity, 1.0, -1.0))
    return Positions(
        np.concatenate(seen_boards),
        np.concatenate(seen_policies),
        values,
        np.concatenate(seen_values),
        generation,
        num_games,
    )
