"""Tabular agents for the worlds, batched over seeds: Q-learning (online, and replayed over
recorded episodes for the loop's train stage), epsilon-greedy play, greedy evaluation and value
iteration with the set of reward-optimal deterministic policies.

Randomness comes from the caller's `numpy.random.Generator` as arrays of uniforms, consumed by
compiled loops (numba), so a run is reproducible and the same seed gives the same tables.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
from numba import njit

from selfimprove.hacking.worlds import Tables


@njit(cache=True)
def _choose(q: np.ndarray, eps: float, u0: float, u1: float) -> int:
    """Epsilon-greedy with uniform tie-breaks among the greedy actions."""
    n: int = q.shape[0]
    if u0 < eps:
        return min(int(u1 * n), n - 1)
    best = q[0]
    for a in range(1, n):
        best = max(best, q[a])
    count = 0
    for a in range(n):
        if q[a] == best:
            count += 1
    pick = min(int(u1 * count), count - 1)
    for a in range(n):
        if q[a] == best:
            if pick == 0:
                return a
            pick -= 1
    return n - 1


@njit(cache=True)
def _update(
    q: np.ndarray, s: int, a: int, r: float, s2: int, end: bool, alpha: float, gamma: float
) -> None:
    target = r
    if not end:
        best = q[s2, 0]
        for b in range(1, q.shape[1]):
            best = max(best, q[s2, b])
        target += gamma * best
    q[s, a] += alpha * (target - q[s, a])


@njit(cache=True)
def _q_online(
    q: np.ndarray,
    nxt: np.ndarray,
    rew: np.ndarray,
    done: np.ndarray,
    starts: np.ndarray,
    uniforms: np.ndarray,
    eps: float,
    alpha: float,
    gamma: float,
) -> None:
    seeds, episodes = starts.shape
    horizon = uniforms.shape[2]
    for k in range(seeds):
        for e in range(episodes):
            s = starts[k, e]
            for t in range(horizon):
                a = _choose(q[k, s], eps, uniforms[k, e, t, 0], uniforms[k, e, t, 1])
                end = done[s, a]
                _update(q[k], s, a, rew[s, a], nxt[s, a], end, alpha, gamma)
                s = nxt[s, a]
                if end:
                    break


@njit(cache=True)
def _play(
    q: np.ndarray,
    nxt: np.ndarray,
    done: np.ndarray,
    starts: np.ndarray,
    uniforms: np.ndarray,
    eps: float,
    states: np.ndarray,
    actions: np.ndarray,
    lengths: np.ndarray,
) -> None:
    """Epsilon-greedy episodes of fixed tables: `states [K, E, H+1]`, `actions [K, E, H]`
    (-1 after the end), `lengths [K, E]`."""
    seeds, episodes = starts.shape
    horizon = uniforms.shape[2]
    for k in range(seeds):
        for e in range(episodes):
            s = starts[k, e]
            states[k, e, 0] = s
            n = horizon
            for t in range(horizon):
                a = _choose(q[k, s], eps, uniforms[k, e, t, 0], uniforms[k, e, t, 1])
                actions[k, e, t] = a
                end = done[s, a]
                s = nxt[s, a]
                states[k, e, t + 1] = s
                if end:
                    n = t + 1
                    break
            lengths[k, e] = n


@njit(cache=True)
def _replay(
    q: np.ndarray,
    seed: np.ndarray,
    states: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    lengths: np.ndarray,
    done: np.ndarray,
    alpha: float,
    gamma: float,
) -> None:
    """Q-learning updates along recorded episodes, in order (episode i belongs to `seed[i]`)."""
    for i in range(states.shape[0]):
        for t in range(lengths[i]):
            s, a = states[i, t], actions[i, t]
            _update(q[seed[i]], s, a, rewards[i, t], states[i, t + 1], done[s, a], alpha, gamma)


def draw_starts(tables: Tables, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Start states drawn from the world's reset distribution."""
    return rng.choice(tables.num_states, size=shape, p=tables.start).astype(np.int64)


def q_learning(
    tables: Tables,
    seeds: int,
    episodes: int,
    rng: np.random.Generator,
    eps: float = 0.1,
    alpha: float = 0.1,
    gamma: float = 0.99,
    chunk: int = 100,
) -> np.ndarray:
    """Online Q-learning from zeros, one independent learner per seed (all learners share
    each chunk's draws array, not its values); returns the tables `[seeds, states, actions]`."""
    q = np.zeros((seeds, tables.num_states, tables.num_actions))
    for first in range(0, episodes, chunk):
        n = min(chunk, episodes - first)
        starts = draw_starts(tables, (seeds, n), rng)
        uniforms = rng.random((seeds, n, tables.horizon, 2))
        _q_online(q, tables.next, tables.reward, tables.done, starts, uniforms, eps, alpha, gamma)
    return q


@dataclass(frozen=True)
class Episodes:
    """Recorded episodes, batched: episode i was played by learner `seed[i]`. `rewards` are
    what training sees (the observed reward, or patched by review); nothing here holds the
    hidden performance."""

    seed: np.ndarray  # int64 [N]
    states: np.ndarray  # int64 [N, H+1]
    actions: np.ndarray  # int64 [N, H], -1 after the end
    lengths: np.ndarray  # int64 [N]
    rewards: np.ndarray  # float64 [N, H]

    def __len__(self) -> int:
        return int(self.seed.shape[0])

    @classmethod
    def blank(cls, n: int, horizon: int) -> Episodes:
        """`n` episodes of length 0 to fill in (actions -1, rewards 0)."""
        return cls(
            np.zeros(n, np.int64),
            np.zeros((n, horizon + 1), np.int64),
            np.full((n, horizon), -1, np.int64),
            np.zeros(n, np.int64),
            np.zeros((n, horizon)),
        )


