"""Self-play: many games at once, one batched search per move for every unfinished game.

Each recorded position carries the search's visit distribution (the policy target), the
final outcome from the view of the player to move there (the value target), and the move
played, so a referee can replay every game with the rules (`replay_failures`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selfimprove.games.gumbel import gumbel_search
from selfimprove.games.mcts import Evaluator, Forest, SearchConfig, advance, search
from selfimprove.games.rules import Game


@dataclass(frozen=True)
class Positions:
    """Training positions from one generation's self-play games, in the order they were
    played (move by move, each game's positions in ply order)."""

    boards: np.ndarray  # [n, R, C] canonical
    policies: np.ndarray  # [n, A] visit distributions
    values: np.ndarray  # [n] final outcome for the player to move: +1 win, 0 draw, -1 loss
    search_values: np.ndarray  # [n] the search's root value there (same view), for value_mix
    games: np.ndarray  # [n] which game of the generation the position belongs to
    actions: np.ndarray  # [n] the move played there
    num_games: int

    @property
    def num_samples(self) -> int:
        """Positions, the unit provenance counts."""
        return len(self.values)


@dataclass(frozen=True)
class SelfPlaySettings:
    """How self-play picks its moves, beside the search that scores them."""

    temperature_moves: int = 0  # moves sampled from the visits before playing the argmax
    reuse_tree: bool = True  # the subtree under each move carries into the next search
    gumbel_considered: int = 0  # > 0: Gumbel root search over this many candidates


def sample_actions(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row drawn from `probs` `[B, A]`."""
    cumulative = probs.cumsum(axis=1)
    u = rng.random((len(probs), 1)) * cumulative[:, -1:]
    return np.minimum((cumulative <= u).sum(axis=1), probs.shape[1] - 1)


def self_play(
    game: Game,
    evaluator: Evaluator,
    search_config: SearchConfig,
    num_games: int,
    rng: np.random.Generator,
    settings: SelfPlaySettings = SelfPlaySettings(),
) -> Positions:
    """Play `num_games` games; moves before `settings.temperature_moves` are sampled from
    the visits. With `reuse_tree`, the subtree under each move played carries its statistics
    into the next move's search. With `gumbel_considered` > 0, Gumbel root search picks the
    moves and its improved policy is the target (no temperature sampling: the Gumbel noise
    explores)."""
    gumbel = settings.gumbel_considered
    boards = game.initial(num_games)
    alive = np.ones(num_games, dtype=bool)
    winner_parity = np.full(num_games, -1)  # parity of the winning mover; -1 while none / draw
    seen_boards, seen_policies, seen_games, seen_parity = [], [], [], []
    seen_values: list[np.ndarray] = []
    seen_actions: list[np.ndarray] = []
    move = 0
    forest: Forest | None = None
    while alive.any():
        index = np.flatnonzero(alive)
        if gumbel:
            planned = gumbel_search(game, evaluator, boards[index], search_config, gumbel, rng)
            policy, actions, root_value = planned.policy, planned.action, planned.value
        else:
            result = search(game, evaluator, boards[index], search_config, rng, reuse=forest)
            visits, root_value = result.visits, result.value
            policy = visits / visits.sum(axis=1, keepdims=True)
            sampled = move < settings.temperature_moves
            actions = sample_actions(policy, rng) if sampled else visits.argmax(axis=1)
        seen_boards.append(boards[index])
        seen_policies.append(policy)
        seen_values.append(root_value)
        seen_games.append(index)
        seen_actions.append(actions)
        seen_parity.append(np.full(len(index), move % 2))
        step = game.play(boards[index], actions)
        boards[index] = step.boards
        if settings.reuse_tree and not gumbel:
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
        games,
        np.concatenate(seen_actions),
        num_games,
    )


def replay_failures(game: Game, positions: Positions) -> np.ndarray:
    """The games of `positions` that the rules do not confirm, as a `[num_games]` bool mask.

    A game is confirmed when it starts from the initial position, every recorded move is
    legal and leads to the next recorded position, the last move ends the game, and every
    position's value label is that outcome seen from the player to move there.
    """
    order = np.lexsort((np.arange(len(positions.games)), positions.games))  # by game, then ply
    games, boards = positions.games[order], positions.boards[order]
    actions, values = positions.actions[order], positions.values[order]
    failed = np.zeros(positions.num_games, dtype=bool)
    if len(order) == 0:
        return failed
    first = np.r_[True, games[1:] != games[:-1]]  # [n] a game's first position
    last = np.r_[games[1:] != games[:-1], True]  # [n] its last
    failed[games[first]] |= (boards[first] != game.initial(1)).reshape(first.sum(), -1).any(axis=1)
    failed[np.setdiff1d(np.arange(positions.num_games), games)] = True  # a game with no moves
    in_range = (actions >= 0) & (actions < game.num_actions)
    legal = in_range.copy()
    legal[in_range] = game.legal_actions(boards[in_range])[
        np.arange(in_range.sum()), actions[in_range]
    ]
    failed[games[~legal]] = True
    step = game.play(boards[legal], actions[legal])
    after = np.zeros_like(boards)
    after[legal] = step.boards
    ended, result = np.zeros(len(order), dtype=bool), np.zeros(len(order))
    ended[legal], result[legal] = step.terminal, step.mover_result
    inner = ~last
    leads_on = (after[:-1][inner[:-1]] == boards[1:][inner[:-1]]).reshape(inner[:-1].sum(), -1)
    failed[games[:-1][inner[:-1]][~leads_on.all(axis=1)]] = True
    failed[games[inner & ended]] = True  # a game that went on after it had ended
    failed[games[last & ~ended]] = True  # a game recorded unfinished
    outcome = np.zeros(positions.num_games)
    outcome[games[last]] = result[last]  # the last mover's result
    ends = np.flatnonzero(last)  # [games played] index of each game's last position
    plies_to_end = ends[np.cumsum(first) - 1] - np.arange(len(order))  # [n]
    expected = outcome[games] * np.where(plies_to_end % 2 == 0, 1.0, -1.0)
    failed[games[values != expected]] = True
    return failed
