"""Benchmark: batched MCTS simulations per second on Connect Four, against a one-game-at-a-time
recursive MCTS (the alpha-zero-general design: a Python tree, one network call per leaf)
measured in the same run with the same network.

Reports, for a tiny MLP and for the Connect Four recipe's residual conv net (plain float32, and
as the loop runs it: channels_last in the recipe's precision; each against a baseline using
the same evaluator), at 64, 256 and 1024 games in flight: batched sims/s, the
baseline's sims/s, their ratio, and the share of the batched time spent inside the network
(the rest is tree code). Run serially: `make bench`.
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
    calls: int = 0

    def __call__(
        self, boards: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        start = time.perf_counter()
        out = self.inner(boards, rng)
        self.seconds += time.perf_counter() - start
        self.calls += 1
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


def baseline_rate(evaluator: NetEvaluator, sims: int, rng: np.random.Generator) -> float:
    """Simulations per second of the one-game-at-a-time tree over 16 mid-game roots."""
    done, start = 0, time.perf_counter()
    for board in positions(16, rng):
        root = Node(board)
        for _ in range(sims):
            recursive_simulation(root, evaluator, rng)
            done += 1
    return done / (time.perf_counter() - start)


def batched_rate(
    evaluator: NetEvaluator, games: int, sims: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Simulations per second of one batched search over `games` roots, and the network's share."""
    roots = positions(games, rng)
    timed = TimedEvaluator(evaluator)
    start = time.perf_counter()
    search(GAME, timed, roots, SearchConfig(num_simulations=sims), rng)
    seconds = time.perf_counter() - start
    return games * sims / seconds, timed.seconds / seconds


def main() -> None:
    print(
        f"selfimprove MCTS benchmark · Connect Four · {platform.machine()} · {os.cpu_count()} cores · load {os.getloadavg()[0]:.2f}"
    )
    print(f"best of {REPEATS} interleaved repeats each (shared machines are noisy)")
    rng = np.random.default_rng(0)
    sims = 64
    search(GAME, UniformEvaluator(7), positions(4, rng), SearchConfig(4), rng)  # compile once
    for label, (spec, as_run) in NETS.items():
        model = initial_model(spec, 6, 7, 7, rng)
        evaluator = NetEvaluator.of(model) if as_run else NetEvaluator(model.module())
        baseline, batched = 0.0, {games: (0.0, 0.0) for games in (64, 256, 1024)}
        for _ in range(REPEATS):
            baseline = max(baseline, baseline_rate(evaluator, sims, rng))
            for games in batched:
                batched[games] = max(batched[games], batched_rate(evaluator, games, sims, rng))
        print(f"\n{label}: {model.num_parameters():,} parameters")
        print(f"  one game at a time, recursive Python tree     {baseline:10,.0f} sims/s")
        for games, (rate, share) in batched.items():
            print(
                f"  batched, {games:4d} games in flight              {rate:10,.0f} sims/s"
                f"   {rate / baseline:5.1f}x   network {100 * share:4.1f}% / tree {100 * (1 - share):4.1f}%"
            )


if __name__ == "__main__":
    main()
