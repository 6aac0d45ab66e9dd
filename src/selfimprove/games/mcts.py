"""Batched PUCT search: one tree per game, all trees in preallocated numpy arrays.

Every simulation descends all trees at once, expands one leaf per tree, and evaluates all new
non-terminal leaves in ONE evaluator call (a net's batched forward pass), which is where the
speed comes from. Values follow `rules.py`: from the view of the player to move at a node;
an edge's statistics are from the view of the player choosing it, so a child's value counts
negated. Terminal positions are detected in the tree and never evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np

from selfimprove.games import tree_kernels as kernels
from selfimprove.games.rules import Game, Step

# `allocate`, `expand_roots`, `select`, `expand`, `backup` and `grow` are the building blocks
# of a search; `search` is PUCT, and `gumbel.gumbel_search` composes them differently.


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
    solver: bool = False  # MCTS-Solver: back up proven wins, losses and draws exactly


@dataclass(frozen=True)
class SearchResult:
    visits: np.ndarray  # [B, A] root visit counts (this search's, plus any reused subtree's)
    q: np.ndarray  # [B, A] mean value of each root action for the player to move (nan unvisited)
    value: np.ndarray  # [B] visit-weighted root value
    forest: Forest  # the trees, for `advance` and a reusing search
    proven: np.ndarray  # [B, A] exact value of each root action (solver only; nan unproven)

    @property
    def best_action(self) -> np.ndarray:
        """The move to play `[B]`: the most visited, except that a proven win comes first and
        a proven loss last (without the solver nothing is proven: the most visited)."""
        key = self.visits + np.where(self.proven == 1, 1e12, 0.0)
        key = key - np.where(self.proven == -1, 1e12, 0.0)
        legal = self.forest.legal[np.arange(len(self.visits)), self.forest.root]
        return np.where(legal, key, -np.inf).argmax(axis=1)


@dataclass
class Forest:
    """The arrays of B trees; `root[b]` is tree b's current root (node 0 until `advance`).
    Edge statistics are float32 (counts exact to 2^24): a third less memory per node than
    float64, which matters at 10^4 nodes per tree, and as fast or faster."""

    boards: np.ndarray  # [B, N, R, C]
    children: np.ndarray  # [B, N, A] node index, -1 if not expanded
    visits: np.ndarray  # [B, N, A]
    value_sum: np.ndarray  # [B, N, A]
    prior: np.ndarray  # [B, N, A]
    legal: np.ndarray  # [B, N, A]
    terminal: np.ndarray  # [B, N]
    terminal_value: np.ndarray  # [B, N]
    solved: np.ndarray  # [B, N] int8: 0 unknown, else 2 + the exact value for the player to move
    size: np.ndarray  # [B] next free node
    root: np.ndarray  # [B]

    def take(self, rows: np.ndarray) -> Forest:
        """The trees of `rows` only (as a copy)."""
        return Forest(*(getattr(self, f.name)[rows] for f in fields(self)))

    @property
    def node_arrays(
        self,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What a kernel that adds nodes writes (`tree_kernels.append`, `expand_compiled`), in
        their order: boards, children, terminal, terminal value, solved, size."""
        return (
            self.boards, self.children, self.terminal, self.terminal_value, self.solved,
            self.size,
        )  # fmt: skip


def search(
    game: Game,
    evaluator: Evaluator,
    roots: np.ndarray,
    config: SearchConfig,
    rng: np.random.Generator,
    reuse: Forest | None = None,
) -> SearchResult:
    """Run `num_simulations` simulations from each (non-terminal) root board. With `reuse`
    (a forest `advance`d to these roots), the subtrees under them keep their statistics."""
    trees = reuse if reuse is not None else allocate(game, roots, config.num_simulations + 1)
    grow(trees, config.num_simulations)
    expand_roots(game, evaluator, trees, config, rng)
    paths = Paths.allocate(len(trees.root), game.max_plies)
    rules = game.compiled
    if rules is not None:  # the step up to the evaluation in compiled code
        collected = _Collected.allocate(trees)
        for _ in range(config.num_simulations):
            _compiled_simulation(rules, evaluator, trees, config, paths, collected, rng)
        return _result(trees, config.solver)
    for _ in range(config.num_simulations):
        path_nodes, path_actions, path_len, leaves = select(
            trees, config.c_puct, game.max_plies, solver=config.solver, paths=paths
        )
        leaf_value = expand(game, evaluator, trees, leaves, rng)
        backup(trees, path_nodes, path_actions, path_len, leaf_value, solver=config.solver)
    return _result(trees, config.solver)


