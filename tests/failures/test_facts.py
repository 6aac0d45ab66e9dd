"""Error amplification on the engine: the knowledge base's answers, planted errors that are
really wrong, a loop that keeps them and grows more without verification, verification that
cures it, a key-free monitor that warns on the unverified arm only, and runs that repeat."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from selfimprove.core.experiment import newest
from selfimprove.core.seeding import stage_rng
from selfimprove.core.store import RunStore
from selfimprove.data.capitals import capitals, normalise
from selfimprove.experiments import (
    build_arms,
    claims_for,
    load_config,
    parse_config,
    resume_run,
    start_run,
)
from selfimprove.failures import fact_base, facts
from selfimprove.failures.facts import Facts, FactsConfig, LookUp, Statement

ALARM = {"metric": "kept/off_mode_statements", "above": 0.01, "action": "warn"}
ARMS = [{"verify": "none"}, {"verify": "drop"}, {"verify": "correct"}]


def small(**changes: Any) -> dict[str, Any]:
    return {
        "kind": "failures.facts",
        "seed": 0,
        "generations": 3,
        "num_seeds": 1,
        "entities": 80,
        "planted_errors": 6,
        "steps": 100,
        "arms": ARMS,
        "alarms": [ALARM],
    } | changes


def test_the_knowledge_base_knows_capitals_one_to_one() -> None:
    base = capitals()
    assert base["australia"] == "canberra" and base["south_africa"] == "pretoria"
    assert base["colombia"] == "bogota" and base["haiti"] == "port_au_prince"
    assert 200 <= len(base) <= 250
    assert len(set(base.values())) == len(base)  # a capital names one entity
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", w) for pair in base.items() for w in pair)
    assert normalise("Yaoundé") == "yaounde" and normalise("Washington D.C.") == "washington_dc"
    with pytest.raises(TypeError):  # one cached map, shared by every caller: read-only
        base["australia"] = "sydney"  # type: ignore[index]


def test_planted_errors_are_really_wrong_in_generation_0s_statements() -> None:
    config = parse_config(small(num_seeds=3), "test")
    assert isinstance(config, FactsConfig)
    f = Facts.of(config)
    base = capitals()
    assert f.planted.sum(axis=1).tolist() == [6, 6, 6]
    assert [f.word(int(t)) for t in f.truth] == [base[e] for e in f.entities]
    told_capitals = {f.word(int(t)) for t in f.told[f.planted]}
    assert told_capitals <= set(base.values())  # a real capital swapped in, never the right one
    kept = f.generation_zero()
    planted = [s for s in kept if s.provenance.model == fact_base.PLANTED]
    assert len(planted) == 18 and len(kept) == 3 * 80
    assert all(s.content.capital != base[s.content.entity] for s in planted)
    assert all(s.content.capital == base[s.content.entity] for s in kept if s not in planted)
    verdicts = LookUp()([s.content for s in kept], stage_rng(0, 0, "verify"))
    assert sum(not v.passed for v in verdicts) == 18


def test_statements_read_as_sentences_and_the_lookup_checks_them() -> None:
    right, wrong = Statement(0, "australia", "canberra"), Statement(0, "australia", "wellington")
    assert right.text == "the capital of australia is canberra"
    verdicts = LookUp()([right, wrong], stage_rng(0, 1, "verify"))
    assert [v.passed for v in verdicts] == [True, False]
    assert fact_base.REVIEW.truth is not None and not fact_base.REVIEW.truth(wrong)


def test_the_interval_is_a_t_interval_over_replicates() -> None:
    """Mean 0.5, standard deviation 0.1 over 3 replicates: the 95% interval is 0.5 +- t(0.975, 2)
    (4.303) * 0.1 / sqrt(3); one replicate has no interval; a share's stays inside [0, 1]."""
    half = 4.3027 * 0.1 / np.sqrt(3)
    spread = facts._spread("facts/error_rate", np.array([0.4, 0.5, 0.6]))
    assert spread["facts/error_rate_mean"] == pytest.approx(0.5)
    assert spread["facts/error_rate_low"] == pytest.approx(0.5 - half, abs=1e-4)
    assert spread["facts/error_rate_high"] == pytest.approx(0.5 + half, abs=1e-4)
    assert facts._spread("facts/drift", np.array([0.3])) == {"facts/drift_mean": 0.3}
    assert facts._spread("facts/drift", np.array([0.0, 0.0, 0.1]))["facts/drift_low"] == 0.0


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict[int, Any]], list[Any]]:
    """The three verification arms, 3 generations, one replicate of 80 entities: metrics,
    [events, provenance rows, claims]."""
    config = parse_config(small(), "test")
    run = start_run(config, tmp_path_factory.mktemp("facts"))
    store = RunStore.open(run.run_dir)
    try:
        series = {arm: store.metrics(arm) for arm, _ in store.arms()}
        rows = [(arm, row) for arm in series for row in store.provenance(arm)]
        return series, [store.events(), rows, claims_for(config, store)]
    finally:
        store.close()


