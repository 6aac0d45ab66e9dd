"""The generation loop: generate -> verify -> curate -> train -> evaluate -> gate -> record.

Generation 0 is `initialize` (a model trained on real data). Each later generation draws from
its own seeded streams (`seeding.stage_rng`), so the loop is a pure function of the config:
resuming loads the newest snapshot at or before the last committed generation, replays any
generation after it (checking that the replay reproduces the stored metrics exactly), and
continues. An arm is one variant of the loop (one data policy, say); a run holds several
arms side by side, run one after the other.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from selfimprove.core.alarms import Trip, check_alarms
from selfimprove.core.config import ConfigError, LoopConfig
from selfimprove.core.cpu import cpu_seconds
from selfimprove.core.records import (
    Batch,
    Decision,
    Evaluation,
    Event,
    GenerationRecord,
    Metrics,
    Provenance,
    ProvenanceCount,
    Sample,
)
from selfimprove.core.seeding import stage_rng
from selfimprove.core.stages import (
    Curate,
    Evaluate,
    Gate,
    Generate,
    Initialize,
    Train,
    Verify,
    accept_all,
)
from selfimprove.core.store import RunStore

M = TypeVar("M")
S = TypeVar("S")
V = TypeVar("V")
K = TypeVar("K")

Progress = Callable[[str, str, int, int], None]
"""Called with (run id, arm, generation, total generations) after each committed generation."""


class NondeterminismError(RuntimeError):
    """A replayed generation did not reproduce the metrics stored for it."""


def count_provenance(kept: object) -> tuple[ProvenanceCount, ...]:
    """How many kept samples came from each provenance (batches and samples both count)."""
    items: Sequence[object] = (
        (kept,) if isinstance(kept, Batch | Sample) else kept if isinstance(kept, Sequence) else ()
    )
    counts: dict[Provenance, int] = {}
    for item in items:
        if isinstance(item, Batch):
            counts[item.provenance] = counts.get(item.provenance, 0) + item.num_samples
        elif isinstance(item, Sample):
            counts[item.provenance] = counts.get(item.provenance, 0) + 1
    return tuple(ProvenanceCount(p, n) for p, n in counts.items())


def no_summary(kept: object) -> Metrics:
    del kept
    return {}


@dataclass(frozen=True)
class Pipeline(Generic[M, S, V, K]):
    """The six stages of one loop, wired by a domain's method file."""

    initialize: Initialize[M, K]
    generate: Generate[M, S]
    verify: Verify[S, V]
    curate: Curate[V, K]
    train: Train[M, K]
    evaluate: Evaluate[M]
    gate: Gate = accept_all
    history_window: int | None = None
    """History holds generation 0's kept data and this many most recent kept (None: all)."""
    describe: Callable[[K], tuple[ProvenanceCount, ...]] = count_provenance
    summarize: Callable[[K], Metrics] = no_summary
    """Metrics of the kept data itself (kept fraction, ...), stored beside `evaluate`'s."""


@dataclass(frozen=True)
class Arm:
    name: str
    pipeline: Pipeline[Any, Any, Any, Any]


@dataclass(frozen=True)
class LoopState(Generic[M, K]):
    """Everything that outlives a generation; a snapshot pickles exactly this."""

    generation: int
    incumbent: M
    history: tuple[K, ...]
    metrics: Metrics
    incumbent_generation: int = 0
    rollbacks_in_a_row: int = 0
    halted: bool = False