def _result(trees: Forest, solver: bool) -> SearchResult:
    rows = np.arange(len(trees.root))
    visits, value_sum = trees.visits[rows, trees.root], trees.value_sum[rows, trees.root]
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(visits > 0, value_sum / visits, np.nan)
    value = value_sum.sum(axis=1) / np.maximum(visits.sum(axis=1), 1)
    return SearchResult(visits, q, value, trees, root_proven(trees, solver))


@dataclass
class _Collected:
    """Scratch for the compiled step: each tree's leaf value, and the new leaves to evaluate."""

    value: np.ndarray  # [B]
    tree: np.ndarray  # [B] (the first `count` rows hold this step's leaves)
    node: np.ndarray  # [B]
    boards: np.ndarray  # [B, R, C]
    legal: np.ndarray  # [B, A]

    @classmethod
    def allocate(cls, trees: Forest) -> _Collected:
        num, _, actions = trees.children.shape
        return cls(
            np.zeros(num),
            np.zeros(num, dtype=np.int64),
            np.zeros(num, dtype=np.int64),
            np.zeros((num, *trees.boards.shape[2:]), dtype=trees.boards.dtype),
            np.zeros((num, actions), dtype=np.bool_),
        )


def _compiled_simulation(
    rules: int,
    evaluator: Evaluator,
    trees: Forest,
    config: SearchConfig,
    paths: Paths,
    collected: _Collected,
    rng: np.random.Generator,
) -> None:
    """One simulation in every tree, the same as `select`, `expand` and `backup` do it (the
    same leaves, evaluated in the same order), with all but the evaluation compiled."""
    _descend(trees, config.c_puct, None, config.solver, paths)
    count = kernels.expand_compiled(
        rules,
        *trees.node_arrays,
        *paths.stops,
        collected.value,
        collected.tree,
        collected.node,
        collected.boards,
        collected.legal,
    )
    if count:
        tree, node = collected.tree[:count], collected.node[:count]
        priors, values = evaluator(collected.boards[:count], rng)
        kernels.set_priors(trees.prior, trees.legal, tree, node, priors, collected.legal[:count])
        collected.value[tree] = values
    backup(trees, paths.nodes, paths.actions, paths.length, collected.value, config.solver)


def root_proven(trees: Forest, solver: bool) -> np.ndarray:
    """`[B, A]` exact value of each root action for the player to move (nan: not proven, or
    no solver)."""
    rows = np.arange(len(trees.root))
    children = trees.children[rows, trees.root]  # [B, A]
    if not solver:
        return np.full(children.shape, np.nan)
    solved = trees.solved[rows[:, None], np.maximum(children, 0)].astype(float)
    return np.where((children >= 0) & (solved > 0), 2.0 - solved, np.nan)


def advance(game: Game, forest: Forest, actions: np.ndarray, keep: np.ndarray) -> Forest:
    """Move each tree's root to the child `actions` chose (subtree reuse between moves), then
    keep only the trees of games still going (`keep`, boolean)."""
    rows = np.arange(len(forest.root))
    child = forest.children[rows, forest.root, actions]
    missing = np.flatnonzero(child < 0)
    if missing.size:  # never expanded: add the node now; the next search evaluates it
        grow(forest, 1)
        parent = forest.root[missing]
        step = game.play(forest.boards[missing, parent], actions[missing])
        scratch = np.zeros(len(rows))
        child[missing] = _add_nodes(forest, missing, parent, actions[missing], step, scratch)
    forest.root = child.astype(np.int64)
    return forest.take(np.flatnonzero(keep))


