"""STaR on the loop: what is kept is right (and stored without the hint), the verdicts are
counted honestly, the direct baseline gets at least STaR's tokens, runs resume exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from selfimprove.core.store import RunStore
from selfimprove.experiments import parse_config, resume_run, start_run
from selfimprove.reasoning.star import (
    Data,
    Kept,
    StarConfig,
    Trained,
    build_arms,
    summarize,
)
from selfimprove.reasoning.tasks import answer_correct, working_correct

TINY = {
    "kind": "reasoning.star",
    "generations": 2,
    "train_digits": [1, 2],
    "eval_digits": [1, 2, 3],
    "seed_per_length": 20,
    "problems_per_length": 40,
    "eval_per_length": 20,
    "model": {"context": 48, "layers": 2, "heads": 2, "width": 48},
    "train": {
        "seed_steps": 200,
        "min_steps": 20,
        "max_steps": 40,
        "batch_size": 32,
        "learning_rate": 0.003,
    },
}


@pytest.fixture(scope="module")
def config() -> StarConfig:
    parsed = parse_config(TINY, "test")
    assert isinstance(parsed, StarConfig)
    return parsed


def test_the_problem_sets_are_fixed_by_the_seed_and_disjoint(config: StarConfig) -> None:
    a, b = Data.of(config), Data.of(config)
    assert a == b
    key = lambda problems: {(p.a, p.b) for p in problems}  # noqa: E731
    held = key(p for d in (2, 3) for p in a.held_out[d])  # 1-digit sums are too few to split
    assert not held & key(a.pool) and not held & key(a.seed)
    assert {p.digits for p in a.pool} == {1, 2} and len(a.pool) == 80 and len(a.seed) == 40


def test_star_keeps_only_right_answers_stored_without_the_hint(config: StarConfig) -> None:
    arm = build_arms(config)[0]
    assert arm.name == "star"
    model, _ = arm.pipeline.initialize(np.random.default_rng(0))
    before = {k: v.clone() for k, v in model.lm.state.items()}
    kept: Kept = arm.pipeline.generate(model, 1, np.random.default_rng(1))
    assert kept.attempts, "nothing kept: the test would check nothing"
    assert all(answer_correct(a.problem, a.completion) for a in kept.attempts)
    assert any(a.rationalized for a in kept.attempts)
    wrong = sum(not working_correct(a.problem, a.completion) for a in kept.attempts)
    stats = summarize(kept)
    assert stats["kept/fraction"] == len(kept.attempts) / kept.pool
    assert stats["kept/wrong_working_fraction"] == wrong / len(kept.attempts)
    assert stats["kept/first_try_fraction"] + stats["kept/rationalized_fraction"] == pytest.approx(
        stats["kept/fraction"]
    )
    trained: Trained = arm.pipeline.train(model, kept, np.random.default_rng(2))
    assert trained.total_tokens == model.total_tokens + trained.tokens
    assert all(torch.equal(model.lm.state[k], v) for k, v in before.items())


def test_direct_baseline_gets_at_least_stars_tokens_and_resume_is_exact(
    config: StarConfig, tmp_path: Path
) -> None:
    both = config.model_copy(update={"arms": ("star", "direct")})
    whole = start_run(both, tmp_path / "whole")
    cut = start_run(both, tmp_path / "cut", stop_after=1)
    resumed = resume_run(cut.run_dir)
    a, b = RunStore.open(whole.run_dir), RunStore.open(resumed.run_dir)
    for arm in ("star", "direct"):
        assert a.metrics(arm) == b.metrics(arm)
    star, direct = a.metrics("star"), a.metrics("direct")
    for g in (1, 2):
        assert direct[g]["train/tokens"] >= star[g]["train/tokens"]
        assert "kept/fraction" in star[g] and "kept/fraction" not in direct[g]
    assert 0 <= star[2]["eval/accuracy_3_digits"] <= 1
