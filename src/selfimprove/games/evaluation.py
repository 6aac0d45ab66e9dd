"""Evaluation users can trust: exact ground truth and fixed opponents, not self-reported progress.

Tic-tac-toe: every reachable non-terminal position (4,520) against exact minimax; a mistake
is a move that gives up part of the position's game-theoretic value. Both the raw policy
(argmax over legal moves) and the search's choice are scored, and the agent plays random
opponents from both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from selfimprove.core.records import Metrics
from selfimprove.games.arena import (
    bootstrap_elo,
    elo_difference,
    ladder_elo,
    play_pairs,
    random_openings,
)
from selfimprove.games.bots import MctsBot, random_legal_actions
from selfimprove.games.mcts import Evaluator, SearchConfig, normalize, search
from selfimprove.games.peers import OpenSpielMcts
from selfimprove.games.pons import SET_LABELS, PonsSet, wilson_interval
from selfimprove.games.rules import ConnectFour, Game, TicTacToe
from selfimprove.games.solvers import solve_tictactoe


@dataclass(frozen=True)
class TicTacToeReferee:
    positions: np.ndarray = field(init=False)  # [n, 3, 3] every reachable non-terminal board
    optimal: np.ndarray = field(init=False)  # [n, 9] moves that keep the minimax value
    values: np.ndarray = field(init=False)  # [n] minimax value for the player to move

    def __post_init__(self) -> None:
        solution = solve_tictactoe()
        keys = list(solution.action_values)
        object.__setattr__(
            self,
            "positions",
            np.stack([np.frombuffer(k, dtype=np.int8).reshape(3, 3) for k in keys]),
        )
        object.__setattr__(
            self, "optimal", np.stack([solution.optimal_actions(p) for p in self.positions])
        )
        object.__setattr__(
            self, "values", np.array([solution.values[k] for k in keys], dtype=float)
        )

    def __call__(
        self,
        evaluator: Evaluator,
        search_config: SearchConfig,
        games: int,
        rng: np.random.Generator,
    ) -> Metrics:
        game, n = TicTacToe(), len(self.positions)
        legal = game.legal_actions(self.positions)
        priors, values = evaluator(self.positions, rng)
        policy_actions = normalize(priors, legal).argmax(axis=1)
        searched = search(game, evaluator, self.positions, search_config, rng).best_action
        index = np.arange(n)
        positions, mistakes, losses = self.in_play(evaluator, search_config, rng)
        return {
            "eval/policy_mistakes": float((~self.optimal[index, policy_actions]).sum()),
            "eval/search_mistakes": float((~self.optimal[index, searched]).sum()),
            "eval/value_error": float(np.abs(values - self.values).mean()),
            "eval/in_play_positions": float(positions),
            "eval/in_play_mistakes": float(mistakes),
            "eval/in_play_losses": float(losses),
            "eval/losses_vs_random": float(_losses_vs_random(evaluator, search_config, games, rng)),
        }

    def in_play(
        self, evaluator: Evaluator, config: SearchConfig, rng: np.random.Generator
    ) -> tuple[int, int, int]:
        """Every position the agent can face, as X and as O, when it plays its searched move and
        the opponent tries every legal reply. Returns (positions, mistakes, opponent wins):
        zero of both means the agent never errs and never loses, against any opponent."""
        game, row = TicTacToe(), {p.tobytes(): i for i, p in enumerate(self.positions)}
        seen = mistakes = losses = 0
        first_replies = game.play(np.repeat(game.initial(1), 9, axis=0), np.arange(9)).boards
        for frontier in (game.initial(1), first_replies):
            while len(frontier):
                frontier = np.unique(frontier, axis=0)
                actions = search(game, evaluator, frontier, config, rng).best_action
                rows = np.array([row[b.tobytes()] for b in frontier])
                seen, mistakes = (
                    seen + len(frontier),
                    mistakes + int((~self.optimal[rows, actions]).sum()),
                )
                after = game.play(frontier, actions)
                open_ = after.boards[~after.terminal]  # opponent to move
                legal = game.legal_actions(open_)
                parents, replies = np.nonzero(legal)
                answered = game.play(open_[parents], replies)
                losses += int(answered.mover_won.sum())
                frontier = answered.boards[~answered.terminal]
        return seen, mistakes, losses


@dataclass(frozen=True)
class SearchPlayer:
    """The agent in an arena: its search's `best_action` (no noise, no sampling)."""

    game: Game
    evaluator: Evaluator
    config: SearchConfig

    def __call__(self, boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return search(self.game, self.evaluator, boards, self.config, rng).best_action


def _losses_vs_random(
    evaluator: Evaluator, config: SearchConfig, games: int, rng: np.random.Generator
) -> int:
    """Games lost by the searching agent against a random player, half as X, half as O."""
    game = TicTacToe()
    agent = SearchPlayer(game, evaluator, config)

    def random_player(boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_legal_actions(game, boards, rng)

    return play_pairs(game, agent, random_player, game.initial(games // 2), rng).losses


def pons_metrics(
    evaluator: Evaluator,
    sets: Sequence[PonsSet],
    simulations: int,
    rng: np.random.Generator,
    solver: bool = False,
) -> Metrics:
    """Connect Four: mistake rate of the raw policy and of the search on each Pons set, with
    95% Wilson bounds as `_low` / `_high`."""
    game = ConnectFour()
    metrics: Metrics = {}
    for pons_set in sets:
        boards = pons_set.boards
        priors, _ = evaluator(boards, rng)
        policy = normalize(priors, game.legal_actions(boards)).argmax(axis=1)
        result = search(game, evaluator, boards, SearchConfig(simulations, solver=solver), rng)
        label = SET_LABELS.get(pons_set.name, pons_set.name)
        for kind, actions in (("policy", policy), ("search", result.best_action)):
            mistakes = int(pons_set.mistakes(actions).sum())
            low, high = wilson_interval(mistakes, len(boards))
            metrics[f"pons/{label}/{kind}_mistake_rate"] = mistakes / len(boards)
            metrics[f"pons/{label}/{kind}_mistake_rate_low"] = low
            metrics[f"pons/{label}/{kind}_mistake_rate_high"] = high
    return metrics


def ladder_metrics(
    game: Game,
    evaluator: Evaluator,
    anchors: dict[int, float],
    pairs: int,
    simulations: int,
    rng: np.random.Generator,
    solver: bool = False,
) -> Metrics:
    """Paired games against random-rollout MCTS bots (`simulations -> assumed Elo`) from shared
    random openings; the agent's maximum-likelihood Elo with a bootstrap 95% interval."""
    agent = SearchPlayer(game, evaluator, SearchConfig(simulations, solver=solver))
    openings = random_openings(game, pairs, 2, rng)
    results = {
        elo: play_pairs(game, agent, MctsBot(game, sims), openings, rng)
        for sims, elo in anchors.items()
    }
    low, high = bootstrap_elo(results, rng)
    metrics = {"ladder/elo": ladder_elo(results), "ladder/elo_low": low, "ladder/elo_high": high}
    for sims, elo in anchors.items():
        metrics[f"ladder/score_vs_mcts{sims}"] = results[elo].score
    return metrics


def peer_metrics(
    evaluator: Evaluator,
    peers: Sequence[int],
    pairs: int,
    simulations: int,
    rng: np.random.Generator,
    solver: bool = False,
) -> Metrics:
    """Connect Four: paired games against OpenSpiel's C++ random-rollout MCTS with each
    simulation budget in `peers` (extra 'peers'); the agent's score and the Elo gap it implies."""
    game = ConnectFour()
    agent = SearchPlayer(game, evaluator, SearchConfig(simulations, solver=solver))
    openings = random_openings(game, pairs, 2, rng)
    metrics: Metrics = {}
    for sims in peers:
        result = play_pairs(game, agent, OpenSpielMcts(sims), openings, rng)
        metrics[f"peers/score_vs_openspiel_mcts{sims}"] = result.score
        metrics[f"peers/elo_gap_vs_openspiel_mcts{sims}"] = elo_difference(result.score)
    return metrics
