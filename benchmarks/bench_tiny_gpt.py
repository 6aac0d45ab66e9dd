"""Benchmark: the tiny GPT's training tokens/s, and sampled tokens/s with the key/value cache
against recomputing the whole sequence for every new token (measured in the same run, the
same model, the same prompts; greedy, so both produce the same tokens).

Target (issue 4): >= 5x at 128 new tokens. Run serially: `make bench`.
"""

from __future__ import annotations

import os
import platform
import time

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


def best_of(repeats: int, run: object) -> float:
    assert callable(run)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    print(
        f"# tiny GPT, {platform.processor() or platform.machine()}, load {os.getloadavg()[0]:.2f}"
    )
    rng = np.random.default_rng(0)
    for label, spec in SIZES.items():
        model = initial_lm(spec, rng)
        examples = [
            Example(tuple(rng.integers(2, 19, 16)), tuple(rng.integers(2, 19, 48)))
            for _ in range(256)
        ]
        config = LmTrainConfig(batch_size=64)
        seconds = best_of(2, lambda m=model: train_lm(m, examples, 20, config, rng))
        print(f"{label}: training {20 * 64 * 64 / seconds:,.0f} tokens/s (batch 64 x 64 tokens)")
        for batch in (1, 64):
            prompts = [list(rng.integers(2, 19, 16)) for _ in range(batch)]
            sampling = SamplingConfig(max_new_tokens=128, stop_at_end=False)  # all 128 tokens
            fast = best_of(3, lambda: sample(model, prompts, sampling, np.random.default_rng(1)))
            slow = best_of(
                2, lambda: sample_without_cache(model, prompts, sampling, np.random.default_rng(1))
            )
            tokens = sum(len(c) for c in sample(model, prompts, sampling, np.random.default_rng(1)))
            print(
                f"{label}, {batch} prompts x 128 new tokens: cache {tokens / fast:,.0f} tokens/s, "
                f"no cache {tokens / slow:,.0f} tokens/s, ratio {slow / fast:.1f}x (target >= 5x)"
            )


if __name__ == "__main__":
    main()
