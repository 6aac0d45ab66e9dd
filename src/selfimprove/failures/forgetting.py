"""Catastrophic forgetting as a loop: a classifier that knows an old task's intents is
fine-tuned, generation after generation, on a new task's requests only, and loses the old
task; replaying a share of stored old-task requests keeps it.

| stage | what it does |
|---|---|
| initialize | per seed, `old_examples` real users' requests for the old task's intents (`old_task`), with their true intents; a classifier fitted from zero over every intent of both tasks |
| generate | `new_examples` fresh requests of the new task's users (the rest of the intents), true intents attached: real data, named so |
| verify | nothing to check (`unverified`): the labels are the users' own |
| curate | the new requests, plus a `replay_share` of the training set drawn from generation 0's stored old-task requests |
| train | the incumbent fine-tuned on what was kept (warm start) |
| evaluate | accuracy on held-out old-task and new-task requests; the share of logged mixed traffic routed to an old-task intent |

One softmax head covers both tasks (class-incremental learning): fine-tuning on new intents
alone pushes every old intent's score down, so forgetting needs no new words to overwrite.
The monitor `monitor/old_task_share` needs no labels: an operator knows roughly what share of
traffic the old features get (`traffic_old_share`) and can watch how much the model routes
to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from selfimprove.core.config import ConfigModel
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.experiment import Experiment, Measured, carried, column, newest, trace
from selfimprove.core.gates import build_gate
from selfimprove.core.records import Claim, ClaimPlot, Metrics, Sample
from selfimprove.core.seeding import stage_rng
from selfimprove.core.stages import unverified
from selfimprove.failures import commands
from selfimprove.failures.classifier import Classifier, blank, probs
from selfimprove.failures.monitoring import Damage, monitor_claims
from selfimprove.failures.requests import (
    NO_GATE,
    PER_REQUEST,
    FineTune,
    Kept,
    Probe,
    Requests,
    Setup,
    Traffic,
    UsersLoopConfig,
    fit_kept,
    labelled,
    real_sample,
    spread,
    user_requests,
)

OLD_TASK = (
    "lights_on",
    "lights_off",
    "set_temperature",
    "lock_door",
    "play_music",
    "stop_music",
    "volume_up",
    "volume_down",
)


class ReplayArm(ConfigModel):
    """One arm: how much of each training set is replayed old-task requests."""

    name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.+-]{1,40}$", description="arm name (default from replay)"
    )
    replay_share: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="share of each later training set drawn from generation 0's stored "
        "old-task requests (0: no replay)",
    )

    def num_replay(self, new_examples: int) -> int:
        """Replayed old-task requests per seed beside `new_examples` new ones, so that they
        are `replay_share` of each later training set."""
        return round(new_examples * self.replay_share / (1 - self.replay_share))

    def label(self) -> str:
        return self.name or (f"replay-{self.replay_share:g}" if self.replay_share else "no-replay")


class ForgettingConfig(UsersLoopConfig):
    """Catastrophic forgetting: fine-tuning on a new task alone loses the old; replay keeps it."""

    kind: Literal["failures.forgetting"] = Field(
        "failures.forgetting", description="which experiment this recipe runs"
    )
    old_task: tuple[str, ...] = Field(
        OLD_TASK, min_length=1, description="the old task's intents; the new task is the rest"
    )
    old_examples: int = Field(
        1000, ge=10, le=100_000, description="generation 0's old-task requests per seed"
    )
    new_examples: int = Field(
        150, ge=1, le=100_000, description="new-task requests per seed in each generation"
    )
    test_examples: int = Field(
        1000, ge=10, le=100_000, description="held-out requests per task's test set"
    )
    traffic_examples: int = Field(
        1000, ge=10, le=100_000, description="logged, unlabelled requests the monitor reads"
    )
    traffic_old_share: float = Field(
        0.5, ge=0, le=1, description="share of logged traffic asking for old-task intents"
    )
    arms: tuple[ReplayArm, ...] = Field(
        (ReplayArm(),), min_length=1, description="replay shares run side by side"
    )

    @model_validator(mode="after")
    def _tasks_and_arms(self) -> ForgettingConfig:
        unknown = sorted(set(self.old_task) - set(commands.NAMES))
        if unknown:
            raise ValueError(f"old_task: unknown intents {unknown}; known: {commands.NAMES}")
        if len(set(self.old_task)) == commands.NUM_INTENTS:
            raise ValueError("old_task: leave some intents for the new task")
        short = [  # replay draws from generation 0's stored requests without repeats
            f"{arm.label()} ({arm.num_replay(self.new_examples)})"
            for arm in self.arms
            if arm.num_replay(self.new_examples) > self.old_examples
        ]
        if short:
            raise ValueError(
                "arms.replay_share: the old-task requests replayed per generation (new_examples "
                f"x replay_share / (1 - replay_share)) exceed old_examples ({self.old_examples}) "
                f"in {', '.join(short)}: lower replay_share or new_examples, or raise "
                "old_examples"
            )
        return self

    @property
    def old_mask(self) -> np.ndarray:
        """`[C]` which intents belong to the old task."""
        return np.isin(np.array(commands.NAMES), self.old_task)

    def memory_bytes(self) -> int:
        """The incumbent, the candidate and their copies, plus every request held with its
        hashed features (errs high: the shipped recipes measured 78 and 36 MiB above the
        interpreter, estimated 93 and 63)."""
        weights = self.num_seeds * self.train.features * commands.NUM_INTENTS * 8
        texts = self.num_seeds * (self.old_examples + 4 * self.new_examples)
        return 4 * weights + PER_REQUEST * (texts + 2 * self.test_examples + self.traffic_examples)


@dataclass(frozen=True)
class Probes:
    old: Probe  # held-out old-task requests, as users type them
    new: Probe  # held-out new-task requests
    traffic: Traffic  # logged requests of both tasks, unlabelled


def draw_probes(config: ForgettingConfig) -> Probes:
    rng = stage_rng(config.seed, 0, "setup/probes")
    old, f = config.old_mask, config.train.features
    made = []
    for mask in (old, ~old):
        intents = commands.draw_intents(config.test_examples, rng, allowed=mask, balanced=True)
        texts = user_requests(config, intents, True, rng)
        made.append(Probe.of(texts, intents, f))
    from_old = rng.random(config.traffic_examples) < config.traffic_old_share
    intents = np.where(
        from_old,
        commands.draw_intents(config.traffic_examples, rng, allowed=old, balanced=True),
        commands.draw_intents(config.traffic_examples, rng, allowed=~old, balanced=True),
    )
    texts = user_requests(config, intents, True, rng)
    return Probes(made[0], made[1], Traffic.of(texts, f))


ForgettingSetup = Setup[ForgettingConfig, ReplayArm, Probes]  # what every stage of an arm reads


def task_requests(
    config: ForgettingConfig, old: bool, num: int, rng: np.random.Generator
) -> Requests:
    """`num` real users' requests per seed for one task's intents, with their true intents."""
    mask = config.old_mask if old else ~config.old_mask
    texts, intents = [], []
    for _ in range(config.num_seeds):
        drawn = commands.draw_intents(num, rng, allowed=mask, balanced=True)
        texts.append(user_requests(config, drawn, False, rng))
        intents.append(drawn)
    return labelled(texts, intents)


@dataclass(frozen=True)
class FitOldTask:
    setup: ForgettingSetup

    def __call__(self, rng: np.random.Generator) -> tuple[Classifier, Kept]:
        c = self.setup.config
        kept = (real_sample(task_requests(c, True, c.old_examples, rng), 0, "old-task users"),)
        start = blank(c.num_seeds, c.train.features, commands.NUM_INTENTS)
        return fit_kept(start, kept, c.train, rng, c.train.initial_epochs), kept


@dataclass(frozen=True)
class NewTaskRequests:
    """Fresh requests of the new task's users (real data; the incumbent makes nothing)."""

    setup: ForgettingSetup

    def __call__(
        self, model: Classifier, generation: int, rng: np.random.Generator
    ) -> Sample[Requests]:
        del model
        c = self.setup.config
        return real_sample(
            task_requests(c, False, c.new_examples, rng), generation, "new-task users"
        )


