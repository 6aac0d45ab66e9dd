"""Experiments: map a config's `kind` to its config model and its arms; start and resume runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfimprove import __version__
from selfimprove.collapse import (
    claims,
    fresh_data,
    gaussian,
    gmm,
    gpt,
    ngram,
    regression,
    vae,
    zipf,
)
from selfimprove.core.config import ConfigError, apply_overrides, read_yaml, validate
from selfimprove.core.engine import Arm, Engine, Progress
from selfimprove.core.records import Claim
from selfimprove.core.store import RunInfo, RunStore
from selfimprove.distill import claims as distill_claims
from selfimprove.distill import distill, lm
from selfimprove.games import alphazero
from selfimprove.games import claims as games_claims
from selfimprove.reasoning import claims as reasoning_claims
from selfimprove.reasoning import star, synthesis

ExperimentConfig = (
    gaussian.GaussianConfig
    | gmm.GmmConfig
    | regression.RegressionConfig
    | fresh_data.FreshDataConfig
    | zipf.ZipfConfig
    | ngram.NgramConfig
    | gpt.GptCollapseConfig
    | vae.VaeConfig
    | distill.ClassifierKdConfig
    | lm.LmKdConfig
    | alphazero.AlphaZeroConfig
    | star.StarConfig
    | synthesis.SynthesisConfig
)

KINDS: dict[str, type[ExperimentConfig]] = {
    "collapse.gaussian": gaussian.GaussianConfig,
    "collapse.gmm": gmm.GmmConfig,
    "collapse.regression": regression.RegressionConfig,
    "collapse.fresh_data": fresh_data.FreshDataConfig,
    "collapse.zipf": zipf.ZipfConfig,
    "collapse.ngram": ngram.NgramConfig,
    "collapse.tiny_gpt": gpt.GptCollapseConfig,
    "collapse.vae": vae.VaeConfig,
    "distill.classifier": distill.ClassifierKdConfig,
    "distill.lm": lm.LmKdConfig,
    "games.alphazero": alphazero.AlphaZeroConfig,
    "reasoning.star": star.StarConfig,
    "reasoning.synthesis": synthesis.SynthesisConfig,
}


def parse_config(data: dict[str, Any], source: str) -> ExperimentConfig:
    """Validate a config mapping; `kind` picks the experiment."""
    kind = data.get("kind")
    if kind not in KINDS:
        known = ", ".join(sorted(KINDS))
        raise ConfigError(f"{source}: kind: unknown experiment {kind!r}; known kinds: {known}")
    return validate(KINDS[kind], data, source)


def load_config(path: Path, overrides: list[str] | None = None) -> ExperimentConfig:
    data = apply_overrides(read_yaml(path), overrides or [])
    return parse_config(data, str(path))


def build_arms(config: ExperimentConfig) -> list[Arm]:
    match config:
        case gaussian.GaussianConfig():
            return gaussian.build_arms(config)
        case gmm.GmmConfig():
            return gmm.build_arms(config)
        case regression.RegressionConfig():
            return regression.build_arms(config)
        case fresh_data.FreshDataConfig():
            return fresh_data.build_arms(config)
        case zipf.ZipfConfig():
            return zipf.build_arms(config)
        case ngram.NgramConfig():
            return ngram.build_arms(config)
        case gpt.GptCollapseConfig():
            return gpt.build_arms(config)
        case vae.VaeConfig():
            return vae.build_arms(config)
        case distill.ClassifierKdConfig():
            return distill.build_arms(config)
        case lm.LmKdConfig():
            return lm.build_arms(config)
        case alphazero.AlphaZeroConfig():
            return alphazero.build_arms(config)
        case star.StarConfig():
            return star.build_arms(config)
        case synthesis.SynthesisConfig():
            return synthesis.build_arms(config)


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
    """Create a run folder for `config` and run it."""
    store = RunStore.create(
        runs_dir, config.kind, config.model_dump(mode="json"), config.seed, __version__
    )
    return _drive(config, store, progress, stop_after)


def resume_run(
    run: str | Path,
    runs_dir: Path = Path("runs"),
    progress: Progress | None = None,
    stop_after: int | None = None,
) -> RunResult:
    """Continue a stopped or crashed run from its store; finished runs return at once."""
    store = RunStore.open(run, runs_dir)
    config = parse_config(store.info().config, f"run {store.run_dir.name}")
    return _drive(config, store, progress, stop_after)


def _drive(
    config: ExperimentConfig, store: RunStore, progress: Progress | None, stop_after: int | None
) -> RunResult:
    try:
        with store.exclusive():
            engine = Engine(config, store, progress)
            status = engine.run(build_arms(config), stop_after=stop_after)
        return RunResult(store.run_dir, status)
    finally:
        store.close()


def claims_for(config: ExperimentConfig, store: RunStore) -> list[Claim]:
    """The claims this experiment tests, checked against the run's stored metrics."""
    table = {name: store.metrics(name) for name, _ in store.arms()}
    if any(not series for series in table.values()):
        return []  # an arm that never ran has nothing to check
    if isinstance(config, star.StarConfig):  # its time claim reads the compute minutes
        minutes = {name: store.compute_minutes(name, cpu=True) for name in table}
        if not all(minutes.values()):  # a run from before CPU time was recorded: wall time
            minutes = {name: store.compute_minutes(name) for name in table}
        return reasoning_claims.star_claims(config, table, minutes) + guard_claims(config, store)
    return _study_claims(config, table) + guard_claims(config, store)


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


