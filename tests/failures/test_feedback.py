"""Bias amplification through feedback loops: known answers of Ensign et al.'s urn and of
Taori & Hashimoto's self-labelling loop (REFERENCES, "Bias feedback loops"), and their
monitors firing on the failing arms only."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from selfimprove.core.records import Batch
from selfimprove.core.store import RunStore
from selfimprove.experiments import load_config, measure, start_run
from selfimprove.failures import labelling, urn
from selfimprove.failures.labelling import LabellingArm, LabellingConfig
from selfimprove.failures.urn import UrnArm


def run_urn(arm: UrnArm, days: int, seeds: int, seed: int = 0) -> np.ndarray:
    """The loop's own stages, day after day, without the store: final shares `[S]`."""
    rng = np.random.default_rng(seed)
    model, _ = urn.StartUrn(seeds, (1.0, 1.0))(rng)
    patrol, curate = urn.Patrol(arm.rates), urn.CurateDiscoveries(arm.correction)
    for day in range(1, days + 1):
        model = urn.update_urn(model, curate(patrol(model, day, rng), (), day, rng), rng)
    return model.share


def test_naive_urn_with_equal_rates_ends_anywhere() -> None:
    # REFERENCES: 2,000 runs x 2,000 days, rates 0.5 / 0.5: share ~ uniform on [0, 1] (sd 0.29)
    share = run_urn(UrnArm(rates=(0.5, 0.5)), days=2000, seeds=1000)
    assert abs(share.std() - (1 / 12) ** 0.5) < 0.03
    assert np.abs(share - 0.5).mean() > 0.2  # a uniform's is 0.25; held at 0.5 it would be ~0
    assert abs(share.mean() - 0.5) < 0.03  # symmetric: it runs away either way


def test_naive_urn_runs_away_and_thinning_learns_the_true_share() -> None:
    # REFERENCES, rates 0.3 / 0.2 (true share 0.6): naive mean 0.83 and P(share > 0.9) ~ 0.5;
    # thinning 0.601 (sd 0.025). 1,000 runs: the standard error of the naive mean is ~0.006.
    naive = run_urn(UrnArm(rates=(0.3, 0.2)), days=2000, seeds=1000)
    assert 0.80 <= naive.mean() <= 0.86
    assert 0.42 <= (naive > 0.9).mean() <= 0.58
    thinned = run_urn(UrnArm(rates=(0.3, 0.2), correction="thinning"), days=2000, seeds=1000)
    assert abs(thinned.mean() - 0.6) < 0.01
    assert 0.018 <= thinned.std() <= 0.032


def test_urn_train_never_mutates_the_incumbent() -> None:
    rng = np.random.default_rng(1)
    model, _ = urn.StartUrn(50, (1.0, 1.0))(rng)
    before = model.counts.copy()
    day = urn.Patrol((0.9, 0.9))(model, 1, rng)
    urn.update_urn(model, urn.CurateDiscoveries("none")(day, (), 1, rng), rng)
    assert np.array_equal(model.counts, before)


def test_urn_monitor_fires_on_the_naive_loop_only(tmp_path: Path) -> None:
    config = load_config(
        "failures/urn",
        ["generations=120", "num_seeds=300", "monitor_after=30"],
    )
    run = start_run(config, tmp_path)
    store = RunStore.open(run.run_id, tmp_path)
    try:
        measured = measure(store)
        claims = urn.urn_claims(config, measured)  # type: ignore[arg-type]
        events = store.events()
    finally:
        store.close()
    monitor = [c for c in claims if "monitor/ipw_gap" in c.text]
    assert len(monitor) == 1 and monitor[0].holds, monitor[0].measured
    alarmed = {arm for _, arm, _, kind, _ in events if kind == "alarm"}
    assert alarmed == {"none, rates 0.5/0.5", "none, rates 0.3/0.2"}


