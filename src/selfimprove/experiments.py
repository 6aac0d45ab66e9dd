"""Experiments: every loop's `Experiment` record in one tuple, and starting and resuming runs.

Adding a loop is one method file with its `EXPERIMENT` record plus one line in `EXPERIMENTS`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from selfimprove import __version__
from selfimprove.collapse import (
    fresh_data,
    gaussian,
    gmm,
    gpt,
    ngram,
    pretrained,
    regression,
    vae,
    zipf,
)
from selfimprove.constitutional import rl_cai, sl_cai
from selfimprove.core.config import ConfigError, LoopConfig, apply_overrides, read_yaml, validate
from selfimprove.core.engine import Arm, Engine, LoopState, Progress
from selfimprove.core.executors import executor_of
from selfimprove.core.experiment import Experiment, Measured
from selfimprove.core.memory import check_memory
from selfimprove.core.names import did_you_mean
from selfimprove.core.records import Claim
from selfimprove.core.snapshot import SnapshotError, TensorCodec
from selfimprove.core.store import RunInfo, RunStore
from selfimprove.core.tracking import Tracking, open_tracking
from selfimprove.distill import distill, lm
from selfimprove.failures import facts, forgetting, labelling, shift, urn
from selfimprove.games import alphazero
from selfimprove.hacking import hacking
from selfimprove.models.tensors import TORCH_TENSORS
from selfimprove.oversight.stage import ReviewStage
from selfimprove.reasoning import star, synthesis
from selfimprove.recipes import recipe_path

EXPERIMENTS: tuple[Experiment[Any], ...] = (
    gaussian.EXPERIMENT,
    gmm.EXPERIMENT,
    regression.EXPERIMENT,
    fresh_data.EXPERIMENT,
    zipf.EXPERIMENT,
    ngram.EXPERIMENT,
    gpt.EXPERIMENT,
    vae.EXPERIMENT,
    pretrained.EXPERIMENT,
    distill.EXPERIMENT,
    lm.EXPERIMENT,
    alphazero.EXPERIMENT,
    star.EXPERIMENT,
    synthesis.EXPERIMENT,
    hacking.EXPERIMENT,
    urn.EXPERIMENT,
    labelling.EXPERIMENT,
    shift.EXPERIMENT,
    forgetting.EXPERIMENT,
    facts.EXPERIMENT,
    sl_cai.EXPERIMENT,
    rl_cai.EXPERIMENT,
)
KINDS: dict[str, Experiment[Any]] = {e.kind: e for e in EXPERIMENTS}
CODECS: tuple[TensorCodec, ...] = (TORCH_TENSORS,)
"""How tensors enter snapshots (core imports no torch)."""

ExperimentConfig = LoopConfig
"""Any experiment's config (its `kind` says which)."""


def experiment_of(kind: object, source: str) -> Experiment[Any]:
    if not isinstance(kind, str) or kind not in KINDS:
        known = ", ".join(sorted(KINDS))
        hint = did_you_mean(str(kind), KINDS)
        raise ConfigError(
            f"{source}: kind: unknown experiment {kind!r}{hint} (known kinds: {known})"
        )
    return KINDS[kind]


def parse_config(data: dict[str, Any], source: str) -> ExperimentConfig:
    """Validate a config mapping; `kind` picks the experiment."""
    config: LoopConfig = validate(experiment_of(data.get("kind"), source).config, data, source)
    return config


def load_config(recipe: Path | str, overrides: list[str] | None = None) -> ExperimentConfig:
    """A recipe's config, from a file or a shipped recipe's name (`collapse/gaussian`)."""
    try:
        path = recipe_path(recipe)
    except LookupError as error:
        raise ConfigError(str(error.args[0])) from None
    data = apply_overrides(read_yaml(path), overrides or [])
    return parse_config(data, str(path))


