"""Benchmark: the tiny GPT's training tokens/s, and sampled tokens/s with the key/value cache
against recomputing the whole sequence for every new token (measured in the same run, the
same model, the same prompts; greedy, so both produce the same tokens).

Target (issue 4): >= 5x at 128 new tokens. Run serially: `make bench`.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import numpy as np

from selfimprove.models.tiny_gpt import (
    Example,
    GptSpec,
    LmTrainConfig,
    SamplingConfig,
    initial_lm,
    sample,
    sample_without_cache,
    train_lm,
)

SIZES = {  # label -> spec; the STaR recipe's model first
    "0.4M (2 layers x 128)": GptSpec(vocab_size=19, context=192, layers=2, heads=4, width=128),
    "1.6M (4 layers x 180)": GptSpec(vocab_size=19, context=192, layers=4, heads=4, width=180),
}


def best_of(repeats: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(label: str, spec: GptSpec, rng: np.random.Generator) -> None:
    model = initial_lm(spec, rng)
    examples = [
        Example(tuple(rng.integers(2, 19, 16)), tuple(rng.integers(2, 19, 48))) for _ in range(256)
    ]
    config = LmTrainConfig(batch_size=64)
    seconds = best_of(2, lambda: train_lm(model, examples, 20, config, rng))
    print(f"{label}: training {20 * 64 * 64 / seconds:,.0f} tokens/s (batch 64 x 64 tokens)")
    sampling = SamplingConfig(max_new_tokens=128, stop_at_end=False)  # all 128 tokens
    for batch in (1, 64):
        prompts = [list(rng.integers(2, 19, 16)) for _ in range(batch)]

        def cached(p: list[list[int]] = prompts) -> list[list[int]]:
            return sample(model, p, sampling, np.random.default_rng(1))

        def recomputed(p: list[list[int]] = prompts) -> list[list[int]]:
            return sample_without_cache(model, p, sampling, np.random.default_rng(1))

        assert cached() == recomputed(), "the cache changed the tokens"
        fast, slow = best_of(3, cached), best_of(2, recomputed)
        tokens = batch * 128
        print(
            f"{label}, {batch} prompts x 128 new tokens: cache {tokens / fast:,.0f} tokens/s, "
            f"no cache {tokens / slow:,.0f} tokens/s, ratio {slow / fast:.1f}x (target >= 5x)"
        )


def main() -> None:
    print(
        f"# tiny GPT, {platform.processor() or platform.machine()}, load {os.getloadavg()[0]:.2f}"
    )
    rng = np.random.default_rng(0)
    for label, spec in SIZES.items():
        measure(label, spec, rng)


if __name__ == "__main__":
    main()
