"""Engine invariants: determinism, resume, immutability of the incumbent, alarms."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from selfimprove.collapse import gaussian
from selfimprove.core.config import ConfigError
from selfimprove.core.engine import Arm, ArmProgress, Engine, NondeterminismError
from selfimprove.core.gates import Proposal
from selfimprove.core.provenance import origin, stamp
from selfimprove.core.records import Decision
from selfimprove.core.store import RunStore
from selfimprove.experiments import (
    ExperimentConfig,
    build_arms,
    parse_config,
    resume_run,
    start_run,
)

SMALL: dict[str, Any] = {
    "kind": "collapse.gaussian",
    "generations": 12,
    "num_seeds": 16,
    "monitor_every": 4,
    "arms": [
        {"policy": {"mix": "replace"}, "samples_per_generation": 20},
        {"policy": {"mix": "accumulate"}, "samples_per_generation": 20},
        {"policy": {"mix": "mix_fixed_real", "real_fraction": 0.25}, "samples_per_generation": 20},
    ],
}


def config(**changes: Any) -> ExperimentConfig:
    return parse_config(SMALL | changes, "test")


def all_metrics(run_dir: Path) -> dict[str, dict[int, dict[str, float]]]:
    store = RunStore.open(run_dir)
    try:
        return {arm: store.metrics(arm) for arm, _ in store.arms()}
    finally:
        store.close()


def test_same_seed_same_metrics_and_another_seed_differs(tmp_path: Path) -> None:
    first = all_metrics(start_run(config(), tmp_path).run_dir)
    second = all_metrics(start_run(config(), tmp_path).run_dir)
    other = all_metrics(start_run(config(seed=1), tmp_path).run_dir)
    assert first == second
    assert first != other


@pytest.mark.parametrize("checkpoint_every", [0, 1, 5])
def test_resumed_run_equals_uninterrupted_run(tmp_path: Path, checkpoint_every: int) -> None:
    whole = start_run(config(checkpoint_every=checkpoint_every), tmp_path / "whole")
    cut = start_run(config(checkpoint_every=checkpoint_every), tmp_path / "cut", stop_after=7)
    assert cut.status == "stopped"
    assert max(all_metrics(cut.run_dir)["replace, mle, M=20"]) == 7
    resumed = resume_run(cut.run_dir)
    assert resumed.status == "finished"
    assert all_metrics(resumed.run_dir) == all_metrics(whole.run_dir)


def test_resuming_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    run = start_run(config(), tmp_path)
    before = all_metrics(run.run_dir)
    assert resume_run(run.run_dir).status == "finished"
    assert all_metrics(run.run_dir) == before


def test_replay_that_disagrees_with_the_store_is_refused(tmp_path: Path) -> None:
    cut = start_run(config(checkpoint_every=0), tmp_path, stop_after=5)
    db = RunStore.open(cut.run_dir)._db  # tamper with one stored value
    db.execute(
        "UPDATE metrics SET value = 123.0 WHERE generation = 3 AND key = 'collapse/sigma_median'"
    )
    with pytest.raises(NondeterminismError, match="generation 3"):
        resume_run(cut.run_dir)


def test_train_never_mutates_the_incumbent() -> None:
    cfg = config()
    assert isinstance(cfg, gaussian.GaussianConfig)
    for arm in build_arms(cfg):
        pipe = arm.pipeline
        model, kept = pipe.initialize(np.random.default_rng(0))
        frozen = pickle.dumps((model, kept))
        rng = np.random.default_rng(1)
        samples = pipe.generate(model, 1, rng)
        scored = stamp(samples, pipe.verify(samples, rng), origin(arm.name, 1, 0))
        new_kept = pipe.curate(scored, [kept], 1, rng)
        candidate = pipe.train(model, new_kept, rng)
        assert candidate is not model
        assert pickle.dumps((model, kept)) == frozen


def test_halt_alarm_stops_the_arm_and_logs_why(tmp_path: Path) -> None:
    alarm = {"metric": "collapse/sigma_median", "below": 0.7, "action": "halt"}
    told: list[ArmProgress] = []
    run = start_run(config(generations=60, alarms=[alarm]), tmp_path, told.append)
    store = RunStore.open(run.run_dir)
    statuses = dict(store.arms())
    assert statuses["replace, mle, M=20"] == "halted"
    replace = store.metrics("replace, mle, M=20")
    last = max(replace)
    assert last < 60 and replace[last]["collapse/sigma_median"] < 0.7
    assert all(replace[g]["collapse/sigma_median"] >= 0.7 for g in replace if g < last)
    assert store.decisions("replace, mle, M=20")[last][0] == "halt"
    assert (
        statuses["accumulate, mle, M=20"] == "finished"
    )  # the guard only stops the arm that drifts
    assert any(
        kind == "halt" and arm == "replace, mle, M=20" for _, arm, _, kind, _ in store.events()
    )
    # progress: each arm starts at generation 0, counts up, and ends with its status
    for arm, status, end in (
        ("replace, mle, M=20", "halted", last),
        ("accumulate, mle, M=20", "finished", 60),
    ):
        mine = [t for t in told if t.arm == arm]
        assert (mine[0].generation, mine[0].status) == (0, "running")
        assert [t.generation for t in mine[1:-1]] == list(range(1, end + 1))
        assert (mine[-1].generation, mine[-1].status, mine[-1].total) == (end, status, 60)


def test_rollback_alarm_restores_the_last_good_generation(tmp_path: Path) -> None:
    alarm = {"metric": "collapse/sigma_median", "below": 0.8, "action": "rollback"}
    cfg = config(generations=80, alarms=[alarm], max_consecutive_rollbacks=1000, checkpoint_every=1)
    cfg = parse_config(cfg.model_dump(mode="json") | {"arms": [SMALL["arms"][0]]}, "test")
    run = start_run(cfg, tmp_path)
    store = RunStore.open(run.run_dir)
    arm = "replace, mle, M=20"
    decisions, series = store.decisions(arm), store.metrics(arm)
    rolled = [g for g, (action, _) in decisions.items() if action == "rollback"]
    accepted = [g for g, (action, _) in decisions.items() if action == "accept"]
    assert rolled, "the alarm never tripped: the test proves nothing"
    assert all(series[g]["collapse/sigma_median"] < 0.8 for g in rolled)
    assert all(
        series[g]["collapse/sigma_median"] >= 0.8 for g in accepted
    )  # the model never degrades past it
    state = store.load_snapshot(arm, 80)
    assert state is not None
    last_good = max(accepted)
    assert state[1].incumbent_generation == last_good
    assert state[1].metrics == series[last_good]  # the incumbent is exactly the last good model
    for g in rolled:  # each rollback names the generation it went back to
        previous_good = max(a for a in accepted if a < g)
        assert f"back to generation {previous_good}" in decisions[g][1]


def test_rollbacks_in_a_row_end_in_a_halt(tmp_path: Path) -> None:
    alarm = {"metric": "collapse/sigma_median", "below": 5.0, "action": "rollback"}  # always trips
    run = start_run(config(alarms=[alarm], max_consecutive_rollbacks=3), tmp_path)
    store = RunStore.open(run.run_dir)
    actions = [action for _, (action, _) in sorted(store.decisions("replace, mle, M=20").items())]
    assert actions == ["accept", "rollback", "rollback", "halt"]


def test_alarm_on_a_metric_the_experiment_does_not_report(tmp_path: Path) -> None:
    alarm = {"metric": "collapse/sigmaa", "below": 1.0, "action": "halt"}
    with pytest.raises(ConfigError, match="unknown metric 'collapse/sigmaa'"):
        start_run(config(alarms=[alarm]), tmp_path)
    assert not list(tmp_path.iterdir())  # the run it refused left no folder behind


def test_arms_with_the_same_name_are_refused_before_a_run_exists(tmp_path: Path) -> None:
    from selfimprove.experiments import load_config

    twice = "arms=[{rates: [0.3, 0.2]}, {rates: [0.3, 0.2]}]"
    with pytest.raises(ConfigError, match="each arm needs its own name"):
        start_run(load_config("failures/urn", [twice]), tmp_path)
    assert not list(tmp_path.iterdir())


def test_guarded_recipe_holds_the_line_then_halts(tmp_path: Path) -> None:
    from selfimprove.experiments import claims_for, load_config
    from tests.conftest import CONFIGS

    cfg = load_config(CONFIGS / "collapse" / "guarded.yaml", ["generations=300", "num_seeds=200"])
    run = start_run(cfg, tmp_path)
    store = RunStore.open(run.run_dir)
    assert dict(store.arms()) == {
        "replace, guarded": "halted",
        "10% fresh real, guarded": "finished",
    }
    claims = claims_for(cfg, store)
    guards = [c for c in claims if "guard (rollback" in c.text]
    assert [c.text.split(":")[0] for c in guards] == ["replace, guarded", "10% fresh real, guarded"]
    assert "fired in 0 of" in guards[1].measured and "fired in 0 of" not in guards[0].measured
    assert all(claim.holds for claim in claims)


def test_a_corrupt_run_database_is_a_clear_error(tmp_path: Path) -> None:
    from selfimprove.core.store import CorruptRunError

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(CorruptRunError, match=r"run\.sqlite"):
        RunStore.open("broken", tmp_path)


def test_each_generation_records_its_wall_and_cpu_time(tmp_path: Path) -> None:
    store = RunStore.open(start_run(config(), tmp_path).run_dir)
    try:
        for arm, _ in store.arms():
            wall, cpu = store.compute_minutes(arm), store.compute_minutes(arm, cpu=True)
            assert set(wall) == set(cpu) == set(store.metrics(arm))
            assert all(cpu[g] > 0 and wall[g] > 0 for g in wall)
            assert list(cpu.values()) == sorted(cpu.values())  # cumulative
    finally:
        store.close()


def _incumbent_at(decisions: dict[int, tuple[str, str]], generation: int) -> int:
    """The generation of the model carried into `generation`: the last accepted before it."""
    return max(g for g, (action, _) in decisions.items() if g < generation and action == "accept")


def test_provenance_after_a_rollback_names_the_model_really_used(tmp_path: Path) -> None:
    """After a rollback the incumbent is older than generation - 1: what the next
    generation samples is stamped with the model that really made it."""
    alarm = {"metric": "collapse/sigma_median", "below": 0.8, "action": "rollback"}
    cfg = config(generations=60, alarms=[alarm], max_consecutive_rollbacks=1000)
    cfg = parse_config(cfg.model_dump(mode="json") | {"arms": [SMALL["arms"][0]]}, "test")
    store = RunStore.open(start_run(cfg, tmp_path).run_dir)
    arm = "replace, mle, M=20"
    decisions = store.decisions(arm)
    older = 0
    for generation in range(1, 61):
        rows = [r for r in store.provenance(arm, generation) if r.source == "synthetic"]
        assert len(rows) == 1 and rows[0].origin_generation == generation
        used = _incumbent_at(decisions, generation)
        assert rows[0].model == f"generation-{used}" and rows[0].origin_arm == arm
        assert rows[0].verifier == "unverified" and rows[0].passed is None
        older += used < generation - 1
    assert older > 5, "no generation sampled from an older incumbent: the test proves nothing"


def test_show_provenance_prints_each_generations_provenance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from selfimprove.cli import main

    run = start_run(config(generations=3), tmp_path)
    assert main(["--runs-dir", str(tmp_path), "show", run.run_id, "--provenance"]) == 0
    out = capsys.readouterr().out
    assert "mix_fixed_real(0.25), mle, M=20" in out
    assert "generation-2" in out and "unverified" in out and "world" in out


@dataclass(frozen=True)
class WaitForFile:
    """A gate that waits for a decision made outside the run (a stand-in for a review)."""

    path: Path

    def __call__(self, proposal: Proposal) -> Decision:
        if not self.path.exists():
            return Decision("wait", f"generation {proposal.generation}: waiting for review")
        return Decision("accept", self.path.read_text())


def test_a_gate_that_waits_stops_the_run_and_resume_asks_again(tmp_path: Path) -> None:
    cfg = config(generations=3)
    decided = tmp_path / "decision"
    store = RunStore.create(tmp_path, cfg.kind, cfg.model_dump(mode="json"), cfg.seed, "test")
    arms = [
        Arm(a.name, replace(a.pipeline, gate=WaitForFile(decided))) for a in build_arms(cfg)[:1]
    ]
    assert Engine(cfg, store).run(arms) == "waiting"
    assert dict(store.arms()) == {arms[0].name: "waiting"} and store.info().status == "waiting"
    assert store.last_generation(arms[0].name) == 0  # generation 1 was not committed
    assert Engine(cfg, store).run(arms) == "waiting"  # still no decision: still waiting
    decided.write_text("approved by a reviewer")
    assert Engine(cfg, store).run(arms) == "finished"
    assert store.decisions(arms[0].name)[1] == ("accept", "approved by a reviewer")
    waits = [e for e in store.events() if e[3] == "wait"]
    assert len(waits) == 2 and all("waiting for review" in e[4] for e in waits)


def test_a_gate_on_a_metric_the_experiment_does_not_report(tmp_path: Path) -> None:
    gate = {"kind": "no_regression", "metric": "eval/nothing", "tolerance": 0.1}
    with pytest.raises(ConfigError, match=r"gate\.metric: unknown metric 'eval/nothing'"):
        start_run(config(gate=gate), tmp_path)