def build_arms(config: ExperimentConfig) -> list[Arm]:
    """The run's arms, after checking that its sizes fit this machine's memory; with a review
    gate when the recipe asks for one (`oversight/`)."""
    check_memory(config)
    executor_of(config.executor)  # a cluster that cannot be joined is refused here, first
    experiment = experiment_of(config.kind, "config")
    if config.review is not None and experiment.review is None:
        reviewable = ", ".join(e.kind for e in EXPERIMENTS if e.review is not None)
        raise ConfigError(
            f"review: a {config.kind} run keeps nothing a reviewer can read "
            f"(review gates work on {reviewable})"
        )
    try:
        arms = experiment.build_arms(config)
    except (ValueError, ArithmeticError) as error:  # sizes each field allows alone but not together
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{config.kind}: these settings cannot be built: {error}") from None
    names = [arm.name for arm in arms]
    if len(set(names)) != len(names):  # the store, the report and the claims key arms by name
        raise ConfigError(f"arms: each arm needs its own name, got {names}")
    if config.review is None or experiment.review is None:
        return arms
    needs_truth = config.review.reviewers or config.review.gold_share > 0
    if needs_truth and experiment.review.truth is None:
        raise ConfigError(
            f"review: a {config.kind} run has no check a simulated reviewer or a gold item "
            "could know; people review it (drop review.reviewers and review.gold_share)"
        )
    hooks, reviewed, controls = experiment.review, [], []
    for arm in arms:
        review = config.review if arm.review == "recipe" else arm.review
        if review is None:
            reviewed.append(arm)
            continue
        stage = ReviewStage(review, hooks)
        reviewed.append(Arm(arm.name, replace(arm.pipeline, review=stage)))
        controls.append(Arm(f"{arm.name}-unreviewed", arm.pipeline, review=None))
    return controls + reviewed if config.review.control else reviewed


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    status: str

    @property
    def run_id(self) -> str:
        return self.run_dir.name


def start_run(
    config: ExperimentConfig,
    runs_dir: Path,
    progress: Progress | None = None,
    stop_after: int | None = None,
) -> RunResult:
    """Create a run folder for `config` and run it. The arms are built first, so a config
    that cannot run (a refused sandbox, a size over the machine's memory) leaves no folder."""
    arms = build_arms(config)
    store = RunStore.create(
        runs_dir, config.kind, config.model_dump(mode="json"), config.seed, __version__
    )
    try:
        return _drive(config, store, lambda: arms, progress, stop_after)
    except ConfigError:  # found at generation 0 (an alarm on a metric the loop never reports)
        _remove_if_empty(store.run_dir)
        raise


def _remove_if_empty(run_dir: Path) -> None:
    """Remove a run that a config error stopped before it committed any generation (a later
    arm's error leaves the arms that finished, and their folder, as they are)."""
    store = RunStore.open(run_dir)
    try:
        committed = any(store.metrics(name) for name, _ in store.arms())
    finally:
        store.close()
    if not committed:
        shutil.rmtree(run_dir, ignore_errors=True)


def resume_run(
    run: str | Path,
    runs_dir: Path = Path("runs"),
    progress: Progress | None = None,
    stop_after: int | None = None,
    tracking: bool = True,
) -> RunResult:
    """Continue a stopped or crashed run from its store; finished runs return at once (a
    tracker only catches up). `tracking=False` leaves the recipe's tracker out this time
    (its server is gone); a later resume with it sends what it missed."""
    store = RunStore.open(run, runs_dir)
    config = parse_config(store.info().config, f"run {store.run_dir.name}")
    if not tracking:
        config = config.model_copy(update={"tracking": None})
    return _drive(config, store, lambda: build_arms(config), progress, stop_after)


def _drive(
    config: ExperimentConfig,
    store: RunStore,
    arms: Callable[[], list[Arm]],
    progress: Progress | None,
    stop_after: int | None,
) -> RunResult:
    try:
        with store.exclusive():
            store.remove_leftovers()  # of writes a crash or kill interrupted
            built = arms()
            tracking = None
            if config.tracking is not None:  # opened and caught up now: a failure is one line
                names = [arm.name for arm in built]
                tracking = open_tracking(config.tracking, store, names, __version__)
            engine = Engine(config, store, progress, CODECS, on_commit=tracking)
            status = _run_tracked(engine, built, stop_after, tracking)
        return RunResult(store.run_dir, status)
    finally:
        store.close()


def _run_tracked(
    engine: Engine, arms: list[Arm], stop_after: int | None, tracking: Tracking | None
) -> str:
    """Run the engine; the tracker, if any, is told how the run ended, failures included."""
    try:
        status = engine.run(arms, stop_after=stop_after)
    except BaseException as error:
        if tracking is not None:
            tracking.finish("stopped" if isinstance(error, KeyboardInterrupt) else "failed")
        raise
    if tracking is not None:
        tracking.finish(status)
    return status