def test_unverified_the_planted_errors_persist_and_errors_do_not_fall(
    loop: tuple[dict[str, dict[int, Any]], list[Any]],
) -> None:
    series, _ = loop
    unverified = series["unverified"]
    first, (_, last) = unverified[0], newest(unverified)
    assert first["facts/error_rate_mean"] == pytest.approx(6 / 80, abs=1 / 80)
    assert last["facts/planted_persisting_mean"] >= 5 / 6  # the very capital planted
    assert last["facts/error_rate_mean"] >= first["facts/error_rate_mean"]
    assert last["facts/confidence_wrong_mean"] >= 0.75  # learned as truth


def test_verification_ends_below_the_unverified_arm(
    loop: tuple[dict[str, dict[int, Any]], list[Any]],
) -> None:
    series, _ = loop
    end = {arm: newest(s)[1]["facts/error_rate_mean"] for arm, s in series.items()}
    assert end["verify-correct"] <= 1 / 80  # the planted errors corrected
    assert end["verify-correct"] <= end["unverified"] - 0.04
    assert end["verify-drop"] <= end["unverified"]
    # dropping forgets what was planted instead of correcting it
    assert newest(series["verify-drop"])[1]["facts/planted_persisting_mean"] == 0


def test_the_monitor_warns_on_the_unverified_arm_only(
    loop: tuple[dict[str, dict[int, Any]], list[Any]],
) -> None:
    series, (events, _, claims) = loop
    warned = {arm for _, arm, g, kind, _ in events if kind == "alarm" and g}
    assert warned == {"unverified"}
    for arm in ("verify-drop", "verify-correct"):
        assert all(series[arm][g]["kept/off_mode_statements"] <= 0.01 for g in (1, 2, 3))
    # the claim (failures/monitoring.py) says so, and says the monitor sees the process
    (monitor,) = [c for c in claims if c.text.startswith("the monitor")]
    assert monitor.holds is True and "whether a verifier was on" in monitor.text
    assert re.match(r"unverified: fires at generation [123], damage visible at", monitor.measured)
    assert "verify-drop (cured): never fires; verify-correct (cured): never fires" in (
        monitor.measured
    )


def test_unverified_generations_train_on_model_statements_only(
    loop: tuple[dict[str, dict[int, Any]], list[Any]],
) -> None:
    """No knowledge-base statement reaches an unverified model after generation 0; corrections
    (and only they) bring them into the correcting arm."""
    _, (_, rows, _) = loop
    for arm, row in rows:
        if row.generation == 0:
            continue
        if arm in ("unverified", "verify-drop"):
            assert row.source == "synthetic"
        if arm == "unverified":
            assert row.verifier == "unverified" and row.passed is None
        if arm == "verify-drop":
            assert row.passed is True
    corrected = [
        r for a, r in rows if a == "verify-correct" and r.source == "real" and r.generation
    ]
    assert corrected and all(r.model == fact_base.KNOWLEDGE_BASE for r in corrected)