def _study_claims(config: ExperimentConfig, table: claims.Table) -> list[Claim]:
    match config:
        case gaussian.GaussianConfig():
            return claims.gaussian_claims(config, table)
        case gmm.GmmConfig():
            return claims.gmm_claims(config, table)
        case regression.RegressionConfig():
            return claims.regression_claims(config, table)
        case fresh_data.FreshDataConfig():
            return claims.fresh_data_claims(config, table)
        case zipf.ZipfConfig():
            return claims.zipf_claims(config, table)
        case ngram.NgramConfig():
            return claims.text_claims(config.arms, table, "nats per word")
        case gpt.GptCollapseConfig():
            return claims.text_claims(config.arms, table, "nats per character")
        case vae.VaeConfig():
            return claims.vae_claims(config, table)
        case distill.ClassifierKdConfig():
            return distill_claims.classifier_claims(config, table)
        case lm.LmKdConfig():
            return distill_claims.lm_claims(table)
        case alphazero.AlphaZeroConfig():
            return games_claims.alphazero_claims(config, table)
        case star.StarConfig():
            return reasoning_claims.star_claims(config, table)
        case synthesis.SynthesisConfig():
            return reasoning_claims.synthesis_claims(table)


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
        snapshot = store.load_snapshot(chosen, store.last_generation(chosen) if at is None else at)
    finally:
        store.close()
    if snapshot is None:
        when = "yet" if at is None else f"at or before generation {at} (older ones are pruned)"
        raise ConfigError(f"run {info.id} has no saved generation {when}")
    return SavedState(info, chosen, *snapshot)


_EXPORTERS: dict[str, Callable[[Any], list[dict[str, object]]]] = {
    "reasoning.star": star.export_records,
    "reasoning.synthesis": synthesis.export_records,
}


def export_kept(
    run: str | Path, runs_dir: Path, arm: str | None, out: Path
) -> tuple[str, int, int]:
    """Write the newest saved generation's kept data of a reasoning run as JSONL in TRL's
    prompt/completion format. Returns (arm, generation, records)."""

    def reasoning_only(info: RunInfo) -> None:
        if info.kind not in _EXPORTERS:
            raise ConfigError(
                f"run {info.id} is a {info.kind} run: only reasoning runs export kept text"
            )

    saved = newest_state(run, runs_dir, arm, reasoning_only)
    records = _EXPORTERS[saved.info.kind](saved.state.history[-1])
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    tmp.replace(out)
    return saved.arm, saved.generation, len(records)