def test_bound_factor_known_values() -> None:
    assert labelling.bound_factor(0, 2000, 200, 800) == 1.0
    assert labelling.bound_factor(1, 2000, 200, 800) == pytest.approx(1 + 800 / 3000)
    two = 1 + 800 / 3000 * (4000 - 200) / 4000 + 800 / 4000
    assert labelling.bound_factor(2, 2000, 200, 800) == pytest.approx(two)


def test_lda_bias_at_the_true_parameters() -> None:
    # The Bayes rule of the toy: threshold ln(0.3 / 0.7) = -0.847, P(pred = 1) = 0.829.
    world = labelling.World(0.7, 1.0, 1.0)
    share = world.predicted_share(np.array([np.log(0.3 / 0.7)]), np.array([True]))
    assert share[0] == pytest.approx(0.7 * 0.9112 + 0.3 * 0.6357, abs=1e-3)


def self_labelling(tmp_path: Path, arms: list[LabellingArm]) -> dict[str, list[float]]:
    config = LabellingConfig(num_seeds=20, arms=tuple(arms))
    run = start_run(config, tmp_path)
    store = RunStore.open(run.run_id, tmp_path)
    try:
        measured = measure(store)
    finally:
        store.close()
    return {
        arm: [series[g]["feedback/bias_mean"] for g in sorted(series)]
        for arm, series in measured.metrics.items()
    }


def test_argmax_labels_amplify_the_bias_and_sampled_labels_hold_it(tmp_path: Path) -> None:
    # REFERENCES (10 seeds, 30 rounds): argmax 0.137 -> 0.203; sampled 0.137 -> 0.135.
    # Ours, bias exact from the fitted threshold: 0.128 -> 0.185 and 0.128 -> 0.128.
    bias = self_labelling(tmp_path, [LabellingArm(), LabellingArm(labels="sample")])
    argmax, sampled = bias["argmax labels"], bias["sample labels"]
    assert 0.11 <= argmax[0] <= 0.15 and argmax[0] == sampled[0]  # same round-0 data
    assert argmax[-1] >= 1.3 * argmax[0]
    assert all(b >= a - 0.002 for a, b in itertools.pairwise(argmax))  # it only grows
    assert abs(sampled[-1] - sampled[0]) <= 0.1 * sampled[0]
    bound = labelling.bound_factor(30, 2000, 200, 800) * argmax[0]
    assert argmax[-1] <= bound


def test_the_world_label_reaches_training_only_through_a_reviewer() -> None:
    rng = np.random.default_rng(3)
    world = labelling.World(0.7, 1.0, 1.0)
    model, _ = labelling.FitHumanLabels(world, 4, 100)(rng)
    scored = labelling.LabelFreshInputs(world, "argmax", 50)(model, 1, rng)
    flipped = scored.data.copy()
    flipped[..., 2] = 1 - flipped[..., 2]
    for review, same in ((0.0, True), (1.0, False)):
        curate = labelling.AddHumanLabels(world, 20, review, 1.0)
        fits = [
            labelling.refit(model, curate(Batch(data), (), 1, np.random.default_rng(5)), rng)
            for data in (scored.data, flipped)
        ]
        assert np.array_equal(fits[0].counts, fits[1].counts) == same


def test_label_share_monitor_fires_on_argmax_not_on_sampled(tmp_path: Path) -> None:
    config = load_config(
        "failures/self_labelling",
        ["num_seeds=20", "generations=10", "arms=[{labels: argmax}, {labels: sample}]"],
    )
    run = start_run(config, tmp_path)
    store = RunStore.open(run.run_id, tmp_path)
    try:
        claims = labelling.labelling_claims(config, measure(store))  # type: ignore[arg-type]
    finally:
        store.close()
    monitor = [c for c in claims if "monitor/label_share_gap" in c.text]
    assert len(monitor) == 1 and monitor[0].holds, monitor[0].measured
    assert "argmax labels: fires at round 1" in monitor[0].measured