@dataclass
class Engine:
    """Runs the arms of one run against its store."""

    loop: LoopConfig
    store: RunStore
    progress: Progress | None = None

    def run(self, arms: list[Arm], stop_after: int | None = None) -> str:
        """Run (or resume) every arm; returns the run's status: finished or stopped.

        `stop_after` stops the run once an arm has committed that generation, as a crash
        would, so tests can compare an interrupted-then-resumed run with a whole one.
        """
        self.store.register_arms([arm.name for arm in arms])
        statuses = dict(self.store.arms())
        for arm in arms:
            if statuses[arm.name] in ("finished", "halted"):
                continue
            self.store.set_arm_status(arm.name, "running")
            status = self._run_arm(arm, stop_after)
            self.store.set_arm_status(arm.name, status)
            if status == "stopped":
                self.store.set_status("stopped")
                return "stopped"
        self.store.set_status("finished")
        return "finished"

    def _run_arm(self, arm: Arm, stop_after: int | None) -> str:
        state = self._restore(arm)
        while not state.halted and state.generation < self.loop.generations:
            if stop_after is not None and state.generation >= stop_after:
                return "stopped"
            state, record = self._step(arm, state)
            self.store.commit_generation(record)
            self._maybe_snapshot(arm, state)
            if self.progress is not None:
                self.progress(
                    self.store.run_dir.name, arm.name, state.generation, self.loop.generations
                )
        return "halted" if state.halted else "finished"

    # -- one generation -------------------------------------------------------------------

    def _initialize(self, arm: Arm) -> tuple[LoopState[Any, Any], GenerationRecord]:
        seed, pipeline = self.loop.seed, arm.pipeline
        started, cpu_started = time.perf_counter(), cpu_seconds()
        model, kept = pipeline.initialize(stage_rng(seed, 0, "initialize"))
        evaluated, exhibits = _unpack(pipeline.evaluate(model, 0, stage_rng(seed, 0, "evaluate")))
        metrics = pipeline.summarize(kept) | evaluated
        missing = sorted({a.metric for a in self.loop.alarms} - set(metrics))
        if missing:
            known = ", ".join(sorted(metrics))
            raise ConfigError(
                f"alarms: unknown metric {missing[0]!r}; this experiment reports: {known}"
            )
        trips = check_alarms(self.loop.alarms, metrics)
        events = tuple(
            Event("alarm", f"{t.describe()} at generation 0: logged only", arm.name, 0)
            for t in trips
        )
        decision = Decision("accept", "generation 0: the initial model")
        state = LoopState(0, model, (kept,), metrics)
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
        return state, GenerationRecord(
            arm.name, 0, metrics, decision, pipeline.describe(kept), events, seconds, cpu, exhibits
        )

    def _step(
        self, arm: Arm, state: LoopState[Any, Any]
    ) -> tuple[LoopState[Any, Any], GenerationRecord]:
        g, seed, pipeline = state.generation + 1, self.loop.seed, arm.pipeline
        started, cpu_started = time.perf_counter(), cpu_seconds()
        samples = pipeline.generate(state.incumbent, g, stage_rng(seed, g, "generate"))
        scored = pipeline.verify(samples, stage_rng(seed, g, "verify"))
        kept = pipeline.curate(scored, state.history, g, stage_rng(seed, g, "curate"))
        candidate = pipeline.train(state.incumbent, kept, stage_rng(seed, g, "train"))
        evaluated, exhibits = _unpack(
            pipeline.evaluate(candidate, g, stage_rng(seed, g, "evaluate"))
        )
        metrics = pipeline.summarize(kept) | evaluated
        trips = check_alarms(self.loop.alarms, metrics)
        decision = self._decide(trips, pipeline.gate, metrics, state)
        events = [Event("alarm", trip.describe(), arm.name, g) for trip in trips]
        if not decision.accepted:
            events.append(Event(decision.action, decision.reason, arm.name, g))
        record = GenerationRecord(
            arm.name,
            g,
            metrics,
            decision,
            pipeline.describe(kept),
            tuple(events),
            seconds=time.perf_counter() - started,
            cpu_seconds=cpu_seconds() - cpu_started,
            exhibits=exhibits,
        )
        match decision.action:
            case "accept":
                history = _remember(state.history, kept, pipeline.history_window)
                new_state = LoopState(g, candidate, history, metrics, incumbent_generation=g)
            case "rollback":
                new_state = replace(
                    state, generation=g, rollbacks_in_a_row=state.rollbacks_in_a_row + 1
                )
            case "reject":
                new_state = replace(state, generation=g, rollbacks_in_a_row=0)
            case "halt":
                new_state = replace(state, generation=g, halted=True)
        return new_state, record

    def _decide(
        self, trips: list[Trip], gate: Gate, metrics: Metrics, state: LoopState[Any, Any]
    ) -> Decision:
        severe = [t for t in trips if t.alarm.action != "warn"]
        if severe and severe[0].alarm.action == "halt":
            return Decision(
                "halt",
                f"alarm {severe[0].describe()}; keeping generation {state.incumbent_generation}",
            )
        if severe:
            if state.rollbacks_in_a_row + 1 >= self.loop.max_consecutive_rollbacks:
                return Decision(
                    "halt",
                    f"alarm {severe[0].describe()} for {state.rollbacks_in_a_row + 1} generations in a row",
                )
            return Decision(
                "rollback",
                f"alarm {severe[0].describe()}; back to generation {state.incumbent_generation}",
            )
        return gate(metrics, state.metrics)

    # -- snapshots and resume -------------------------------------------------------------

    def _maybe_snapshot(self, arm: Arm, state: LoopState[Any, Any]) -> None:
        every = self.loop.checkpoint_every
        last = state.halted or state.generation == self.loop.generations
        if every and (state.generation % every == 0 or last):
            self.store.save_snapshot(arm.name, state.generation, state)

    def _restore(self, arm: Arm) -> LoopState[Any, Any]:
        """The state after the last committed generation, replaying what no snapshot holds."""
        last = self.store.last_generation(arm.name)
        snapshot = self.store.load_snapshot(arm.name, last) if last >= 0 else None
        stored = self.store.metrics(arm.name) if last >= 0 else {}
        if snapshot is not None:
            state: LoopState[Any, Any] = snapshot[1]
        else:
            state, record = self._initialize(arm)
            if last < 0:
                self.store.commit_generation(record)
                self._maybe_snapshot(arm, state)
            else:
                _check_replay(arm.name, 0, record.metrics, stored[0])
        while state.generation < last and not state.halted:
            state, record = self._step(arm, state)
            _check_replay(arm.name, state.generation, record.metrics, stored[state.generation])
        return state


def _unpack(result: Metrics | Evaluation) -> tuple[Metrics, dict[str, Any]]:
    if isinstance(result, Evaluation):
        return result.metrics, result.exhibits
    return result, {}


def _remember(history: tuple[K, ...], kept: K, window: int | None) -> tuple[K, ...]:
    if window is None:
        return (*history, kept)
    recent = history[1:][-window + 1 :] if window > 1 else ()
    return (history[0], *recent, kept)


def _check_replay(arm: str, generation: int, replayed: Metrics, stored: Metrics) -> None:
    """Every metric must replay exactly, except `timing/*` (measured wall-clock costs)."""
    for key in sorted(k for k in set(replayed) | set(stored) if not k.startswith("timing/")):
        a, b = replayed.get(key, math.nan), stored.get(key, math.nan)
        if not (a == b or (math.isnan(a) and math.isnan(b))):
            raise NondeterminismError(
                f"arm {arm!r}, generation {generation}: replay gave {key} = {a!r}, stored {b!r}"
            )
