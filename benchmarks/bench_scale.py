"""Benchmark (scale-out issue): Connect Four self-play games per second with the `processes`
executor against the `ray` executor (a private one-node cluster started here) on this
machine's cores, in the same run; and what one chunk costs on each beyond its games (the
per-chunk overhead the scaling model in docs/scale-out.md uses).

Self-play is the shipped recipe's (`games/connect4`: a 4x64 residual net in bfloat16, 100
simulations per move) with random weights; the games are split into one chunk per worker,
as a recipe with `chunks: 2` does. Rounds alternate the two executors, and each keeps its
best round (the other core is never busy with the other executor). Run serially: `make
bench`.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

import numpy as np

from selfimprove.core.config import ExecutorConfig
from selfimprove.core.executors import Executor, executor_of
from selfimprove.experiments import load_config
from selfimprove.games.alphazero import AlphaZeroConfig, PlayChunk, make_game
from selfimprove.games.network import NetModel, initial_model
from selfimprove.games.workers import play_chunks

WORKERS = 2
GAMES = int(os.environ.get("BENCH_SCALE_GAMES", "64"))
ROUNDS = 2
TRIVIAL = 200  # pieces for the bare per-task cost
CALLS = 20  # generation-like calls of WORKERS pieces that carry the model
CHUNK_SIZES = (4, 16)  # games per chunk for the per-game cost in one process


@dataclass(frozen=True)
class Touch:
    """A piece that carries the model, as a self-play chunk does, and plays no game."""

    model: NetModel

    def __call__(self, item: int) -> int:
        return item


def model_bytes(model: NetModel) -> int:
    return sum(t.numel() * t.element_size() for t in model.state.values())


def games_per_second(executor: Executor, play: PlayChunk, seed: int) -> tuple[float, int]:
    started = time.perf_counter()
    positions = play_chunks(play.piece, GAMES, WORKERS, np.random.default_rng(seed), executor)
    seconds = time.perf_counter() - started
    arrays = (positions.boards, positions.policies, positions.values, positions.actions)
    return GAMES / seconds, sum(a.nbytes for a in arrays)


def overhead_ms(executor: Executor, model: NetModel) -> tuple[float, float]:
    """(bare task round trip, piece carrying the model) in ms per piece."""
    executor.map(abs, list(range(TRIVIAL)))  # warm
    started = time.perf_counter()
    executor.map(abs, list(range(TRIVIAL)))
    bare = (time.perf_counter() - started) / TRIVIAL
    touch = Touch(model)
    executor.map(touch, list(range(WORKERS)))
    started = time.perf_counter()
    for _ in range(CALLS):
        executor.map(touch, list(range(WORKERS)))
    carrying = (time.perf_counter() - started) / (CALLS * WORKERS)
    return 1000 * bare, 1000 * carrying


def seconds_per_game(play: PlayChunk, games: int) -> float:
    """One chunk of `games` played in this process: CPU seconds per game (the network
    evaluates every pending leaf of the chunk's games in one call, so bigger chunks are
    cheaper per game)."""
    started = time.process_time()
    play(games, 0)
    return (time.process_time() - started) / games


def main() -> None:
    print(
        f"# self-play on executors, {platform.node()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    config = load_config("games/connect4")
    assert isinstance(config, AlphaZeroConfig)
    game, _ = make_game(config.game)
    model = initial_model(
        config.net, game.rows, game.cols, game.num_actions, np.random.default_rng(0)
    )
    play = PlayChunk(game, config.self_play, model)
    executors = {
        kind: executor_of(ExecutorConfig(kind=kind, num_workers=WORKERS))
        for kind in ("processes", "ray")
    }
    for executor in executors.values():  # workers up, torch imported, kernels compiled
        play_chunks(play.piece, WORKERS, WORKERS, np.random.default_rng(1), executor)
    best = dict.fromkeys(executors, 0.0)
    result_bytes = 0
    for round_ in range(ROUNDS):
        for kind, executor in executors.items():
            rate, result_bytes = games_per_second(executor, play, round_)
            best[kind] = max(best[kind], rate)
            print(f"round {round_}: {kind:9s} {rate:.2f} games/s")
    print(
        f"connect4 self-play, {GAMES} games in {WORKERS} chunks, {config.self_play.num_simulations} sims/move:"
    )
    for kind, rate in best.items():
        print(f"  {kind:9s} {rate:.2f} games/s (best of {ROUNDS})")
    print(f"ray / processes: {best['ray'] / best['processes']:.2f}x (target >= 0.9x)")
    print(
        f"model: {model_bytes(model) / 1e6:.2f} MB; positions back: {result_bytes / GAMES / 1e3:.1f} kB/game"
    )
    for games in CHUNK_SIZES:
        print(
            f"one chunk of {games:3d} games here: {seconds_per_game(play, games):.2f} CPU-s per game"
        )
    for kind, executor in executors.items():
        bare, carrying = overhead_ms(executor, model)
        print(
            f"{kind:9s} overhead: {bare:.2f} ms per bare task, {carrying:.1f} ms per piece carrying the model"
        )


if __name__ == "__main__":
    main()