def grow(trees: Forest, extra: int) -> None:
    """Make room for `extra` more nodes in every tree (doubling, so growth is amortized)."""
    capacity = trees.children.shape[1]
    needed = int(trees.size.max()) + extra
    if needed <= capacity:
        return
    more = max(needed, 2 * capacity) - capacity
    for f in fields(trees):
        array = getattr(trees, f.name)
        if array.ndim >= 2:
            fill = -1 if f.name == "children" else 0
            pad = np.full((array.shape[0], more, *array.shape[2:]), fill, dtype=array.dtype)
            setattr(trees, f.name, np.concatenate([array, pad], axis=1))


def allocate(game: Game, roots: np.ndarray, capacity: int) -> Forest:
    num, actions = roots.shape[0], game.num_actions
    boards = np.zeros((num, capacity, *roots.shape[1:]), dtype=np.int8)
    boards[:, 0] = roots
    return Forest(
        boards=boards,
        children=np.full((num, capacity, actions), -1, dtype=np.int32),
        visits=np.zeros((num, capacity, actions), dtype=np.float32),
        value_sum=np.zeros((num, capacity, actions), dtype=np.float32),
        prior=np.zeros((num, capacity, actions), dtype=np.float32),
        legal=np.zeros((num, capacity, actions), dtype=bool),
        terminal=np.zeros((num, capacity), dtype=bool),
        terminal_value=np.zeros((num, capacity)),
        solved=np.zeros((num, capacity), dtype=np.int8),
        size=np.ones(num, dtype=np.int64),
        root=np.zeros(num, dtype=np.int64),
    )


def expand_roots(
    game: Game, evaluator: Evaluator, trees: Forest, config: SearchConfig, rng: np.random.Generator
) -> None:
    """Evaluate roots never expanded (a reused root already was); add root noise to all."""
    rows, root = np.arange(len(trees.root)), trees.root
    fresh = np.flatnonzero(~trees.legal[rows, root].any(axis=1))
    if fresh.size:
        boards = trees.boards[fresh, root[fresh]]
        legal = game.legal_actions(boards)
        priors, _ = evaluator(boards, rng)
        kernels.set_priors(trees.prior, trees.legal, fresh, root[fresh], priors, legal)
    if config.dirichlet_fraction > 0:
        legal = trees.legal[rows, root]
        noise = normalize(rng.gamma(config.dirichlet_alpha, size=legal.shape), legal)
        mixed = (1 - config.dirichlet_fraction) * trees.prior[
            rows, root
        ] + config.dirichlet_fraction * noise
        trees.prior[rows, root] = mixed


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


