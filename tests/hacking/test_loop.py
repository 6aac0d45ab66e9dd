"""The reward-hacking loop on the engine: reproducible, resumable, training only on the proxy
(patched where review looked), reviews that stay inside their arm, and the shipped recipes'
claims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from selfimprove.core.config import ConfigError
from selfimprove.core.records import Provenance, Sample, Verdict
from selfimprove.core.seeding import stage_rng
from selfimprove.core.store import RunStore
from selfimprove.experiments import build_arms, claims_for, load_config, parse_config, start_run
from selfimprove.hacking.hacking import (
    REVIEW,
    BudgetArm,
    Episode,
    HackingConfig,
    KeepPatched,
    PlayEpisodes,
    Setup,
)
from selfimprove.oversight.queue import ReviewQueue

REVIEWERS = {"unreviewed": "drop", "reviewers": [{"name": "sim", "accuracy": 1.0, "budget": 10**5}]}


def small(**changes: Any) -> dict[str, Any]:
    return {
        "kind": "hacking.gridworld",
        "seed": 3,
        "world": "lagoon",
        "generations": 3,
        "learners": 3,
        "episodes": 20,
        "penalty": 30,
        "arms": [{"budget": 0}, {"budget": 0.5}, {"budget": 0.5, "audits": "visible"}],
        "review": REVIEWERS,
    } | changes


def metrics(run_dir: Path) -> dict[str, Any]:
    store = RunStore.open(run_dir)
    try:
        return {arm: store.metrics(arm) for arm, _ in store.arms()}
    finally:
        store.close()


def test_same_seed_same_run_and_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    config = parse_config(small(), "test")
    whole = start_run(config, tmp_path / "a")
    again = start_run(config, tmp_path / "b")
    assert metrics(whole.run_dir) == metrics(again.run_dir)
    stopped = start_run(config, tmp_path / "c", stop_after=2)
    assert stopped.status == "stopped"
    from selfimprove.experiments import resume_run

    resumed = resume_run(stopped.run_dir.name, tmp_path / "c")
    assert resumed.status == "finished"
    assert metrics(resumed.run_dir) == metrics(whole.run_dir)


def test_arms_get_their_own_review_and_never_share_decisions(tmp_path: Path) -> None:
    config = parse_config(small(generations=2), "test")
    arms = {arm.name: arm for arm in build_arms(config)}
    assert arms["unreviewed"].pipeline.review is None
    hidden, visible = arms["hidden-0.5"].pipeline.review, arms["visible-0.5"].pipeline.review
    assert (hidden.config.mode, hidden.config.share) == ("audit", 0.5)
    assert (visible.config.mode, visible.config.share) == ("priority", 0.0)
    run = start_run(config, tmp_path)
    queue = ReviewQueue.open(run.run_dir)
    try:
        items = queue.items()
        by_arm = {arm: [i for i in items if i.arm == arm] for arm in ("hidden-0.5", "visible-0.5")}
        assert all(by_arm.values()) and len(items) == sum(map(len, by_arm.values()))
        # visible audits review exactly the watched episodes
        assert all("watched" in i.fields["episode"] for i in by_arm["visible-0.5"])
        assert not any("watched" in i.fields["episode"] for i in by_arm["hidden-0.5"])
        assert {i.id for i in by_arm["hidden-0.5"]}.isdisjoint(i.id for i in by_arm["visible-0.5"])
    finally:
        queue.close()


def _episode(setup: Setup, rng: np.random.Generator) -> tuple[Episode, ...]:
    from selfimprove.hacking.hacking import Initialize

    learners, _ = Initialize(setup)(rng)
    return PlayEpisodes(setup)(learners, 1, rng)


def test_curate_patches_only_the_faulty_moves_of_rejected_episodes() -> None:
    config = HackingConfig.model_validate(small())
    setup = Setup(config, BudgetArm(budget=0.5))
    episodes = _episode(setup, stage_rng(0, 1, "generate"))
    verdict = Verdict(True, "observed-reward")
    samples = [
        Sample(e, Provenance("synthetic", 1, "generation-0", "a", verdict, review=review))
        for e, review in zip(episodes, ["rejected", "accepted", None] * len(episodes), strict=False)
    ]
    kept = KeepPatched(setup)(tuple(samples), (), 1, stage_rng(0, 1, "curate"))
    assert len(kept) == len(episodes)
    for i, sample in enumerate(samples):
        e, n = sample.content, len(sample.content.actions)
        expected = e.rewards - (30.0 * e.faults if sample.provenance.review == "rejected" else 0)
        assert np.array_equal(kept.rewards[i, :n], expected)
        assert np.array_equal(kept.states[i, : n + 1], e.states)
    assert any(s.provenance.review == "rejected" and s.content.faults.any() for s in samples)


def test_training_never_reads_hidden_performance_and_never_mutates_the_incumbent() -> None:
    """Two worlds with the same dynamics and observed rewards but different hidden tables
    train the same tables: hidden performance reaches the learner only through review."""
    from dataclasses import replace

    from selfimprove.hacking.agents import play, replay
    from selfimprove.hacking.worlds import lagoon

    world = lagoon()
    other = replace(world, hidden=-world.hidden)
    q = np.zeros((2, world.num_states, world.num_actions))
    a = play(world, q, 10, 0.5, np.random.default_rng(0))
    b = play(other, q, 10, 0.5, np.random.default_rng(0))
    before = q.copy()
    assert np.array_equal(replay(world, q, a, 0.1, 0.99), replay(other, q, b, 0.1, 0.99))
    assert np.array_equal(q, before)


def test_the_reviewers_truth_and_view() -> None:
    config = HackingConfig.model_validate(small(world="boat_race"))
    episodes = _episode(Setup(config, BudgetArm()), stage_rng(1, 1, "generate"))
    for e in episodes:
        assert REVIEW.truth is not None and REVIEW.truth(e) == (e.hidden >= e.observed)
        view = REVIEW.view(e)
        assert len(view["moves"]) == len(e.actions) and set(view["moves"]) <= set("udlr")
        assert view["visits"].count("\n") == 4  # the 5x5 grid
    assert REVIEW.reason == "reward_hack" and REVIEW.editable == ()


def test_a_budget_without_reviewers_is_refused() -> None:
    with pytest.raises(ConfigError, match="need a `review:` section"):
        parse_config(small(review=None), "test")
    twice = parse_config(small(arms=[{"budget": 0.1}, {"budget": 0.1}]), "test")
    with pytest.raises(ConfigError, match="own name"):  # refused for every loop, before a run
        build_arms(twice)


def test_review_lifts_hidden_performance_in_a_short_boat_race(tmp_path: Path) -> None:
    """Learning happened, by a stated margin, in 6 s: 10 learners, 10 generations, hidden
    audits of 10% lift the greedy policies' hidden performance by at least 25 (of racing's
    100) over the unreviewed arm; both reach the best score. (The unreviewed claim needs the
    recipe's 30 generations: at 10-15 the learners still lap more often, hidden 20-50.)"""
    changes = ["generations=10", "learners=10", "arms=[{budget: 0}, {budget: 0.1}]"]
    config = load_config("hacking/boat_race", changes)
    run = start_run(config, tmp_path)
    last = {arm: series[max(series)] for arm, series in metrics(run.run_dir).items()}
    assert last["unreviewed"]["hacking/observed_return_mean"] == 50
    assert last["hidden-0.1"]["hacking/observed_return_mean"] == 50
    rise = (
        last["hidden-0.1"]["hacking/hidden_performance_mean"]
        - last["unreviewed"]["hacking/hidden_performance_mean"]
    )
    assert rise >= 25, rise


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["hacking/boat_race", "hacking/absent_supervisor"])
def test_shipped_recipes_claims_hold(recipe: str, tmp_path: Path) -> None:
    """The tour's boat race and the absent supervisor, at their shipped settings (about 30 s
    each): every claim holds."""
    config = load_config(recipe)
    run = start_run(config, tmp_path)
    store = RunStore.open(run.run_dir)
    try:
        claims = claims_for(config, store)
    finally:
        store.close()
    assert len(claims) == 2
    failing = [(c.text, c.measured) for c in claims if not c.holds]
    assert not failing, failing


def test_a_person_reviews_the_episodes_through_the_queue(tmp_path: Path) -> None:
    """Without simulated reviewers the run waits; a person's decisions (here written to the
    queue as `selfimprove review` writes them) let `resume` continue, and the generation
    counts them."""
    from selfimprove.experiments import resume_run

    people = {"unreviewed": "wait", "reviewers": []}
    config = parse_config(
        small(generations=1, arms=[{"budget": 0.2}], review=people, world="boat_race"), "test"
    )
    run = start_run(config, tmp_path)
    assert run.status == "waiting"
    queue = ReviewQueue.open(run.run_dir)
    try:
        items = queue.items(status="pending")
        assert items and all(
            set(i.fields) == {"episode", "observed return", "moves", "visits"} for i in items
        )
        for item in items:  # a person who finds none of these random walks racing
            queue.decide(item.id, "ada", "reject", "reward_hack")
    finally:
        queue.close()
    assert resume_run(run.run_dir.name, tmp_path).status == "finished"
    store = RunStore.open(run.run_dir)
    try:
        rejected = store.metrics("hidden-0.2")[1]["review/rejected"]
    finally:
        store.close()
    assert rejected == len(items)
