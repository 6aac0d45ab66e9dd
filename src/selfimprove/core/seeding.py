"""Named random streams.

Every (run seed, generation, name) triple gets its own independent stream, so a resumed run
draws exactly what an uninterrupted one would, and adding draws to one use never shifts
another. A name is a stage ("generate", "train", ...) or one use of randomness a run makes
once, when its arms are built ("setup/problems", "setup/base-weights"): one name per use,
never a number chosen by hand. Arms of one run share streams on purpose (common random
numbers): two data policies start from the same real data, so their difference is the
policy's, not the luck's.
"""

from __future__ import annotations

import hashlib

import numpy as np

_STAGES = ("initialize", "generate", "verify", "curate", "train", "evaluate")
"""The six stage streams keep the small codes they always had (runs stay reproducible)."""


def stream_code(name: str) -> int:
    """The integer a name contributes to its stream's seed: a stage's index, or 64 bits of
    the name's SHA-256 above 2**32 (so no name can take a stage's code)."""
    if name in _STAGES:
        return _STAGES.index(name)
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return 2**32 + digest


def stage_rng(seed: int, generation: int, name: str) -> np.random.Generator:
    """The random stream of one named use in one generation (setup work: generation 0)."""
    return np.random.default_rng(_sequence(seed, generation, name))


def _sequence(seed: int, generation: int, name: str) -> np.random.SeedSequence:
    # one function that every stream passes through, so a test can list the streams a run uses
    return np.random.SeedSequence([seed, generation, stream_code(name)])
