"""The compiled half of the batched search: numba kernels over a `Forest`'s arrays.

`mcts.py` holds the search's logic in numpy and calls these for the per-tree loops. A
descent is compiled once per `solver` setting (a constant to the compiler, so the plain
search carries none of the solver's tests); for games with compiled rules, `descent` and
`expand_compiled` do a whole simulation step up to the network call (descend, play the move,
add the node, collect the new leaf's board), where small networks otherwise spend most of
their time in numpy calls.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
from numba import njit

from selfimprove.games import rules as compiled_rules

Kernel = Callable[..., Any]  # a numba dispatcher


@cache
def descent(solver: bool) -> Kernel:
    """The compiled PUCT descent of each tree to an unexpanded edge or a terminal (with the
    solver: proven) node; the same arithmetic, in the same order, as the vectorized numpy it
    replaced. Made once per `solver` value, a constant to the compiler, so that the plain
    search carries none of the solver's tests (a third of its time per descent). (The loop
    over trees stays inside: a call per tree, its arrays passed each time, costs 60 ns.)"""

    @njit(cache=True)
    def descend(  # the forest's arrays, unpacked for the compiler
        children: np.ndarray,
        visits: np.ndarray,
        value_sum: np.ndarray,
        prior: np.ndarray,
        legal: np.ndarray,
        terminal: np.ndarray,
        terminal_value: np.ndarray,
        solved: np.ndarray,
        root: np.ndarray,
        c_puct: float,
        forced: np.ndarray,
        path_nodes: np.ndarray,
        path_actions: np.ndarray,
        path_len: np.ndarray,
        parent: np.ndarray,
        action: np.ndarray,
        ended: np.ndarray,
        end_value: np.ndarray,
    ) -> None:
        num_actions = children.shape[2]
        for b in range(children.shape[0]):
            node, depth = root[b], 0
            ended[b] = False
            while True:
                chosen = -1
                if depth == 0 and forced[b] >= 0:
                    chosen = forced[b]
                elif solver:  # a child proven lost for its mover wins here
                    for a in range(num_actions):
                        child = children[b, node, a]
                        if legal[b, node, a] and child >= 0 and solved[b, child] == 1:
                            chosen = a
                            break
                if chosen < 0:
                    total = 0.0
                    for a in range(num_actions):
                        total += visits[b, node, a]
                    root_total = np.sqrt(total + 1.0)
                    best = -np.inf  # among moves not proven lost
                    best_any, chosen_any = -np.inf, 0  # among all: when every move loses
                    for a in range(num_actions):
                        if legal[b, node, a]:
                            n = visits[b, node, a]
                            q = value_sum[b, node, a] / max(n, 1.0) if n > 0 else 0.0
                            score = q + c_puct * prior[b, node, a] * root_total / (1.0 + n)
                            if solver:
                                if score > best_any:
                                    best_any, chosen_any = score, a
                                child = children[b, node, a]
                                if child >= 0 and solved[b, child] == 3:
                                    continue
                            if score > best:
                                best, chosen = score, a
                    if chosen < 0:
                        chosen = chosen_any
                path_nodes[b, depth], path_actions[b, depth] = node, chosen
                depth += 1
                child = children[b, node, chosen]
                if child < 0:
                    parent[b], action[b] = node, chosen
                    break
                node = child
                if terminal[b, child]:
                    ended[b], end_value[b] = True, terminal_value[b, child]
                    break
                if solver and solved[b, child] != 0:  # proven: its exact value, no evaluation
                    ended[b], end_value[b] = True, solved[b, child] - 2.0
                    break
            path_len[b] = depth

    return descend


@njit(cache=True)
def expand_compiled(
    rules: int,
    boards: np.ndarray,
    children: np.ndarray,
    terminal: np.ndarray,
    terminal_value: np.ndarray,
    solved: np.ndarray,
    size: np.ndarray,
    parent: np.ndarray,
    action: np.ndarray,
    ended: np.ndarray,
    end_value: np.ndarray,
    leaf_value: np.ndarray,
    leaf_tree: np.ndarray,
    leaf_node: np.ndarray,
    leaf_boards: np.ndarray,
    leaf_legal: np.ndarray,
) -> int:
    """After `descent`, for games with compiled rules: play each tree's new move, add the
    node and its exact value if terminal, and collect each new non-terminal leaf (tree,
    node, board, legal moves) for one evaluation, in tree order. Returns how many leaves it
    collected; `leaf_value` gets every tree's value where its descent ended (0 for the
    collected leaves, until evaluated)."""
    count = 0
    for b in range(children.shape[0]):
        if ended[b]:
            leaf_value[b] = end_value[b]
            continue
        new = _link_node(b, parent[b], action[b], children, size)
        done, mover_result = compiled_rules.move(
            rules, boards[b, parent[b]], action[b], boards[b, new]
        )
        _settle_node(b, new, done, mover_result, terminal, terminal_value, solved, leaf_value)
        if not done:
            leaf_boards[count] = boards[b, new]
            compiled_rules.legal(rules, boards[b, new], leaf_legal[count])
            leaf_tree[count], leaf_node[count] = b, new
            count += 1
    return count


@njit(cache=True)
def append(
    forest_boards: np.ndarray,
    children: np.ndarray,
    forest_terminal: np.ndarray,
    terminal_value: np.ndarray,
    solved: np.ndarray,
    size: np.ndarray,
    tree: np.ndarray,
    parent: np.ndarray,
    action: np.ndarray,
    boards: np.ndarray,
    terminal: np.ndarray,
    mover_result: np.ndarray,
    leaf_value: np.ndarray,
) -> np.ndarray:
    nodes = np.empty(tree.shape[0], dtype=np.int64)
    for i in range(tree.shape[0]):
        t = tree[i]
        new = nodes[i] = _link_node(t, parent[i], action[i], children, size)
        forest_boards[t, new] = boards[i]
        _settle_node(
            t, new, terminal[i], mover_result[i], forest_terminal, terminal_value, solved,
            leaf_value,
        )  # fmt: skip
    return nodes


@njit(inline="always")
def _link_node(t: int, parent: int, action: int, children: np.ndarray, size: np.ndarray) -> int:
    """Take tree t's next free node as the child `action` of `parent`; return its index."""
    new = size[t]
    size[t] += 1
    children[t, parent, action] = new
    return new