@dataclass
class Paths:
    """Scratch arrays for `select`, made once per search and overwritten by every descent."""

    nodes: np.ndarray  # [B, D + 1] the nodes of each descent, root first
    actions: np.ndarray  # [B, D + 1] the action taken at each
    length: np.ndarray  # [B]
    parent: np.ndarray  # [B] the node whose unexpanded edge the descent stopped at
    action: np.ndarray  # [B] and that edge's action
    ended: np.ndarray  # [B] the descent ended on a terminal or proven node
    end_value: np.ndarray  # [B] that node's value
    unforced: np.ndarray  # [B] all -1: no action forced at the root

    @property
    def stops(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Where each descent stopped, as the descent writes and the expansion reads them:
        parent, action, ended, end value."""
        return self.parent, self.action, self.ended, self.end_value

    @classmethod
    def allocate(cls, num: int, max_depth: int) -> Paths:
        def ints(*shape: int) -> np.ndarray:
            return np.zeros(shape, dtype=np.int64)

        return cls(
            ints(num, max_depth + 1),
            ints(num, max_depth + 1),
            ints(num),
            ints(num),
            ints(num),
            np.zeros(num, dtype=np.bool_),
            np.zeros(num),
            np.full(num, -1, dtype=np.int64),
        )


def select(
    trees: Forest,
    c_puct: float,
    max_depth: int,
    forced: np.ndarray | None = None,
    solver: bool = False,
    paths: Paths | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Leaves]:
    """Descend every tree by PUCT; `forced` (`[B]`) fixes the action taken at the root. With
    `solver`, a descent ends at a proven node as at a terminal one, takes a move proven to
    win, and avoids moves proven to lose. The leaves come in tree order. `paths` (scratch
    from `Paths.allocate`) saves allocating the path arrays at every step; the arrays
    returned are its own."""
    num = trees.size.shape[0]
    if paths is None:
        paths = Paths.allocate(num, max_depth)
    _descend(trees, c_puct, forced, solver, paths)
    tree, end_tree = np.flatnonzero(~paths.ended), np.flatnonzero(paths.ended)
    leaves = _Leaves(
        tree, paths.parent[tree], paths.action[tree], end_tree, paths.end_value[end_tree]
    )
    return paths.nodes, paths.actions, paths.length, leaves


def _descend(
    trees: Forest, c_puct: float, forced: np.ndarray | None, solver: bool, paths: Paths
) -> None:
    """Every tree's descent (`tree_kernels.descent`), written into `paths`."""
    kernels.descent(solver)(
        trees.children,
        trees.visits,
        trees.value_sum,
        trees.prior,
        trees.legal,
        trees.terminal,
        trees.terminal_value,
        trees.solved,
        trees.root,
        float(c_puct),
        paths.unforced if forced is None else forced.astype(np.int64),
        paths.nodes,
        paths.actions,
        paths.length,
        *paths.stops,
    )


def expand(
    game: Game, evaluator: Evaluator, trees: Forest, leaves: _Leaves, rng: np.random.Generator
) -> np.ndarray:
    """Create the new nodes, evaluate the non-terminal ones in one call; leaf values `[B]`."""
    leaf_value = np.zeros(trees.size.shape[0])
    if leaves.terminal_tree.size:
        leaf_value[leaves.terminal_tree] = leaves.terminal_value
    tree = leaves.tree
    if tree.size == 0:
        return leaf_value
    step = game.play(trees.boards[tree, leaves.parent], leaves.action)
    new = _add_nodes(trees, tree, leaves.parent, leaves.action, step, leaf_value)
    boards = step.boards
    if step.terminal.any():  # rare: evaluate only the new nodes that are not terminal
        open_ = np.flatnonzero(~step.terminal)
        tree, new, boards = tree[open_], new[open_], boards[open_]
    if tree.size:
        priors, values = evaluator(boards, rng)
        kernels.set_priors(trees.prior, trees.legal, tree, new, priors, game.legal_actions(boards))
        leaf_value[tree] = values
    return leaf_value


def _add_nodes(
    trees: Forest,
    tree: np.ndarray,
    parent: np.ndarray,
    action: np.ndarray,
    step: Step,
    leaf_value: np.ndarray,
) -> np.ndarray:
    """Append one node per tree in `tree` (distinct), as the child `action` of `parent`,
    holding the board of `step`; write each new node's value for its mover into
    `leaf_value[tree]` (its exact value if terminal, else 0); return the new nodes' indices."""
    return kernels.append(
        *trees.node_arrays,
        tree,
        parent,
        action,
        step.boards,
        step.terminal,
        step.mover_result,
        leaf_value,
    )


def backup(
    trees: Forest,
    path_nodes: np.ndarray,
    path_actions: np.ndarray,
    path_len: np.ndarray,
    leaf_value: np.ndarray,
    solver: bool = False,
) -> None:
    """Add the leaf's value to every edge on its path, negated at each ply toward the root.
    With `solver`, then mark each node on the path proven, from the leaf up, while it is: won
    if some child is lost for its mover, else exact once every child is proven."""
    kernels.backup_paths(
        trees.visits, trees.value_sum, path_nodes, path_actions, path_len, leaf_value
    )
    if solver:
        kernels.prove(trees.children, trees.legal, trees.solved, path_nodes, path_len)
