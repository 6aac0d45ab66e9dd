"""Benchmark: vectorized collapse studies against a plain per-seed Python loop, same run.

1. E1: 400 seeds x 1000 generations, replace, MLE, M = 100.
2. The E2 policy sweep (six policies, 400 seeds x 1000 generations).
   Both go through the full engine (SQLite store, metrics, monitors) and are compared with a
   baseline that loops over seeds in Python with numpy inside each seed, which is how one
   usually writes these studies. The baseline keeps running sums for accumulate (the same
   trick the engine uses), so the ratio measures vectorization, not an algorithm change.
3. Wall time of every E1-E6 recipe as shipped (target: the suite under 60 s on one core).

Run serially on an otherwise idle machine: `make bench`.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from selfimprove.experiments import load_config, parse_config, start_run
from selfimprove.recipes import ROOT

CONFIGS = ROOT / "collapse"  # the shipped recipes
SEEDS, GENERATIONS, M = 400, 1000, 100


def baseline(policy: str, num_seeds: int = SEEDS) -> np.ndarray:
    """One seed at a time: sample, mix by policy, refit; returns final sigma per seed."""
    final = np.empty(num_seeds)
    for seed in range(num_seeds):
        rng = np.random.default_rng(seed)
        real = rng.standard_normal(M)
        mean, std = real.mean(), real.std()
        count, total, squares = M, real.sum(), (real**2).sum()
        for _ in range(GENERATIONS):
            tau, noise, num_real = 1.0, 0.0, 0
            if policy == "temperature":
                tau = 1.0202
            elif policy == "noise":
                noise = 0.1
            elif policy in ("fixed", "fresh"):
                num_real = 10
            x = mean + np.sqrt(tau) * std * rng.standard_normal(M - num_real)
            if noise:
                x = x + noise * rng.standard_normal(x.size)
            if policy == "fixed":
                x = np.concatenate([rng.choice(real, num_real, replace=False), x])
            elif policy == "fresh":
                x = np.concatenate([rng.standard_normal(num_real), x])
            if policy == "accumulate":
                count, total, squares = count + x.size, total + x.sum(), squares + (x**2).sum()
                mean = total / count
                std = np.sqrt(max(squares / count - mean**2, 0.0))
            else:
                mean, std = x.mean(), x.std()
        final[seed] = std
    return final


def timed(label: str, work) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    print(f"  {label:<58} {seconds:8.2f} s")
    return seconds


def engine_run(config_data: dict[str, object], runs: Path) -> None:
    start_run(parse_config(config_data, "bench"), runs)


def main() -> None:
    load = os.getloadavg()[0]
    print(
        f"selfimprove collapse benchmark · {platform.machine()} · {os.cpu_count()} cores · load {load:.2f}"
    )
    with tempfile.TemporaryDirectory() as folder:
        runs = Path(folder)
        print(f"\n1. E1: {SEEDS} seeds x {GENERATIONS} generations, replace, MLE, M = {M}")
        e1 = {
            "kind": "collapse.gaussian",
            "generations": GENERATIONS,
            "num_seeds": SEEDS,
            "monitor_every": 50,
            "arms": [{"policy": {"mix": "replace"}}],
        }
        fast = timed(
            "vectorized, through the engine (store, monitors)", lambda: engine_run(e1, runs)
        )
        slow = timed("per-seed Python loop (numpy per seed)", lambda: baseline("replace"))
        print(f"  ratio: {slow / fast:.1f}x faster")

        print(f"\n2. E2 policy sweep: six policies, {SEEDS} seeds x {GENERATIONS} generations")
        sweep = load_config(CONFIGS / "policies.yaml")
        fast = timed(
            "vectorized, through the engine (store, monitors)", lambda: start_run(sweep, runs)
        )
        policies = ["replace", "fixed", "fresh", "accumulate", "temperature", "noise"]
        slow = timed("per-seed Python loop, six policies", lambda: [baseline(p) for p in policies])
        print(f"  ratio: {slow / fast:.1f}x faster")

        print("\n3. E1-E6 recipes as shipped (collapse/*)")
        total = 0.0
        for name in (
            "gaussian",
            "policies",
            "gmm",
            "regression",
            "fresh_data",
            "zipf",
            "zipf_iterated",
        ):
            config = load_config(CONFIGS / f"{name}.yaml")
            total += timed(f"{name}.yaml", lambda config=config: start_run(config, runs))
        print(f"  {'whole suite':<58} {total:8.2f} s   (target < 60 s)")


if __name__ == "__main__":
    main()