@dataclass(frozen=True)
class Replay:
    """The new requests, plus stored old-task requests drawn anew each generation."""

    setup: ForgettingSetup

    def __call__(
        self,
        scored: Sample[Requests],
        history: Sequence[Kept],
        generation: int,
        rng: np.random.Generator,
    ) -> Kept:
        del generation
        num = self.setup.arm.num_replay(self.setup.config.new_examples)
        if not num:
            return (scored,)
        stored = history[0][0]  # generation 0 kept its old-task requests alone
        picks = [rng.choice(len(t), size=num, replace=False) for t in stored.content.texts]
        return (scored, replace(stored, content=stored.content.take(picks)))


@dataclass(frozen=True)
class MeasureTasks:
    setup: ForgettingSetup

    def __call__(self, model: Classifier, generation: int, rng: np.random.Generator) -> Metrics:
        del generation, rng  # the probes are fixed
        probes, old = self.setup.probes, self.setup.config.old_mask
        routed = np.array(
            [
                np.mean(old[probs(model, s, probes.traffic.x).argmax(1)])
                for s in range(model.num_seeds)
            ]
        )
        metrics = spread("eval/old_task_accuracy", probes.old.accuracy(model))
        metrics |= spread("eval/new_task_accuracy", probes.new.accuracy(model))
        metrics |= spread("monitor/old_task_share", routed)
        return metrics


