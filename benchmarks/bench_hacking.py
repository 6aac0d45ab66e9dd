"""Benchmark (reward-hacking issue): environment steps per second of the vectorized boat race
(`GridWorldVectorEnv`, 1024 copies stepped by one table lookup) against the single
Gymnasium env stepped in a Python loop, in the same process (the bar: at least 50x), and the
time of tabular Q-learning for the reference setting (20 seeds x 3000 episodes x 100 steps).
Run serially: `make bench`."""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from selfimprove.hacking.agents import q_learning
from selfimprove.hacking.envs import GridWorldEnv, GridWorldVectorEnv
from selfimprove.hacking.worlds import boat_race

NUM_ENVS = 1024
SINGLE_STEPS = 20_000
VECTOR_STEPS = 2_000
BAR = 50.0


def single_rate() -> float:
    env = GridWorldEnv("boat_race")
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 4, SINGLE_STEPS).tolist()
    started = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return SINGLE_STEPS / (time.perf_counter() - started)


def vector_rate() -> float:
    env = GridWorldVectorEnv(NUM_ENVS, "boat_race")
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 4, (VECTOR_STEPS, NUM_ENVS))
    started = time.perf_counter()
    for step in range(VECTOR_STEPS):
        env.step(actions[step])
    return VECTOR_STEPS * NUM_ENVS / (time.perf_counter() - started)


def main() -> None:
    print(f"bench_hacking on {platform.processor() or platform.machine()}, load {os.getloadavg()}")
    q_learning(boat_race(), 1, 1, np.random.default_rng(0))  # compile (or load) the kernels
    single = max(single_rate() for _ in range(3))
    vector = max(vector_rate() for _ in range(3))
    ratio = vector / single
    print(f"single env: {single:,.0f} steps/s; vectorized x{NUM_ENVS}: {vector:,.0f} steps/s")
    print(f"ratio {ratio:.0f}x (bar {BAR:.0f}x): {'ok' if ratio >= BAR else 'BELOW THE BAR'}")
    times = []
    for seed in range(3):
        started = time.process_time()
        q_learning(boat_race(), 20, 3000, np.random.default_rng(seed))
        times.append(time.process_time() - started)
    print(
        f"Q-learning, 20 seeds x 3000 episodes x 100 steps (6M updates): "
        f"{min(times):.2f} CPU s (best of 3; {6e6 / min(times) / 1e6:.0f}M updates/s)"
    )


if __name__ == "__main__":
    main()
