"""The worlds as Gymnasium environments: one episode at a time (`GridWorldEnv`, registered as
`selfimprove/BoatRace-v0`, `selfimprove/Lagoon-v0`, `selfimprove/AbsentSupervisor-v0`) and
many at once (`GridWorldVectorEnv`, a `gymnasium.vector.VectorEnv` that steps every copy with
one table lookup).

Observations are the state's number (`Discrete`); `info` carries `hidden` (this step's
hidden performance), `progress` (+1 a clockwise step along the track) and, where the world has
them, `supervisor` / `watched`. The observed reward is the proxy; nothing in the observation
tells the agent its hidden performance.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from selfimprove.hacking.agents import References, references
from selfimprove.hacking.worlds import WORLDS, Tables, watched

ENV_IDS = {
    "boat_race": "selfimprove/BoatRace-v0",
    "lagoon": "selfimprove/Lagoon-v0",
    "absent_supervisor": "selfimprove/AbsentSupervisor-v0",
}


@functools.cache
def world(name: str, watched_share: float | None = None) -> Tables:
    """A world by name; with `watched_share`, with a visible watched bit. Built once per
    process and shared: nothing writes to a world's tables."""
    tables = WORLDS[name]()
    return tables if watched_share is None else watched(tables, watched_share)


@functools.cache
def world_references(name: str, discount: float) -> References:
    """What the world's optima earn (`agents.references`), computed once per process."""
    return references(world(name), discount)


def draw_start(tables: Tables, rng: np.random.Generator) -> int:
    """A reset's state: one uniform from the env's generator, looked up in the start
    distribution's cumulative sum (what `Generator.choice(p=...)` does, at a fortieth of the
    cost, which matters when 1024 copies reset at once); the single and the vector env both
    draw through here, so they agree by construction."""
    return int(np.searchsorted(tables.start_cdf, rng.random(), side="right"))


class GridWorldEnv(gymnasium.Env[np.int64, np.int64]):
    """One episode at a time. `render_mode="ansi"` returns the grid as text."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}  # noqa: RUF012 (gymnasium's name)

    def __init__(
        self,
        world_name: str = "boat_race",
        watched_share: float | None = None,
        render_mode: str | None = None,
        tables: Tables | None = None,
    ):
        self.tables = tables if tables is not None else world(world_name, watched_share)
        self.observation_space = spaces.Discrete(self.tables.num_states)
        self.action_space = spaces.Discrete(self.tables.num_actions)
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        self._state = 0
        self._steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.int64, dict[str, Any]]:
        super().reset(seed=seed)
        self._state = draw_start(self.tables, self.np_random)
        self._steps = 0
        return np.int64(self._state), self._info(0.0, 0)

    def step(self, action: np.int64 | int) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
        t, s, a = self.tables, self._state, int(action)
        if not self.action_space.contains(a):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        reward, hidden, done = float(t.reward[s, a]), float(t.hidden[s, a]), bool(t.done[s, a])
        progress = int(t.progress[s, a])
        self._state = int(t.next[s, a])
        self._steps += 1
        truncated = not done and self._steps >= t.horizon
        return np.int64(self._state), reward, done, truncated, self._info(hidden, progress)

    def _info(self, hidden: float, progress: int) -> dict[str, Any]:
        info: dict[str, Any] = {"hidden": hidden, "progress": progress}
        for name, column in self.tables.watchers.items():
            info[name] = bool(column[self._state])
        return info

    def render(self) -> str | None:
        return self.tables.render(self._state) if self.render_mode == "ansi" else None


class GridWorldVectorEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """`num_envs` copies stepped together by table lookup. Autoreset is same-step: a copy
    whose episode ended returns the next episode's first observation at once (the last one in
    `info["final_obs"]`), so every step's arrays cover every copy. Copy i with seed s behaves
    exactly like `GridWorldEnv` reset with seed s + i (a test holds them equal)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}  # noqa: RUF012 (gymnasium's name)

    def __init__(
        self,
        num_envs: int,
        world_name: str = "boat_race",
        watched_share: float | None = None,
        tables: Tables | None = None,
    ):
        self.tables = tables if tables is not None else world(world_name, watched_share)
        self.num_envs = num_envs
        self.single_observation_space = spaces.Discrete(self.tables.num_states)
        self.single_action_space = spaces.Discrete(self.tables.num_actions)
        self.observation_space = spaces.MultiDiscrete(np.full(num_envs, self.tables.num_states))
        self.action_space = spaces.MultiDiscrete(np.full(num_envs, self.tables.num_actions))
        self._states = np.zeros(num_envs, np.int64)
        self._steps = np.zeros(num_envs, np.int64)
        self._rngs: list[np.random.Generator] = []
        t = self.tables  # flat tables: one `take` per quantity a step
        self._next, self._reward, self._hidden = t.next.ravel(), t.reward.ravel(), t.hidden.ravel()
        self._done, self._progress = t.done.ravel(), t.progress.ravel()

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None or isinstance(seed, int):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
        self._rngs = [gymnasium.utils.seeding.np_random(s)[0] for s in seeds]
        self._states = np.array([draw_start(self.tables, rng) for rng in self._rngs], np.int64)
        self._steps[:] = 0
        return self._states.copy(), self._infos(
            np.zeros(self.num_envs), np.zeros(self.num_envs, np.int64)
        )

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        flat = self._states * self.tables.num_actions + np.asarray(actions, np.int64)
        rewards, hidden = self._reward.take(flat), self._hidden.take(flat)
        done, progress, after = (
            self._done.take(flat),
            self._progress.take(flat),
            self._next.take(flat),
        )
        self._steps += 1
        truncated = ~done & (self._steps >= self.tables.horizon)
        ended = done | truncated
        infos = self._infos(hidden, progress, after)
        if ended.any():
            infos["final_obs"] = np.where(ended, after, -1)
            infos["_final_obs"] = ended.copy()
            for i in np.flatnonzero(ended):
                after[i] = draw_start(self.tables, self._rngs[i])
            self._steps[ended] = 0
        self._states = after
        return after.copy(), rewards, done, truncated, infos

    def _infos(
        self, hidden: np.ndarray, progress: np.ndarray, states: np.ndarray | None = None
    ) -> dict[str, Any]:
        states = self._states if states is None else states
        infos: dict[str, Any] = {"hidden": hidden, "progress": progress}
        for name, column in self.tables.watchers.items():
            infos[name] = column[states]
        return infos


def register() -> None:
    """Register the worlds with Gymnasium (`gymnasium.make("selfimprove/BoatRace-v0")`)."""
    for name, env_id in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(
                env_id,
                entry_point="selfimprove.hacking.envs:GridWorldEnv",
                kwargs={"world_name": name},
                vector_entry_point="selfimprove.hacking.envs:GridWorldVectorEnv",
            )
