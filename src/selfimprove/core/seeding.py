"""Per-generation random streams.

Every (run seed, generation, stage) triple gets its own independent stream, so a resumed run
draws exactly what an uninterrupted one would, and adding draws to one stage never shifts
another. Arms of one run share streams on purpose (common random numbers): two data policies
start from the same real data, so their difference is the policy's, not the luck's.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

StageName = Literal["initialize", "generate", "verify", "curate", "train", "evaluate", "setup"]
_STAGES: tuple[StageName, ...] = (
    "initialize",
    "generate",
    "verify",
    "curate",
    "train",
    "evaluate",
    "setup",  # fixed inputs drawn once when the arms are built (`generation` numbers them)
)


def stage_rng(seed: int, generation: int, stage: StageName) -> np.random.Generator:
    """The random stream of one stage of one generation."""
    sequence = np.random.SeedSequence([seed, generation, _STAGES.index(stage)])
    return np.random.default_rng(sequence)
