"""Batched PUCT search: one tree per game, all trees in preallocated numpy arrays.

Every simulation descends all trees at once, expands one leaf per tree, and evaluates all new
non-terminal leaves in ONE evaluator call (a net's batched forward pass), which is where the
speed comes from. Values follow `rules.py`: from the view of the player to move at a node;
an edge's statistics are from the view of the player choosing it, so a child's value counts
negated. Terminal positions are detected in the tree and never evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from selfimprove.games.rules import Game


class Evaluator(Protocol):
    def __call__(
        self, boards: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """`[B, R, C]` canonical boards -> (priors `[B, A]` >= 0, values `[B]` in [-1, 1])."""
        ...


@dataclass(frozen=True)
class SearchConfig:
    num_simulations: int = 100
    c_puct: float = 1.25
    dirichlet_alpha: float = 0.3
    dirichlet_fraction: float = 0.0  # 0.25 during self-play; 0 when evaluating


@dataclass(frozen=True)
class SearchResult:
    visits: np.ndarray  # [B, A] root visit counts; each row sums to num_simulations
    q: np.ndarray  # [B, A] mean value of each root action for the player to move (nan unvisited)
    value: np.ndarray  # [B] visit-weighted root value


@dataclass
class _Trees:
    """The arrays of B trees with up to `capacity` nodes each (node 0 is the root)."""

    boards: np.ndarray  # [B, N, R, C]
    children: np.ndarray  # [B, N, A] node index, -1 if not expanded
    visits: np.ndarray  # [B, N, A]
    value_sum: np.ndarray  # [B, N, A]
    prior: np.ndarray  # [B, N, A]
    legal: np.ndarray  # [B, N, A]
    terminal: np.ndarray  # [B, N]
    terminal_value: np.ndarray  # [B, N]
    size: np.ndarray  # [B] next free node


def search(
    game: Game,
    evaluator: Evaluator,
    roots: np.ndarray,
    config: SearchConfig,
    rng: np.random.Generator,
) -> SearchResult:
    """Run `num_simulations` simulations from each (non-terminal) root board."""
    trees = _allocate(game, roots, config.num_simulations + 1)
    _expand_roots(game, evaluator, trees, config, rng)
    max_depth = game.max_plies
    for _ in range(config.num_simulations):
        path_nodes, path_actions, path_len, leaves = _select(trees, config.c_puct, max_depth)
        leaf_value = _expand(game, evaluator, trees, leaves, rng)
        _backup(trees, path_nodes, path_actions, path_len, leaf_value)
    visits, value_sum = trees.visits[:, 0], trees.value_sum[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(visits > 0, value_sum / visits, np.nan)
    value = value_sum.sum(axis=1) / np.maximum(visits.sum(axis=1), 1)
    return SearchResult(visits, q, value)


def _allocate(game: Game, roots: np.ndarray, capacity: int) -> _Trees:
    num, actions = roots.shape[0], game.num_actions
    boards = np.zeros((num, capacity, *roots.shape[1:]), dtype=np.int8)
    boards[:, 0] = roots
    return _Trees(
        boards=boards,
        children=np.full((num, capacity, actions), -1, dtype=np.int32),
        visits=np.zeros((num, capacity, actions)),
        value_sum=np.zeros((num, capacity, actions)),
        prior=np.zeros((num, capacity, actions)),
        legal=np.zeros((num, capacity, actions), dtype=bool),
        terminal=np.zeros((num, capacity), dtype=bool),
        terminal_value=np.zeros((num, capacity)),
        size=np.ones(num, dtype=np.int64),
    )


def _expand_roots(
    game: Game, evaluator: Evaluator, trees: _Trees, config: SearchConfig, rng: np.random.Generator
) -> None:
    roots = trees.boards[:, 0]
    legal = game.legal_actions(roots)
    priors, _ = evaluator(roots, rng)
    priors = normalize(priors, legal)
    if config.dirichlet_fraction > 0:
        noise = normalize(rng.gamma(config.dirichlet_alpha, size=priors.shape), legal)
        priors = (1 - config.dirichlet_fraction) * priors + config.dirichlet_fraction * noise
    trees.prior[:, 0], trees.legal[:, 0] = priors, legal


def normalize(priors: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """Zero illegal actions and renormalize; uniform over legal moves where nothing is left."""
    masked = np.where(legal, priors, 0.0)
    total = masked.sum(axis=1, keepdims=True)
    uniform = legal / np.maximum(legal.sum(axis=1, keepdims=True), 1)
    return np.where(total > 0, masked / np.where(total > 0, total, 1.0), uniform)


@dataclass(frozen=True)
class _Leaves:
    tree: np.ndarray  # trees whose descent ended at an unexpanded edge
    parent: np.ndarray
    action: np.ndarray
    terminal_tree: np.ndarray  # trees whose descent ended on a known terminal node
    terminal_value: np.ndarray


def _select(
    trees: _Trees, c_puct: float, max_depth: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Leaves]:
    num = trees.size.shape[0]
    path_nodes = np.zeros((num, max_depth + 1), dtype=np.int64)
    path_actions = np.zeros((num, max_depth + 1), dtype=np.int64)
    path_len = np.zeros(num, dtype=np.int64)
    node = np.zeros(num, dtype=np.int64)
    active = np.arange(num)
    expand: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    ended: list[tuple[np.ndarray, np.ndarray]] = []
    while active.size:
        n = node[active]
        visits = trees.visits[active, n]  # [b, A]
        q = np.where(visits > 0, trees.value_sum[active, n] / np.maximum(visits, 1), 0.0)
        explore = c_puct * trees.prior[active, n] * np.sqrt(visits.sum(axis=1, keepdims=True) + 1)
        score = np.where(trees.legal[active, n], q + explore / (1 + visits), -np.inf)
        action = score.argmax(axis=1)
        depth = path_len[active]
        path_nodes[active, depth], path_actions[active, depth] = n, action
        path_len[active] += 1
        child = trees.children[active, n, action]
        known = child >= 0
        expand.append((active[~known], n[~known], action[~known]))
        descend, child = active[known], child[known]
        node[descend] = child
        at_end = trees.terminal[descend, child]
        ended.append((descend[at_end], trees.terminal_value[descend[at_end], child[at_end]]))
        active = descend[~at_end]
    tree, parent, action = (np.concatenate(parts) for parts in zip(*expand, strict=True))
    end_tree, end_value = (np.concatenate(parts) for parts in zip(*ended, strict=True))
    return path_nodes, path_actions, path_len, _Leaves(tree, parent, action, end_tree, end_value)


def _expand(
    game: Game, evaluator: Evaluator, trees: _Trees, leaves: _Leaves, rng: np.random.Generator
) -> np.ndarray:
    """Create the new nodes, evaluate the non-terminal ones in one call; leaf values `[B]`."""
    leaf_value = np.zeros(trees.size.shape[0])
    leaf_value[leaves.terminal_tree] = leaves.terminal_value
    tree = leaves.tree
    if tree.size == 0:
        return leaf_value
    step = game.play(trees.boards[tree, leaves.parent], leaves.action)
    new = trees.size[tree]
    trees.size[tree] += 1
    trees.boards[tree, new] = step.boards
    trees.children[tree, leaves.parent, leaves.action] = new
    value = -step.mover_result.astype(float)  # for the player to move after the move
    trees.terminal[tree, new], trees.terminal_value[tree, new] = step.terminal, value
    open_ = ~step.terminal
    if open_.any():
        legal = game.legal_actions(step.boards[open_])
        priors, values = evaluator(step.boards[open_], rng)
        trees.prior[tree[open_], new[open_]] = normalize(priors, legal)
        trees.legal[tree[open_], new[open_]] = legal
        value[open_] = values
    leaf_value[tree] = value
    return leaf_value


def _backup(
    trees: _Trees,
    path_nodes: np.ndarray,
    path_actions: np.ndarray,
    path_len: np.ndarray,
    leaf_value: np.ndarray,
) -> None:
    """Add the leaf's value to every edge on its path, negated at each ply toward the root."""
    for depth in range(int(path_len.max())):
        on_path = np.flatnonzero(path_len > depth)
        plies_to_leaf = path_len[on_path] - depth  # the edge's chooser is this many plies above
        sign = np.where(plies_to_leaf % 2 == 1, -1.0, 1.0)
        node, action = path_nodes[on_path, depth], path_actions[on_path, depth]
        trees.visits[on_path, node, action] += 1
        trees.value_sum[on_path, node, action] += sign * leaf_value[on_path]
