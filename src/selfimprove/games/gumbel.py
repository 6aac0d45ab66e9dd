"""Gumbel root search (Danihelka et al. 2022, "Policy improvement by planning with Gumbel"),
for few simulations per move, batched like `mcts.search`.

At the root: sample Gumbel noise g, consider the top-m actions by g + logits, and split the
simulation budget over them by sequential halving (each round visits every remaining action
equally, then keeps the better half by g + logits + sigma(q)). Below the root, plain PUCT.
The move is the survivor; the policy target is softmax(logits + sigma(completed q)), which
improves on the prior even with a handful of simulations, where visit counts say little.
sigma(q) = (c_visit + max visits) * c_scale * q, with q rescaled from [-1, 1] to [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from selfimprove.games.mcts import (
    Evaluator,
    SearchConfig,
    allocate,
    backup,
    expand,
    normalize,
    select,
)
from selfimprove.games.rules import Game


@dataclass(frozen=True)
class GumbelResult:
    action: np.ndarray  # [B] the move to play
    policy: np.ndarray  # [B, A] improved policy (the training target)
    visits: np.ndarray  # [B, A] root visits; rows sum to num_simulations
    value: np.ndarray  # [B] visit-weighted root value for the player to move


def gumbel_search(
    game: Game,
    evaluator: Evaluator,
    roots: np.ndarray,
    config: SearchConfig,
    num_considered: int,
    rng: np.random.Generator,
    c_visit: float = 50.0,
    c_scale: float = 1.0,
) -> GumbelResult:
    trees = allocate(game, roots, config.num_simulations + 1)
    rows = np.arange(len(roots))
    legal = game.legal_actions(roots)
    priors, root_value = evaluator(roots, rng)
    priors = normalize(priors, legal)
    trees.prior[:, 0], trees.legal[:, 0] = priors, legal
    with np.errstate(divide="ignore"):
        logits = np.where(legal, np.log(priors), -np.inf)
    gumbel = np.where(legal, rng.gumbel(size=legal.shape), -np.inf)
    considered = np.minimum(num_considered, legal.sum(axis=1))  # [B]
    remaining = np.argsort(-(gumbel + logits), axis=1, kind="stable")[:, :num_considered]  # [B, k]
    count = int(considered.max())
    phases = max(1, math.ceil(math.log2(max(count, 2))))
    budget, used = config.num_simulations, 0

    def simulate(forced: np.ndarray) -> None:
        path_nodes, path_actions, path_len, leaves = select(
            trees, config.c_puct, game.max_plies, forced
        )
        backup(
            trees, path_nodes, path_actions, path_len, expand(game, evaluator, trees, leaves, rng)
        )

    def scores() -> np.ndarray:
        """g + logits + sigma(q) of every action (completed q for unvisited ones)."""
        visits, value_sum = trees.visits[:, 0], trees.value_sum[:, 0]
        q = np.where(visits > 0, value_sum / np.maximum(visits, 1), root_value[:, None])
        sigma = (c_visit + visits.max(axis=1, keepdims=True)) * c_scale * (q + 1) / 2
        return gumbel + logits + sigma

    for _ in range(phases):
        per_action = max(1, budget // (phases * count))  # each phase: an equal share of the budget
        for _ in range(per_action):
            for j in range(count):
                if used == budget:
                    break
                # trees with fewer candidates spend the slot on their best one
                forced = np.where(
                    j < considered, remaining[:, min(j, remaining.shape[1] - 1)], remaining[:, 0]
                )
                simulate(forced)
                used += 1
        if count == 1:
            break
        ranked = np.take_along_axis(scores(), remaining, axis=1)
        ranked = np.where(
            np.arange(remaining.shape[1])[None, :] < considered[:, None], ranked, -np.inf
        )
        remaining = np.take_along_axis(
            remaining, np.argsort(-ranked, axis=1, kind="stable"), axis=1
        )
        count = max(1, math.ceil(count / 2))
        considered = np.minimum(considered, count)
    while used < budget:  # what halving left over goes to the leading candidate
        simulate(remaining[:, 0])
        used += 1
    ranked = np.take_along_axis(scores(), remaining, axis=1)
    ranked = np.where(np.arange(remaining.shape[1])[None, :] < considered[:, None], ranked, -np.inf)
    action = remaining[rows, ranked.argmax(axis=1)]  # the best surviving candidate
    visits, value_sum = trees.visits[:, 0], trees.value_sum[:, 0]
    completed = np.where(visits > 0, value_sum / np.maximum(visits, 1), root_value[:, None])
    sigma = (c_visit + visits.max(axis=1, keepdims=True)) * c_scale * (completed + 1) / 2
    improved = np.where(legal, logits + sigma, -np.inf)
    improved = np.exp(improved - improved.max(axis=1, keepdims=True))
    value = value_sum.sum(axis=1) / np.maximum(visits.sum(axis=1), 1)
    return GumbelResult(action, improved / improved.sum(axis=1, keepdims=True), visits, value)
