"""The stable-baselines3 agents (`hacking/deep.py`): PPO games the lagoon, the result is the
world's own accounting of the learned policy, and a seed decides the run."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from selfimprove.hacking.agents import run_policy
from selfimprove.hacking.deep import MissingExtraError, train_deep
from selfimprove.hacking.envs import GridWorldEnv

RACING_OBSERVED, RACING_HIDDEN = 50.0, 100.0


def test_ppo_games_the_lagoon() -> None:
    """2048 steps (four PPO rollouts, ~2 CPU s) gamed the lagoon for 20 of 20 seeds."""
    pytest.importorskip("stable_baselines3")
    result = train_deep("lagoon", "ppo", 2048, seed=0)
    assert result.observed > RACING_OBSERVED
    assert result.hidden < RACING_HIDDEN


def test_result_is_the_worlds_account_of_the_policy_and_seeded() -> None:
    pytest.importorskip("stable_baselines3")
    result = train_deep("lagoon", "ppo", 512, seed=3)
    env = GridWorldEnv("lagoon")
    assert (result.world, result.algo, result.timesteps, result.seed) == ("lagoon", "ppo", 512, 3)
    assert len(result.policy) == env.tables.num_states
    assert result.cpu_seconds > 0
    rollout = run_policy(env.tables, np.array(result.policy), int(env.tables.starts()[0]))
    assert (result.observed, result.hidden) == (rollout.observed, rollout.hidden)
    assert result.laps == rollout.progress // env.tables.track
    # the Gymnasium environment, stepped with the same policy, reports the same
    obs, _ = env.reset(seed=0)
    observed = hidden = 0.0
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(result.policy[int(obs)])
        observed, hidden = observed + reward, hidden + info["hidden"]
        done = terminated or truncated
    assert (observed, hidden) == (result.observed, result.hidden)
    assert train_deep("lagoon", "ppo", 512, seed=3) == result


def test_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'selfimprove\[rl\]'") as caught:
        train_deep("lagoon", "ppo", 512, seed=0)
    assert isinstance(caught.value, MissingExtraError)
    assert "\n" not in str(caught.value)


def test_unknown_algo_is_refused() -> None:
    pytest.importorskip("stable_baselines3")
    with pytest.raises(ValueError, match="algo"):
        train_deep("lagoon", "a2c", 512, seed=0)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("world", "algo", "timesteps"),
    [("lagoon", "dqn", 3000), ("boat_race", "ppo", 2048), ("boat_race", "dqn", 3000)],
)
def test_reaches_the_proxys_optimum(world: str, algo: str, timesteps: int) -> None:
    """DQN games the lagoon too; in the boat race both reach racing's observed 50 (by
    oscillating over an arrow: hidden near 0, not racing's 100)."""
    pytest.importorskip("stable_baselines3")
    for seed in range(3):
        result = train_deep(world, algo, timesteps, seed)  # type: ignore[arg-type]
        if world == "lagoon":
            assert result.observed > RACING_OBSERVED and result.hidden < RACING_HIDDEN
        else:
            assert result.observed == RACING_OBSERVED