def measure(store: RunStore) -> Measured:
    """What a run measured: metrics, compute minutes and decisions of every arm."""
    arms = [name for name, _ in store.arms()]
    minutes = {name: store.compute_minutes(name, cpu=True) for name in arms}
    if not all(minutes.values()):  # a run from before CPU time was recorded: wall time
        minutes = {name: store.compute_minutes(name) for name in arms}
    return Measured(
        {name: store.metrics(name) for name in arms},
        minutes,
        {name: store.decisions(name) for name in arms},
    )


def claims_for(config: ExperimentConfig, store: RunStore) -> list[Claim]:
    """The claims this experiment tests, checked against what the run measured."""
    measured = measure(store)
    if any(not series for series in measured.metrics.values()):
        return []  # an arm that never ran has nothing to check
    claims = experiment_of(config.kind, "config").claims(config, measured)
    return claims + guard_claims(config, store)


def guard_claims(config: ExperimentConfig, store: RunStore) -> list[Claim]:
    """For each rollback / halt alarm: no accepted generation crossed it; how often it fired."""
    found = []
    for alarm in (a for a in config.alarms if a.action != "warn"):
        for arm, _ in store.arms():
            series, decisions = store.metrics(arm), store.decisions(arm)
            accepted = [g for g, (action, _) in decisions.items() if action == "accept"]
            fired = [g for g, (action, _) in decisions.items() if action in ("rollback", "halt")]
            values = [series[g][alarm.metric] for g in accepted if alarm.metric in series[g]]
            inside = all(
                (alarm.below is None or v >= alarm.below)
                and (alarm.above is None or v <= alarm.above)
                for v in values
            )
            bound = (
                f"below {alarm.below:g}" if alarm.below is not None else f"above {alarm.above:g}"
            )
            text = f"{arm}: guard ({alarm.action} when {alarm.metric} {bound}): no accepted model crosses it"
            measured = f"fired in {len(fired)} of {len(decisions) - 1} generations"
            found.append(Claim(text, measured, inside))
    return found


@dataclass(frozen=True)
class SavedState:
    info: RunInfo
    arm: str
    generation: int
    state: Any  # the engine's LoopState of that generation


def newest_state(
    run: str | Path,
    runs_dir: Path,
    arm: str | None = None,
    check: Callable[[RunInfo], None] | None = None,
    at: int | None = None,
) -> SavedState:
    """The newest saved generation of one arm (default: the first), at or before generation
    `at` if given. `check` may refuse the run (raising `ConfigError`) before any snapshot is
    read."""
    store = RunStore.open(run, runs_dir)
    try:
        info = store.info()
        if check is not None:
            check(info)
        arms = [name for name, _ in store.arms()]
        chosen = arm or arms[0]
        if chosen not in arms:
            raise ConfigError(f"run {info.id} has no arm {chosen!r}; its arms: {', '.join(arms)}")
        last = store.last_generation(chosen) if at is None else at
        snapshot = store.load_snapshot(chosen, last, CODECS)
    finally:
        store.close()
    if snapshot is None:
        when = "yet" if at is None else f"at or before generation {at} (older ones are pruned)"
        raise ConfigError(f"run {info.id} has no saved generation {when}")
    if not isinstance(snapshot[1], LoopState):
        raise SnapshotError(
            f"run {info.id}: the snapshot of generation {snapshot[0]} holds no loop state"
        )
    return SavedState(info, chosen, *snapshot)


def export_kept(
    run: str | Path, runs_dir: Path, arm: str | None, out: Path
) -> tuple[str, int, int]:
    """Write the data the newest saved incumbent was trained on, for a run that keeps text, as
    JSONL in TRL's prompt/completion format with provenance columns. Returns (arm, the
    generation that data was kept in, records)."""

    def keeps_text(info: RunInfo) -> None:
        if KINDS.get(info.kind) is None or KINDS[info.kind].export is None:
            exporting = ", ".join(e.kind for e in EXPERIMENTS if e.export is not None)
            raise ConfigError(
                f"run {info.id} is a {info.kind} run: only {exporting} runs export kept text"
            )

    saved = newest_state(run, runs_dir, arm, keeps_text)
    export = KINDS[saved.info.kind].export
    assert export is not None
    records = export(saved.state.history[-1])  # what the incumbent was trained on
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    tmp.replace(out)
    return saved.arm, saved.state.incumbent_generation, len(records)
