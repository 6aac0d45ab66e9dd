"""The generation loop: generate -> verify (-> revise -> verify) -> curate -> train -> evaluate
-> gate -> record.

Generation 0 is `initialize` (a model trained on real data). Each later generation draws from
its own named streams (`seeding.stage_rng`), so the loop is a pure function of the config:
resuming loads the newest snapshot at or before the last committed generation, replays any
generation after it (checking that the replay reproduces the stored metrics exactly), and
continues. An arm is one variant of the loop (one data policy, say); a run holds several
arms side by side, run one after the other.

The engine, not the stages, stamps provenance: what `generate` (or `revise`) returns is
paired with `verify`'s verdicts and named after the incumbent that really made it
(`generation-N` of the arm, N the generation that model was accepted in), so provenance
stays true after rollbacks and rejections.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, Literal, TypeVar

from selfimprove.core.alarms import Trip, check_alarms
from selfimprove.core.config import ConfigError, LoopConfig, ReviewConfig
from selfimprove.core.cpu import cpu_seconds
from selfimprove.core.gates import Gate, Proposal
from selfimprove.core.provenance import count_provenance, origin, stamp
from selfimprove.core.records import (
    Action,
    Decision,
    Evaluation,
    Event,
    GenerationRecord,
    Metrics,
    Provenance,
)
from selfimprove.core.review import Review, ReviewPlace
from selfimprove.core.seeding import stage_rng
from selfimprove.core.snapshot import SnapshotError, TensorCodec
from selfimprove.core.stages import (
    Curate,
    Evaluate,
    Generate,
    Initialize,
    Revise,
    Train,
    Verify,
)
from selfimprove.core.store import RunStore

M = TypeVar("M")
S = TypeVar("S")
K = TypeVar("K")


@dataclass(frozen=True)
class ArmProgress:
    """Where one arm stands: sent when it starts (or resumes), after each committed
    generation, and when it ends."""

    run: str
    arm: str
    generation: int
    total: int
    status: str  # running, finished, or halted (a guard stopped the arm early)


Progress = Callable[[ArmProgress], None]


class NondeterminismError(RuntimeError):
    """A replayed generation did not reproduce the metrics stored for it."""


def no_summary(kept: object) -> Metrics:
    del kept
    return {}


@dataclass(frozen=True)
class Pipeline(Generic[M, S, K]):
    """The stages of one loop, wired by a domain's method file."""

    initialize: Initialize[M, K]
    generate: Generate[M, S]
    verify: Verify[S]
    curate: Curate[K]
    train: Train[M, K]
    evaluate: Evaluate[M]
    gate: Gate
    """Every loop names its gate (`core/gates.py`), even one that accepts every candidate."""
    revise: Revise[M] | None = None
    """New attempts for samples that failed (STaR's rationalization); None: no revisions."""
    max_revisions: int = 1
    """Rounds of `revise -> verify` per generation (each round sees every stamped sample)."""
    history_window: int | None = None
    """History holds generation 0's kept data and this many most recent kept (None: all; 0
    keeps the newest too, as 1 does: curate always sees what was kept last)."""
    summarize: Callable[[K], Metrics] = no_summary
    """Metrics of the kept data itself (kept fraction, ...), stored beside `evaluate`'s."""
    review: Review | None = None
    """A review gate between verify and curate (`oversight/`): people decide what is trained
    on; it may make the generation wait for them, or halt the arm."""


@dataclass(frozen=True)
class Arm:
    name: str
    pipeline: Pipeline[Any, Any, Any]
    review: ReviewConfig | Literal["recipe"] | None = "recipe"
    """The review gate this arm gets when the recipe has a `review:` section: that section
    (default), the arm's own settings (one arm of a review-budget sweep), or None (reviewed
    by nobody)."""


