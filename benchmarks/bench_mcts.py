"""Benchmark: batched MCTS simulations per second on Connect Four, against a one-game-at-a-time
recursive MCTS (the alpha-zero-general design: a Python tree, one network call per leaf)
measured in the same run with the same network.

Reports, for a tiny MLP and for the Connect Four recipe's residual conv net (plain float32, and
as the loop runs it: channels_last in the recipe's precision; each against a baseline using
the same evaluator), at 64, 256 and 1024 games in flight: batched sims/s, the
baseline's sims/s, their ratio, and the share of the batched time spent inside the network
(the rest is tree code). Run serially: `make bench`.

Both searches run from the same mid-game roots: the batched search with 64 or 256 games in
flight from the first 64 or all 256 of 256 roots (with 1024, from the 256 searched four times
over), the baseline over each root in turn, its rate for 64 games taken over the first 64.
The roots must be the same: how many simulations end on a finished game, and so need no
network call, differs a lot from root to root (0.09 to 1.0 boards evaluated per simulation
with a fresh tiny MLP, 0.8 on average), so a baseline timed on a few other roots, best of
several draws, ran up to 40% faster than it does on the batched search's roots. The
benchmark prints how many boards each search evaluated per simulation: they should agree
(the batched search evaluates its roots once more, before its simulations: +1/64). Repeating
64 roots to fill 256 games flattered the batched search by 3-6% (identical trees), hence
distinct roots up to 256.

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

import numpy as np

from selfimprove.core.config import read_yaml
from selfimprove.games.arena import random_openings
from selfimprove.games.bots import UniformEvaluator
from selfimprove.games.mcts import SearchConfig, normalize, search
from selfimprove.games.network import NetEvaluator, NetSpec, initial_model
from selfimprove.games.rules import ConnectFour
from selfimprove.recipes import ROOT

GAME = ConnectFour()
REPEATS = 5
ROOTS = 256  # distinct mid-game positions both searches start from
GAMES = (64, 256, 1024)  # games in flight
RECIPE = ROOT / "games" / "connect4.yaml"
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


@dataclass
class Baseline:
    """The one-game-at-a-time tree's time per root: the fastest of the repeats for each."""

    sims: int
    seconds: np.ndarray  # [roots]
    network_seconds: np.ndarray  # [roots]
    boards: np.ndarray  # [roots] boards evaluated (the same every repeat: no noise, one net)

    @classmethod
    def measure(
        cls, evaluator: NetEvaluator, roots: np.ndarray, sims: int, rng: np.random.Generator
    ) -> Baseline:
        times = np.zeros((3, len(roots)))
        for i, board in enumerate(roots):
            timed, root = TimedEvaluator(evaluator), Node(board)
            start = time.perf_counter()
            for _ in range(sims):
                recursive_simulation(root, timed, rng)
            times[:, i] = time.perf_counter() - start, timed.seconds, timed.boards
        return cls(sims, *times)

    def faster(self, other: Baseline) -> Baseline:
        take = other.seconds < self.seconds
        return Baseline(
            self.sims,
            np.where(take, other.seconds, self.seconds),
            np.where(take, other.network_seconds, self.network_seconds),
            self.boards,
        )

    def rate(self, roots: int) -> Rate:
        """Over the first `roots` roots."""
        seconds = self.seconds[:roots].sum()
        return Rate(
            roots * self.sims / seconds,
            self.network_seconds[:roots].sum() / seconds,
            self.boards[:roots].sum() / (roots * self.sims),
        )


def batched_rate(
    evaluator: NetEvaluator, roots: np.ndarray, games: int, sims: int, rng: np.random.Generator
) -> Rate:
    """One batched search with `games` in flight: the first `games` roots, or all of them
    repeated. It evaluates the roots before its simulations, one board per game more than the
    baseline (whose first simulation evaluates the root): counted in its time and boards."""
    roots = roots[:games] if games <= len(roots) else np.tile(roots, (games // len(roots), 1, 1))
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
        baseline = Baseline.measure(evaluator, roots, sims, rng)
        batched = dict.fromkeys(GAMES, Rate(0.0, 0.0, 0.0))
        for repeat in range(REPEATS):
            if repeat:
                baseline = baseline.faster(Baseline.measure(evaluator, roots, sims, rng))
            for games in GAMES:
                batched[games] = max(
                    batched[games], batched_rate(evaluator, roots, games, sims, rng)
                )
        print(f"\n{label}: {model.num_parameters():,} parameters")
        print(
            "  games in flight   batched sims/s   one game at a time   ratio"
            "   network share   boards/sim   tree free (ratio)"
        )
        for games, rate in batched.items():
            one = baseline.rate(min(games, len(roots)))
            free = rate.sims_per_second / rate.network_share
            print(
                f"  {games:15d}   {rate.sims_per_second:14,.0f}   {one.sims_per_second:18,.0f}"
                f"   {rate.sims_per_second / one.sims_per_second:5.1f}x"
                f"   {100 * rate.network_share:5.1f}% / {100 * one.network_share:4.1f}%"
                f"   {rate.boards_per_sim:.3f} / {one.boards_per_sim:.3f}"
                f"   {free:10,.0f} ({free / one.sims_per_second:5.1f}x)"
            )


if __name__ == "__main__":
    main()