@njit(inline="always")
def _settle_node(
    t: int,
    new: int,
    done: bool,
    mover_result: float,
    terminal: np.ndarray,
    terminal_value: np.ndarray,
    solved: np.ndarray,
    leaf_value: np.ndarray,
) -> None:
    """Record a new node's outcome: terminal or not, its exact value for the player to move
    there (proven, if terminal), and that value as tree t's leaf value."""
    value = -np.float64(mover_result)
    terminal[t, new], terminal_value[t, new] = done, value
    solved[t, new] = 2 + int(value) if done else 0
    leaf_value[t] = value


@njit(cache=True)
def set_priors(
    prior: np.ndarray,
    legal: np.ndarray,
    tree: np.ndarray,
    node: np.ndarray,
    priors: np.ndarray,
    legal_actions: np.ndarray,
) -> None:
    """Write each new node's legal moves and its priors, normalized over them exactly as
    `normalize` does (in the priors' own precision; uniform where they sum to 0)."""
    for i in range(tree.shape[0]):
        total, count = priors[i, 0] - priors[i, 0], 0  # zero in the priors' precision
        for a in range(priors.shape[1]):
            if legal_actions[i, a]:
                total += priors[i, a]
                count += 1
        for a in range(priors.shape[1]):
            legal[tree[i], node[i], a] = legal_actions[i, a]
            if not legal_actions[i, a]:
                prior[tree[i], node[i], a] = 0.0
            elif total > 0:
                prior[tree[i], node[i], a] = priors[i, a] / total
            else:
                prior[tree[i], node[i], a] = 1.0 / max(count, 1)


@njit(cache=True)
def prove(
    children: np.ndarray,
    legal: np.ndarray,
    solved: np.ndarray,
    path_nodes: np.ndarray,
    path_len: np.ndarray,
) -> None:
    for b in range(path_len.shape[0]):
        for depth in range(path_len[b] - 1, -1, -1):
            node = path_nodes[b, depth]
            if solved[b, node] != 0:
                break
            best, complete = -2, True  # best exact value for the mover among proven children
            for a in range(children.shape[2]):
                if not legal[b, node, a]:
                    continue
                child = children[b, node, a]
                if child < 0 or solved[b, child] == 0:
                    complete = False
                else:
                    best = max(best, 2 - solved[b, child])  # the child's value, negated
            if best == 1:
                solved[b, node] = 3
            elif complete:
                solved[b, node] = best + 2
            else:
                break


@njit(cache=True)
def backup_paths(
    visits: np.ndarray,
    value_sum: np.ndarray,
    path_nodes: np.ndarray,
    path_actions: np.ndarray,
    path_len: np.ndarray,
    leaf_value: np.ndarray,
) -> None:
    for b in range(path_len.shape[0]):
        length = path_len[b]
        for depth in range(length):
            sign = -1.0 if (length - depth) % 2 == 1 else 1.0  # the edge's chooser's view
            node, a = path_nodes[b, depth], path_actions[b, depth]
            visits[b, node, a] += 1
            value_sum[b, node, a] += sign * leaf_value[b]
