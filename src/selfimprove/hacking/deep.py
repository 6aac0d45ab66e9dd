"""A deep agent from a well-kept library on the worlds: stable-baselines3 PPO or DQN.

The tabular learners in `agents.py` game the lagoon; `train_deep` shows the same gaming with
the tools people already use. It trains an SB3 `MlpPolicy` on `GridWorldEnv` (SB3 one-hot
encodes the `Discrete` observation itself), reads the learned greedy action of every state
into a table policy and plays it with `agents.run_policy`, so the observed return and hidden
performance are the world's own, computed exactly as for the tabular agents.

Optional extra `rl` (`pip install 'selfimprove[rl]'`, which installs `stable-baselines3`);
without it, `train_deep` raises `MissingExtraError` (a `ModuleNotFoundError`) with a one-line
message.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from selfimprove.hacking.agents import run_policy

Algo = Literal["ppo", "dqn"]

PPO_HYPERPARAMS: dict[str, Any] = {
    "n_steps": 512,
    "batch_size": 64,
    "n_epochs": 10,
    "learning_rate": 1e-3,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "ent_coef": 0.01,
}
"""PPO settings that learn these worlds in few steps (measured in `benchmarks/hacking_deep.py`)."""

DQN_HYPERPARAMS: dict[str, Any] = {
    "learning_rate": 1e-3,
    "buffer_size": 20_000,
    "learning_starts": 500,
    "batch_size": 64,
    "gamma": 0.99,
    "train_freq": 4,
    "target_update_interval": 250,
    "exploration_fraction": 0.5,
    "exploration_final_eps": 0.05,
}
"""DQN settings that learn these worlds in few steps (measured in `benchmarks/hacking_deep.py`)."""


class MissingExtraError(ModuleNotFoundError):
    """An optional extra that a feature needs is not installed."""


@dataclass(frozen=True)
class DeepResult:
    """A trained deep agent's greedy policy, played from every start state.

    `observed`, `hidden` and `progress` are means over the start states weighted by the reset
    distribution; `laps` is `floor(progress / track)` (0 in a world without a track).
    `cpu_seconds` is the process CPU time of training alone."""

    world: str
    algo: str
    timesteps: int
    seed: int
    observed: float
    hidden: float
    progress: float
    laps: int
    policy: tuple[int, ...]
    """The greedy action of every state (the table `run_policy` plays)."""
    cpu_seconds: float = field(compare=False)
    """Not compared: the same seed gives an equal result in a different time."""


def _algorithms() -> dict[str, Any]:
    """The SB3 classes by name; a one-line `MissingExtraError` without the `rl` extra."""
    try:
        from stable_baselines3 import DQN, PPO
    except ImportError as error:
        raise MissingExtraError(
            "deep agents need the 'rl' extra: pip install 'selfimprove[rl]'"
        ) from error
    return {"ppo": PPO, "dqn": DQN}


def train_deep(
    world: str,
    algo: Algo,
    timesteps: int,
    seed: int,
    hyperparams: Mapping[str, Any] | None = None,
) -> DeepResult:
    """Train SB3 PPO or DQN (`MlpPolicy`, CPU, one torch thread, seeded) on `world` for
    `timesteps` environment steps and evaluate its deterministic policy.

    Parameters
    ----------
    world : a name in `worlds.WORLDS` (`boat_race`, `lagoon`, `absent_supervisor`)
    algo : `"ppo"` or `"dqn"`
    timesteps : environment steps of training
    seed : seeds SB3 (torch, numpy, the environment and its action space)
    hyperparams : overrides of `PPO_HYPERPARAMS` / `DQN_HYPERPARAMS`

    Returns
    -------
    DeepResult : the greedy policy's observed return, hidden performance and laps
    """
    algorithms = _algorithms()
    if algo not in algorithms:
        raise ValueError(f"algo must be 'ppo' or 'dqn', got {algo!r}")
    import torch

    from selfimprove.hacking.envs import GridWorldEnv  # gymnasium comes with the extra

    torch.set_num_threads(1)
    env = GridWorldEnv(world)
    tables = env.tables
    defaults = PPO_HYPERPARAMS if algo == "ppo" else DQN_HYPERPARAMS
    settings = {**defaults, **(hyperparams or {})}
    started = time.process_time()
    model = algorithms[algo]("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **settings)
    model.learn(total_timesteps=timesteps)
    cpu_seconds = time.process_time() - started
    states = np.arange(tables.num_states, dtype=np.int64)
    actions, _ = model.predict(states, deterministic=True)
    policy = np.asarray(actions, dtype=np.int64).reshape(tables.num_states)
    starts = tables.starts()
    weights = tables.start[starts] / tables.start[starts].sum()
    rollouts = [run_policy(tables, policy, int(s)) for s in starts]
    observed = float(sum(w * r.observed for w, r in zip(weights, rollouts, strict=True)))
    hidden = float(sum(w * r.hidden for w, r in zip(weights, rollouts, strict=True)))
    progress = float(sum(w * r.progress for w, r in zip(weights, rollouts, strict=True)))
    laps = math.floor(progress / tables.track) if tables.track else 0
    return DeepResult(
        world,
        algo,
        timesteps,
        seed,
        observed,
        hidden,
        progress,
        laps,
        tuple(int(a) for a in policy),
        cpu_seconds,
    )
