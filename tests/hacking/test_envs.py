"""The worlds as Gymnasium environments: the env checker passes, `gymnasium.make` finds them,
and the vectorized env equals the single one, step for step."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from selfimprove.hacking.envs import ENV_IDS, GridWorldEnv, GridWorldVectorEnv, register


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(ENV_IDS))
@pytest.mark.parametrize("watched_share", [None, 0.3])
def test_gymnasium_env_checker_passes(name: str, watched_share: float | None) -> None:
    check_env(GridWorldEnv(name, watched_share, render_mode="ansi"), skip_render_check=False)


def test_registered_envs_are_made_by_id() -> None:
    register()
    env = gymnasium.make("selfimprove/BoatRace-v0", render_mode="ansi")
    obs, info = env.reset(seed=0)
    assert obs == 0 and info == {"hidden": 0.0, "progress": 0}
    total = [0.0, 0.0]
    for action in [3, 3, 1, 1, 2, 2, 0, 0]:  # rrddlluu: one lap
        obs, reward, terminated, truncated, info = env.step(action)
        total[0] += float(reward)
        total[1] += info["hidden"]
    assert total == [4.0, 8.0] and not terminated and not truncated
    assert "A" in env.render()
    vec = gymnasium.make_vec(
        "selfimprove/Lagoon-v0", num_envs=3, vectorization_mode="vector_entry_point"
    )
    assert vec.reset(seed=0)[0].tolist() == [0, 0, 0]


def test_an_episode_is_truncated_at_100_steps() -> None:
    env = GridWorldEnv("boat_race")
    env.reset(seed=0)
    for step in range(100):
        _, _, terminated, truncated, _ = env.step(0)
        assert not terminated and truncated == (step == 99)


@pytest.mark.parametrize("name", sorted(ENV_IDS))
def test_the_vector_env_equals_the_single_env_step_for_step(name: str) -> None:
    """Copy i reset with seed s behaves like the single env reset with seed s + i, across
    autoresets (same-step: the returned observation is the next episode's first)."""
    n, steps = 5, 130
    vec = GridWorldVectorEnv(n, name, watched_share=0.5 if name == "boat_race" else None)
    singles = [GridWorldEnv(tables=vec.tables) for _ in range(n)]
    obs, infos = vec.reset(seed=7)
    firsts = [env.reset(seed=7 + i) for i, env in enumerate(singles)]
    assert obs.tolist() == [int(o) for o, _ in firsts]
    actions = np.random.default_rng(0).integers(0, 4, (steps, n))
    for t in range(steps):
        obs, rewards, terminated, truncated, infos = vec.step(actions[t])
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(int(actions[t, i]))
            assert (rewards[i], terminated[i], truncated[i]) == (r, term, trunc)
            assert infos["hidden"][i] == info["hidden"]
            assert infos["progress"][i] == info["progress"]
            if term or trunc:
                assert infos["final_obs"][i] == o
                o, _ = env.reset()  # the single env's own generator, as the copy's
            assert obs[i] == o


def test_a_bad_action_is_refused() -> None:
    env = GridWorldEnv("boat_race")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not in Discrete"):
        env.step(4)