def replayed_share(kept: Kept) -> Metrics:
    total = sum(p.content.num_samples for p in kept)
    replayed = sum(p.content.num_samples for p in kept[1:])
    return {"kept/replay_share_mean": replayed / total if total else 0.0}


def build_arms(config: ForgettingConfig) -> list[Arm]:
    probes = draw_probes(config)
    arms = []
    for arm in config.arms:
        setup = ForgettingSetup(config, arm, probes)
        pipeline: Pipeline[Classifier, Sample[Requests], Kept] = Pipeline(
            initialize=FitOldTask(setup),
            generate=NewTaskRequests(setup),
            verify=unverified,
            curate=Replay(setup),
            train=FineTune(config.train),
            evaluate=MeasureTasks(setup),
            gate=build_gate(config.gate, NO_GATE),
            # the engine keeps generation 0's kept data and the newest (0 keeps as 1 does);
            # replay reads generation 0's old-task requests alone
            history_window=0,
            summarize=replayed_share,
        )
        arms.append(Arm(arm.label(), pipeline))
    return arms


OLD = "eval/old_task_accuracy_mean"
NEW = "eval/new_task_accuracy_mean"
FORGET_DROP = 0.5
"""Forgetting is catastrophic when old-task accuracy falls by at least this (of 1)."""
HOLD = 0.1
"""Replay holds the old task when its accuracy ends within this of generation 0's."""
LEARNED = 0.85
"""The new task counts as learned at this accuracy (every arm must learn it)."""


def forgetting_claims(config: ForgettingConfig, measured: Measured) -> list[Claim]:
    claims = []
    for arm in config.arms:
        name = arm.label()
        series = carried(measured, name)
        n, last = newest(series)
        start = series[0][OLD]
        olds = trace(column(series, OLD)[:: max(1, n // 5)])
        learned = last[NEW] >= LEARNED
        if arm.replay_share == 0:
            claims.append(
                Claim(
                    f"{name}: fine-tuning on the new task alone forgets the old one: old-task "
                    f"accuracy falls by at least {FORGET_DROP:g} from generation 0 while the new "
                    f"task is learned (accuracy >= {LEARNED:g})",
                    f"old task {olds} (at {n}: {last[OLD]:.3f}); new task {last[NEW]:.3f}",
                    start - last[OLD] >= FORGET_DROP and learned,
                    ClaimPlot(OLD, (name,), (None, start - FORGET_DROP), start, "generation 0"),
                )
            )
        else:
            claims.append(
                Claim(
                    f"{name}: replaying {arm.replay_share:.0%} old-task requests holds old-task "
                    f"accuracy within {HOLD:g} of generation 0's while the new task is learned "
                    f"(accuracy >= {LEARNED:g})",
                    f"old task {olds} (at {n}: {last[OLD]:.3f}); new task {last[NEW]:.3f}",
                    start - last[OLD] <= HOLD and learned,
                    ClaimPlot(OLD, (name,), (start - HOLD, None), start, "generation 0"),
                )
            )
    failing = [a.label() for a in config.arms if a.replay_share == 0]
    cured = [a.label() for a in config.arms if a.replay_share > 0]
    damage = Damage(OLD, 0.2, higher_is_worse=False)
    return claims + monitor_claims(config.alarms, measured, failing, cured, damage)


EXPERIMENT = Experiment(ForgettingConfig, build_arms, forgetting_claims)
