"""Benchmark: batched MCTS simulations per second on Connect Four, against a one-game-at-a-time
recursive MCTS (the alpha-zero-general design: a Python tree, one network call per leaf)
measured in the same run with the same network.

Reports, for a tiny MLP and for the Connect Four recipe's residual conv net (plain float32, and
as the loop runs it: channels_last in the recipe's precision; each against a baseline using
the same evaluator), at 64, 256 and 1024 games in flight: batched sims/s, the
baseline's sims/s, their ratio, and the share of the batched time spent inside the network
(the rest is tree code). Run serially: `make bench`.

Both searches run from the same 64 mid-game roots (the batched search with 256 or 1024 games
in flight searches them 4 or 16 times over). The roots must be the same: how many
simulations end on a finished game, and so need no network call, differs a lot from root to
root (0.09 to 1.0 boards evaluated per simulation over 256 roots with a fresh tiny MLP, 0.8
on average), so a baseline timed on a few other roots, best of several draws, ran up to 40%
faster than it does on the batched search's roots. The benchmark prints how many boards
each search evaluated per simulation: from the same roots they should agree.

"Tree free" is the batched rate with the tree's share taken out: the same search if its tree
code cost nothing, the network's own limit. Its ratio to the baseline bounds what any tree
code can show with that many games in flight: a step makes one network call on (at most)
`games` boards where the baseline makes one call on one board per simulation, and the
baseline shares the evaluator, so making the call cheaper speeds both.
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from selfimprove.core.config import read_yaml
from selfimprove.games.arena import random_openings
from selfimprove.games.bots import UniformEvaluator
from selfimprove.games.mcts import SearchConfig, normalize, search
from selfimprove.games.network import NetEvaluator, NetSpec, initial_model
from selfimprove.games.rules import ConnectFour

GAME = ConnectFour()
REPEATS = 5
ROOTS = 64  # mid-game positions both searches start from
RECIPE = Path(__file__).resolve().parents[1] / "configs" / "games" / "connect4.yaml"
RECIPE_NET = NetSpec.model_validate(read_yaml(RECIPE)["net"])
CONV = f"the recipe's conv net ({RECIPE_NET.blocks} blocks x {RECIPE_NET.channels} channels)"
FLOAT32 = RECIPE_NET.model_copy(update={"precision": "float32"})
NETS = {  # label -> (spec, as the loop runs it); the conv net plain and as the recipe runs it
    "tiny MLP (64 hidden)": (NetSpec(kind="mlp", hidden=64), False),
    f"{CONV}, float32, contiguous": (FLOAT32, False),
    f"{CONV}, as the recipe runs it (channels_last, {RECIPE_NET.precision})": (RECIPE_NET, True),
}


@dataclass
class TimedEvaluator:
    inner: NetEvaluator
    seconds: float = 0.0
    boards: int = 0

    def __call__(
        self, boards: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        start = time.perf_counter()
        out = self.inner(boards, rng)
        self.seconds += time.perf_counter() - start
        self.boards += len(boards)
        return out


@dataclass
class Node:
    board: np.ndarray
    prior: np.ndarray = field(default_factory=lambda: np.zeros(7))
    legal: np.ndarray = field(default_factory=lambda: np.zeros(7, bool))
    visits: np.ndarray = field(default_factory=lambda: np.zeros(7))
    value_sum: np.ndarray = field(default_factory=lambda: np.zeros(7))
    children: dict[int, Node] = field(default_factory=dict)
    terminal_value: float | None = None


def recursive_simulation(node: Node, evaluator: NetEvaluator, rng: np.random.Generator) -> float:
    """One simulation; returns the value for the player to move at `node`."""
    if node.terminal_value is not None:
        return node.terminal_value
    if not node.legal.any():  # unexpanded: evaluate this single board
        priors, values = evaluator(node.board[None], rng)
        node.legal = GAME.legal_actions(node.board[None])[0]
        node.prior = normalize(priors, node.legal[None])[0]
        return float(values[0])
    total = node.visits.sum()
    q = np.where(node.visits > 0, node.value_sum / np.maximum(node.visits, 1), 0.0)
    score = np.where(
        node.legal, q + 1.25 * node.prior * math.sqrt(total + 1) / (1 + node.visits), -np.inf
    )
    action = int(score.argmax())
    if action not in node.children:
        step = GAME.play(node.board[None], np.array([action]))
        child = Node(step.boards[0])
        if step.terminal[0]:
            child.terminal_value = -1.0 if step.mover_won[0] else 0.0
        node.children[action] = child
    value = -recursive_simulation(node.children[action], evaluator, rng)
    node.visits[action] += 1
    node.value_sum[action] += value
    return value


def positions(num: int, rng: np.random.Generator) -> np.ndarray:
    """Mid-game roots: 8 random legal moves that end no game."""
    return random_openings(GAME, num, 8, rng)


@dataclass(order=True)
class Rate:
    sims_per_second: float
    network_share: float  # of the search's time
    boards_per_sim: float  # boards the network evaluated per simulation


def baseline_rate(
    evaluator: NetEvaluator, roots: np.ndarray, sims: int, rng: np.random.Generator
) -> Rate:
    """The one-game-at-a-time tree, searching `roots` in turn."""
    timed = TimedEvaluator(evaluator)
    start = time.perf_counter()
    for board in roots:
        root = Node(board)
        for _ in range(sims):
            recursive_simulation(root, timed, rng)
    seconds = time.perf_counter() - start
    done = len(roots) * sims
    return Rate(done / seconds, timed.seconds / seconds, timed.boards / done)


def batched_rate(
    evaluator: NetEvaluator, roots: np.ndarray, games: int, sims: int, rng: np.random.Generator
) -> Rate:
    """One batched search with `games` in flight (`roots` repeated). It evaluates the roots
    before its simulations, one board per game more than the baseline (whose first simulation
    evaluates the root): counted here in its time and its boards."""
    roots = np.tile(roots, (games // len(roots), 1, 1))
    timed = TimedEvaluator(evaluator)
    start = time.perf_counter()
    search(GAME, timed, roots, SearchConfig(num_simulations=sims), rng)
    seconds = time.perf_counter() - start
    done = games * sims
    return Rate(done / seconds, timed.seconds / seconds, timed.boards / done)


def main() -> None:
    print(
        f"selfimprove MCTS benchmark · Connect Four · {platform.machine()} · {os.cpu_count()} cores · load {os.getloadavg()[0]:.2f}"
    )
    print(f"best of {REPEATS} interleaved repeats each (shared machines are noisy)")
    rng = np.random.default_rng(0)
    sims = 64
    search(GAME, UniformEvaluator(7), positions(4, rng), SearchConfig(4), rng)  # compile once
    roots = positions(ROOTS, rng)
    for label, (spec, as_run) in NETS.items():
        model = initial_model(spec, 6, 7, 7, rng)
        evaluator = NetEvaluator.of(model) if as_run else NetEvaluator(model.module())
        baseline = Rate(0.0, 0.0, 0.0)
        batched = dict.fromkeys((64, 256, 1024), baseline)
        for _ in range(REPEATS):
            baseline = max(baseline, baseline_rate(evaluator, roots, sims, rng))
            for games in batched:
                batched[games] = max(
                    batched[games], batched_rate(evaluator, roots, games, sims, rng)
                )
        print(f"\n{label}: {model.num_parameters():,} parameters")
        print(
            f"  one game at a time, recursive Python tree     {baseline.sims_per_second:10,.0f} sims/s"
            f"          network {100 * baseline.network_share:4.1f}%"
            f"   {baseline.boards_per_sim:.3f} boards evaluated per simulation"
        )
        for games, rate in batched.items():
            ratio = rate.sims_per_second / baseline.sims_per_second
            free = rate.sims_per_second / rate.network_share
            print(
                f"  batched, {games:4d} games in flight              {rate.sims_per_second:10,.0f} sims/s"
                f"   {ratio:5.1f}x   network {100 * rate.network_share:4.1f}%"
                f"   {rate.boards_per_sim:.3f} boards/sim"
                f"   tree free {free:10,.0f} ({free / baseline.sims_per_second:5.1f}x)"
            )


if __name__ == "__main__":
    main()