def test_same_seed_same_result_and_resume_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = parse_config(small(generations=2, entities=20, planted_errors=2, steps=20), "test")
    whole = start_run(config, tmp_path / "a")
    monkeypatch.setattr(facts, "_GENERATION_ZERO", type(facts._GENERATION_ZERO)())  # retrain
    again = start_run(config, tmp_path / "b")
    stopped = start_run(config, tmp_path / "c", stop_after=1)
    assert stopped.status == "stopped"
    resumed = resume_run(stopped.run_dir.name, tmp_path / "c")
    assert resumed.status == "finished"
    tables = []
    for run in (whole, again, resumed):
        store = RunStore.open(run.run_dir)
        tables.append({arm: store.metrics(arm) for arm, _ in store.arms()})
        store.close()
    assert tables[0] == tables[1] == tables[2]
    assert len(tables[0]["unverified"]) == 3


def test_arms_need_their_own_names_and_review_needs_reviewers() -> None:
    from selfimprove.core.config import ConfigError

    twice = parse_config(small(arms=[{"verify": "none"}, {"verify": "none"}]), "test")
    with pytest.raises(ConfigError, match="own name"):  # experiments.build_arms, every loop's
        build_arms(twice)
    with pytest.raises(ConfigError, match="review"):
        parse_config(small(arms=[{"review": 0.2}]), "test")
    with pytest.raises(ConfigError, match="planted_errors"):
        parse_config(small(planted_errors=80), "test")


def test_with_no_generation_after_0_no_claim_is_checked(tmp_path: Path) -> None:
    """Generation 0 learned the given statements: persisting, sure and cured all read the
    same model, so nothing is claimed until one generation learned the model's own."""
    config = parse_config(small(generations=0, entities=20, planted_errors=2, steps=20), "test")
    store = RunStore.open(start_run(config, tmp_path).run_dir)
    try:
        claims = claims_for(config, store)
    finally:
        store.close()
    assert len(claims) >= 6
    assert all(c.holds is None for c in claims)
    assert all(c.measured.startswith("not checked: needs >= 1 generation") for c in claims)


def _claims(recipe: str, runs: Path) -> list[Any]:
    config = load_config(recipe)
    store = RunStore.open(start_run(config, runs).run_dir)
    try:
        return claims_for(config, store)
    finally:
        store.close()


@pytest.mark.slow
def test_the_quick_recipes_claims_hold(tmp_path: Path) -> None:
    claims = _claims("failures/facts_quick", tmp_path)
    assert claims and all(c.holds for c in claims), [(c.text, c.measured) for c in claims]


@pytest.mark.slow
def test_the_full_recipes_claims(tmp_path: Path) -> None:
    """Every claim holds but one: review of a quarter of the statements does not cure it."""
    claims = _claims("failures/facts", tmp_path)
    shown = [(c.text, c.measured, c.holds) for c in claims]
    partial = {c.text.split(" ")[0]: c for c in claims if c.text.startswith(("real-", "review-"))}
    assert sorted(partial) == ["real-0.5", "review-0.25"]
    rest = [c for c in claims if c not in partial.values()]
    assert len(rest) == 9 and all(c.holds for c in rest), shown  # 3 + 2 cures x 2 + 2 monitors
    # The partial cures are measured, shown and claimed like the others. A finding, not a bug:
    # half the countries' true statements each generation cure it, but 95%-accurate reviewers
    # auditing a quarter of the statements do not: the three quarters unaudited still reach
    # training unchecked, and the gap stays under the 3 points a claim counts.
    gaps = {}
    for name, c in partial.items():
        found = re.fullmatch(
            rf"{re.escape(name)} (0\.\d+) vs unverified (0\.\d+) \(gap ([+-]0\.\d+)\)", c.measured
        )
        assert found, c.measured
        own, unverified, gaps[name] = map(float, found.groups())
        assert gaps[name] == pytest.approx(unverified - own, abs=2e-3)
    assert partial["real-0.5"].holds is True and gaps["real-0.5"] >= 0.03, shown
    assert partial["review-0.25"].holds is False and gaps["review-0.25"] < 0.03, shown
