"""Self-play on two cores: the games of a generation split into chunks, one chunk played here
and the others in worker processes, each chunk with its own random stream.

The workers are spawned once per process (importing torch costs seconds) and kept for the
run; each call ships them the weights (a small state dict) and gets their positions back.
A chunk's result depends only on its seed, so a run is as reproducible (and resumable) with
two workers as with one; it differs from a one-worker run, which plays one chunk.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from selfimprove.core.cpu import add_worker_seconds
from selfimprove.games.selfplay import Positions

_POOLS: dict[int, ProcessPoolExecutor] = {}  # by number of processes

Chunk = Callable[[int, int], Positions]  # (games, seed) -> positions; must pickle


def chunk_sizes(num_games: int, workers: int) -> list[int]:
    """`num_games` split as evenly as possible over at most `workers` non-empty chunks."""
    parts = min(workers, num_games)
    return [num_games // parts + (i < num_games % parts) for i in range(parts)]


def merge(parts: list[Positions]) -> Positions:
    """One generation's positions from its chunks, in chunk order (games renumbered)."""
    offsets = np.cumsum([0] + [p.num_games for p in parts[:-1]])
    return Positions(
        np.concatenate([p.boards for p in parts]),
        np.concatenate([p.policies for p in parts]),
        np.concatenate([p.values for p in parts]),
        np.concatenate([p.search_values for p in parts]),
        np.concatenate([p.games + offset for p, offset in zip(parts, offsets, strict=True)]),
        np.concatenate([p.actions for p in parts]),
        sum(p.num_games for p in parts),
    )


def play_chunks(play: Chunk, num_games: int, workers: int, rng: np.random.Generator) -> Positions:
    """Play `num_games` as `workers` chunks: chunk 0 in this process, the rest in the pool.
    Every chunk draws its seed from `rng` first, so the split never changes a chunk's games."""
    sizes = chunk_sizes(num_games, workers)
    seeds = [int(s) for s in rng.integers(2**63, size=len(sizes))]
    pending: list[Future[tuple[Positions, float]]] = [
        _pool(len(sizes) - 1).submit(timed, play, size, seed)
        for size, seed in zip(sizes[1:], seeds[1:], strict=True)
    ]
    parts = [play(sizes[0], seeds[0])]
    for future in pending:
        positions, seconds = future.result()
        add_worker_seconds(seconds)  # so the generation's CPU time counts the worker's too
        parts.append(positions)
    return merge(parts)


def timed(play: Chunk, games: int, seed: int) -> tuple[Positions, float]:
    """In a worker: play a chunk; its positions and the CPU seconds it took."""
    started = time.process_time()
    positions = play(games, seed)
    return positions, time.process_time() - started


def _pool(processes: int) -> ProcessPoolExecutor:
    if processes not in _POOLS:
        context = multiprocessing.get_context("spawn")  # no forked torch state
        _POOLS[processes] = ProcessPoolExecutor(
            processes, mp_context=context, initializer=exit_with_parent, initargs=(os.getpid(),)
        )
    return _POOLS[processes]


def exit_with_parent(parent: int) -> None:
    """In a worker: leave as soon as the loop's process is gone (`kill -9` included), instead
    of waiting forever on a queue whose other end nobody holds any more."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
