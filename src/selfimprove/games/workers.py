"""Self-play split into chunks: a generation's games as seeded pieces that any executor
(`core.executors`: in this process, worker processes, a Ray cluster) plays.

Every chunk draws its seed from the generation's self-play stream first, and a chunk's games
depend only on its seed and size, so where the chunks are played never changes a run's
results (a run with `chunks: 2` is the same on every executor; it differs from a one-chunk
run, which plays every game from the stream itself).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from selfimprove.core.executors import Executor
from selfimprove.games.selfplay import Positions

Piece = Callable[[tuple[int, int]], Positions]  # (games, seed) -> positions; must pickle


def chunk_sizes(num_games: int, chunks: int) -> list[int]:
    """`num_games` split as evenly as possible over at most `chunks` non-empty chunks."""
    parts = min(chunks, num_games)
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


def play_chunks(
    piece: Piece, num_games: int, chunks: int, rng: np.random.Generator, executor: Executor
) -> Positions:
    """Play `num_games` as `chunks` seeded pieces on `executor`, merged in chunk order."""
    sizes = chunk_sizes(num_games, chunks)
    seeds = [int(s) for s in rng.integers(2**63, size=len(sizes))]
    return merge(executor.map(piece, list(zip(sizes, seeds, strict=True))))