def play(
    tables: Tables, q: np.ndarray, episodes: int, eps: float, rng: np.random.Generator
) -> Episodes:
    """`episodes` epsilon-greedy episodes per learner of `q [K, S, A]`, learner-major."""
    seeds, horizon = q.shape[0], tables.horizon
    starts = draw_starts(tables, (seeds, episodes), rng)
    uniforms = rng.random((seeds, episodes, horizon, 2))
    states = np.zeros((seeds, episodes, horizon + 1), np.int64)
    actions = np.full((seeds, episodes, horizon), -1, np.int64)
    lengths = np.zeros((seeds, episodes), np.int64)
    _play(q, tables.next, tables.done, starts, uniforms, eps, states, actions, lengths)
    n = seeds * episodes
    flat_states, flat_actions = states.reshape(n, horizon + 1), actions.reshape(n, horizon)
    rewards = per_step(tables.reward, flat_states, flat_actions)
    seed = np.repeat(np.arange(seeds, dtype=np.int64), episodes)
    return Episodes(seed, flat_states, flat_actions, lengths.reshape(n), rewards)


def replay(
    tables: Tables, q: np.ndarray, episodes: Episodes, alpha: float, gamma: float, epochs: int = 1
) -> np.ndarray:
    """New tables: `q` updated by Q-learning along the episodes (`epochs` passes); `q` itself
    is not changed."""
    out = q.copy()
    for _ in range(epochs):
        _replay(
            out,
            episodes.seed,
            episodes.states,
            episodes.actions,
            episodes.rewards,
            episodes.lengths,
            tables.done,
            alpha,
            gamma,
        )
    return out


def per_step(table: np.ndarray, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """One of the world's `[S, A]` tables (reward, hidden, fault, ...) read along recorded
    episodes: `[N, H]`, zero after each episode's end (action -1)."""
    steps = table[states[:, :-1], np.maximum(actions, 0)]
    return np.where(actions >= 0, steps, np.zeros((), steps.dtype))


def greedy(q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Greedy actions `[..., S]` of tables `[..., S, A]`, ties broken uniformly at random.

    Ties are exact and common: in a deterministic world two optimal actions converge to the
    same float (racing and oscillating both earn 0.5 a step in the boat race), so the lowest
    index would pick one behaviour for every learner."""
    best = q == q.max(axis=-1, keepdims=True)
    keys = np.where(best, rng.random(q.shape), -1.0)
    return np.asarray(np.argmax(keys, axis=-1))


@dataclass(frozen=True)
class Rollout:
    """A deterministic policy's episode from one start state."""

    states: list[int]
    actions: list[int]
    observed: float
    hidden: float
    progress: int
    cycle: tuple[int, int]
    """(first step of the repeating cycle, its length); (0, 0) if the episode ended first."""

    @property
    def oscillates(self) -> bool:
        """Caught in a cycle of at most 2 states (back and forth over one tile)."""
        return 0 < self.cycle[1] <= 2


def run_policy(tables: Tables, policy: np.ndarray, start: int) -> Rollout:
    """Play a deterministic policy `[S]` for the horizon."""
    s, observed, hidden, progress = start, 0.0, 0.0, 0
    states, actions, seen = [s], [], {s: 0}
    cycle = (0, 0)
    for t in range(tables.horizon):
        a = int(policy[s])
        actions.append(a)
        observed += tables.reward[s, a]
        hidden += tables.hidden[s, a]
        progress += int(tables.progress[s, a])
        end = bool(tables.done[s, a])
        s = int(tables.next[s, a])
        states.append(s)
        if end:
            break
        if cycle == (0, 0) and s in seen:
            cycle = (seen[s], t + 1 - seen[s])
        seen.setdefault(s, t + 1)
    return Rollout(states, actions, float(observed), float(hidden), progress, cycle)


def value_iteration(tables: Tables, gamma: float = 0.99, tol: float = 1e-12) -> np.ndarray:
    """Q* `[S, A]` of the discounted world (no time in the state, as the learners see it)."""
    q = np.zeros((tables.num_states, tables.num_actions))
    cont = ~tables.done
    for _ in range(100_000):
        new = tables.reward + gamma * cont * q.max(axis=1)[tables.next]
        if np.max(np.abs(new - q)) < tol:
            return np.asarray(new)
        q = new
    return q


def optimal_policies(tables: Tables, gamma: float = 0.99, tol: float = 1e-6) -> list[np.ndarray]:
    """Every reward-optimal deterministic policy (each state: any action within `tol` of the
    best), enumerated."""
    q = value_iteration(tables, gamma)
    choices = [np.flatnonzero(row >= row.max() - tol) for row in q]
    return [np.array(p) for p in itertools.product(*choices)]


@dataclass(frozen=True)
class References:
    """What the world's own optima earn from its first (unwatched) start."""

    best_observed: float
    """The reward-optimal policies' best observed return (what gaming reaches)."""
    intended_observed: float
    intended_hidden: float
    """The intended behaviour's (the policy optimal for the hidden performance) observed return
    and hidden performance: racing, or the long way round the punishment."""


def references(tables: Tables, gamma: float = 0.99) -> References:
    start = int(tables.starts()[0])
    best = max(run_policy(tables, p, start).observed for p in optimal_policies(tables, gamma))
    intended = value_iteration(replace(tables, reward=tables.hidden), gamma).argmax(axis=1)
    honest = run_policy(tables, intended, start)
    return References(best, honest.observed, honest.hidden)
