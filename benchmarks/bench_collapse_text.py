"""Benchmark (issue 6): E8's synthetic corpus sampled with the key/value cache against
recomputing every sequence for each new character, and the wall time of one E8 generation
(train from scratch, sample the next corpus, evaluate) both ways, in the same run.

The model is the recipe's (`collapse/tiny_gpt`: 0.8M parameters, 127-character
documents); the corpus and the step count are cut (`--documents`, `--steps`) so the run
without the cache ends in minutes. Run serially: `make bench`.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from selfimprove.collapse import gpt
from selfimprove.core.store import RunStore
from selfimprove.experiments import CODECS, load_config, start_run
from selfimprove.recipes import ROOT

RECIPE = ROOT / "collapse" / "tiny_gpt.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=100, help="documents per corpus")
    parser.add_argument("--steps", type=int, default=100, help="training steps per generation")
    args = parser.parse_args()
    base = [
        f"train_documents={args.documents}",
        f"steps={args.steps}",
        "generations=1",
        "arms=[{name: replace, policy: {mix: replace}}]",
    ]
    print(f"# E8 sampling and one generation, {platform.node()}, load {os.getloadavg()[0]:.2f}")
    results = {}
    for cache in (True, False):
        settings = load_config(RECIPE, [*base, f"kv_cache={str(cache).lower()}"])
        family = gpt.shakespeare_chars(settings, 1.0)
        with tempfile.TemporaryDirectory() as runs:
            run = start_run(settings, Path(runs))
            store = RunStore.open(run.run_dir)
            minutes = store.compute_minutes("replace")
            seconds = (minutes[1] - minutes[0]) * 60  # generation 1 alone
            state = store.load_snapshot("replace", 1, CODECS)
            assert state is not None
            incumbent = state[1].incumbent
            store.close()
        start = time.perf_counter()
        docs = family.sample(incumbent, args.documents, 1.0, np.random.default_rng(1))
        sampling = time.perf_counter() - start
        results[cache] = (docs.size / sampling, seconds)
        label = "with cache   " if cache else "without cache"
        print(
            f"{label}: sample {docs.size:,} characters at {docs.size / sampling:,.0f} tokens/s; "
            f"one generation {seconds:.1f} s"
        )
    print(
        f"cache speed-up: sampling {results[True][0] / results[False][0]:.1f}x, "
        f"whole generation {results[False][1] / results[True][1]:.2f}x"
    )


if __name__ == "__main__":
    main()