@dataclass(frozen=True)
class LoopState(Generic[M, K]):
    """Everything that outlives a generation; a snapshot holds exactly this (as JSON and
    arrays, `core/snapshot.py`)."""

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
    codecs: Sequence[TensorCodec] = ()
    """How the models' tensors enter snapshots (core imports no torch)."""
    on_commit: Callable[[GenerationRecord], None] | None = None
    """Told each generation once the store has committed it, never a replayed one
    (experiment tracking, `core/tracking.py`)."""

    def run(self, arms: list[Arm], stop_after: int | None = None) -> str:
        """Run (or resume) every arm; returns the run's status: finished, stopped, or waiting
        (a gate waits for decisions made outside the run).

        `stop_after` stops the run once an arm has committed that generation, as a crash
        would, so tests can compare an interrupted-then-resumed run with a whole one.
        """
        self.store.set_status("running")  # a resumed run said stopped (or waiting) until now
        self.store.register_arms([arm.name for arm in arms])
        statuses = dict(self.store.arms())
        for arm in arms:
            if statuses[arm.name] in ("finished", "halted"):
                continue
            self.store.set_arm_status(arm.name, "running")
            status = self._run_arm(arm, stop_after)
            self.store.set_arm_status(arm.name, status)
            if status in ("stopped", "waiting"):
                self.store.set_status(status)
                return status
        self.store.set_status("finished")
        return "finished"

    def _run_arm(self, arm: Arm, stop_after: int | None) -> str:
        state = self._restore(arm)
        self._tell(arm, state, "running")
        while not state.halted and state.generation < self.loop.generations:
            if stop_after is not None and state.generation >= stop_after:
                return "stopped"
            state, record = self._step(arm, state)
            if record.decision.action == "wait":
                self.store.log_event(
                    Event("wait", record.decision.reason, arm.name, record.generation)
                )
                return "waiting"
            self._commit(record)
            self._maybe_snapshot(arm, state)
            self._tell(arm, state, "running")
        status = "halted" if state.halted else "finished"
        self._tell(arm, state, status)
        return status

    def _commit(self, record: GenerationRecord) -> None:
        self.store.commit_generation(record)
        if self.on_commit is not None:
            self.on_commit(record)

    def _tell(self, arm: Arm, state: LoopState[Any, Any], status: str) -> None:
        if self.progress is not None:
            run = self.store.run_dir.name
            total = self.loop.generations
            self.progress(ArmProgress(run, arm.name, state.generation, total, status))

    # -- one generation -------------------------------------------------------------------

    def _initialize(self, arm: Arm) -> tuple[LoopState[Any, Any], GenerationRecord]:
        seed, pipeline = self.loop.seed, arm.pipeline
        started, cpu_started = time.perf_counter(), cpu_seconds()
        model, kept = pipeline.initialize(stage_rng(seed, 0, "initialize"))
        evaluated, exhibits = _unpack(pipeline.evaluate(model, 0, stage_rng(seed, 0, "evaluate")))
        metrics = pipeline.summarize(kept) | evaluated
        watched = {f"alarms: unknown metric {a.metric!r}": a.metric for a in self.loop.alarms}
        if self.loop.gate.metric is not None:
            watched[f"gate.metric: unknown metric {self.loop.gate.metric!r}"] = (
                self.loop.gate.metric
            )
        missing = sorted(problem for problem, key in watched.items() if key not in metrics)
        if missing:
            known = ", ".join(sorted(metrics))
            raise ConfigError(f"{missing[0]}; this experiment reports: {known}")
        gated = self.loop.gate.metric
        if gated is not None and not math.isfinite(metrics[gated]):
            raise ConfigError(
                f"gate.metric: {gated} is {metrics[gated]} at generation 0, so the gate could "
                "never compare (is its validation set empty?)"
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
            arm.name, 0, metrics, decision, count_provenance(kept), events, seconds, cpu, exhibits
        )

    def _step(
        self, arm: Arm, state: LoopState[Any, Any]
    ) -> tuple[LoopState[Any, Any], GenerationRecord]:
        g, seed, pipeline = state.generation + 1, self.loop.seed, arm.pipeline
        started, cpu_started = time.perf_counter(), cpu_seconds()
        made = origin(arm.name, g, state.incumbent_generation)
        scored = generate_and_verify(pipeline, state.incumbent, made, seed)
        reviewed: Metrics = {}
        if pipeline.review is not None:
            place = ReviewPlace(self.store.run_dir, arm.name, g)
            outcome = pipeline.review(scored, place, stage_rng(seed, g, "review"))
            if outcome.action != "continue":
                action: Action = "wait" if outcome.action == "wait" else "halt"
                record = GenerationRecord(
                    arm.name,
                    g,
                    outcome.metrics,
                    Decision(action, outcome.reason),
                    (),
                    (Event(action, outcome.reason, arm.name, g),) if action == "halt" else (),
                    seconds=time.perf_counter() - started,
                    cpu_seconds=cpu_seconds() - cpu_started,
                )
                halted = replace(state, generation=g, halted=True)
                return (state if action == "wait" else halted), record
            scored, reviewed = outcome.scored, outcome.metrics
        kept = pipeline.curate(scored, state.history, g, stage_rng(seed, g, "curate"))
        candidate = pipeline.train(state.incumbent, kept, stage_rng(seed, g, "train"))
        evaluated, exhibits = _unpack(
            pipeline.evaluate(candidate, g, stage_rng(seed, g, "evaluate"))
        )
        metrics = reviewed | pipeline.summarize(kept) | evaluated
        trips = check_alarms(self.loop.alarms, metrics)
        proposal = Proposal(arm.name, g, metrics, state.metrics, state.incumbent_generation, kept)
        decision = self._decide(trips, pipeline.gate, proposal, state)
        events = [Event("alarm", trip.describe(), arm.name, g) for trip in trips]
        if not decision.accepted:
            events.append(Event(decision.action, decision.reason, arm.name, g))
        record = GenerationRecord(
            arm.name,
            g,
            metrics,
            decision,
            count_provenance(kept),
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
            case "wait":  # nothing is committed; resume asks the gate again
                new_state = state
        return new_state, record

    def _decide(
        self, trips: list[Trip], gate: Gate, proposal: Proposal, state: LoopState[Any, Any]
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
        return gate(proposal)

    # -- snapshots and resume -------------------------------------------------------------

    def _maybe_snapshot(self, arm: Arm, state: LoopState[Any, Any]) -> None:
        every = self.loop.checkpoint_every
        last = state.halted or state.generation == self.loop.generations
        if every and (state.generation % every == 0 or last):
            self.store.save_snapshot(arm.name, state.generation, state, self.codecs)

    def _restore(self, arm: Arm) -> LoopState[Any, Any]:
        """The state after the last committed generation, replaying what no snapshot holds."""
        last = self.store.last_generation(arm.name)
        snapshot = self.store.load_snapshot(arm.name, last, self.codecs) if last >= 0 else None
        stored = self.store.metrics(arm.name) if last >= 0 else {}
        decisions = self.store.decisions(arm.name) if last >= 0 else {}
        if snapshot is not None:
            state: LoopState[Any, Any] = snapshot[1]
            if not isinstance(state, LoopState):
                raise SnapshotError(
                    f"run {self.store.run_dir.name}, arm {arm.name!r}: the snapshot of "
                    f"generation {snapshot[0]} holds no loop state"
                )
        else:
            state, record = self._initialize(arm)
            if last < 0:
                self._commit(record)
                self._maybe_snapshot(arm, state)
            else:
                _check_replay(arm.name, 0, record.metrics, stored[0])
        while state.generation < last and not state.halted:
            state, record = self._step(arm, state)
            _check_replay(arm.name, state.generation, record.metrics, stored[state.generation])
            action = decisions[state.generation][0]
            if record.decision.action != action:
                raise NondeterminismError(
                    f"arm {arm.name!r}, generation {state.generation}: replay decided "
                    f"{record.decision.action}, stored {action}"
                )
        return state


def generate_and_verify(
    pipeline: Pipeline[Any, Any, Any], incumbent: Any, made: Provenance, seed: int
) -> Any:
    """One generation's samples from `incumbent`, verified and stamped with `made` (the
    engine's provenance for what the incumbent makes), then any rounds of revisions, each
    verified and stamped with its revision number."""
    g = made.generation
    samples = pipeline.generate(incumbent, g, stage_rng(seed, g, "generate"))
    scored = stamp(samples, pipeline.verify(samples, stage_rng(seed, g, "verify")), made)
    if pipeline.revise is None:
        return scored
    if not isinstance(scored, tuple):
        raise TypeError("a pipeline with revise needs generate to return a sequence of samples")
    for revision in range(1, pipeline.max_revisions + 1):
        rng = stage_rng(seed, g, f"revise/{revision}")
        revised = pipeline.revise(incumbent, scored, g, rng)
        if not revised:
            break
        verdicts = pipeline.verify(revised, stage_rng(seed, g, f"verify/revision-{revision}"))
        scored = (*scored, *stamp(revised, verdicts, replace(made, revision=revision)))
    return scored


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
