"""STaR on the loop: what is kept is right (and stored without the hint), the verdicts are
counted honestly, the direct baseline gets at least STaR's tokens, runs resume exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from selfimprove.core.config import ConfigError
from selfimprove.core.engine import generate_and_verify
from selfimprove.core.provenance import origin
from selfimprove.core.store import RunStore
from selfimprove.experiments import load_config, parse_config, resume_run, start_run
from selfimprove.reasoning.star import (
    Attempt,
    Data,
    Kept,
    StarConfig,
    Summarize,
    Trained,
    build_arms,
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
    "shape_eval_per_length": 20,
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
    validation = key(a.validation)  # every length: never padded with repeats
    assert not held & key(a.pool) and not held & key(a.seed) and not held & validation
    assert not validation & key(a.pool) and not validation & key(a.seed)
    assert validation and len(validation) == len(a.validation)
    assert {p.digits for p in a.validation if p.digits == 2} == {2}
    assert {p.digits for p in a.pool} == {1, 2} and len(a.pool) == 80 and len(a.seed) == 40


def _scored(config: StarConfig, arm_index: int = 0) -> tuple[Any, Trained, tuple[Any, ...]]:
    arm = build_arms(config)[arm_index]
    model, _ = arm.pipeline.initialize(np.random.default_rng(0))
    made = origin(arm.name, 1, 0)
    return arm, model, generate_and_verify(arm.pipeline, model, made, seed=1)


def test_generate_only_writes_and_verify_judges(config: StarConfig) -> None:
    """STaR's generate returns rationales with no verdict; verify's answer check is what
    passes or fails them (and it is right about every one)."""
    arm = build_arms(config)[0]
    model, _ = arm.pipeline.initialize(np.random.default_rng(0))
    attempts = arm.pipeline.generate(model, 1, np.random.default_rng(1))
    assert all(isinstance(a, Attempt) and not a.rationalized for a in attempts)
    verdicts = arm.pipeline.verify(attempts, np.random.default_rng(2))
    assert [v.passed for v in verdicts] == [
        answer_correct(a.problem, a.completion) for a in attempts
    ]
    assert {v.verifier for v in verdicts} == {"answer check"}


def test_star_keeps_only_right_answers_stored_without_the_hint(config: StarConfig) -> None:
    arm, model, scored = _scored(config)
    assert arm.name == "star"
    before = {k: v.clone() for k, v in model.lm.state.items()}
    first = [s for s in scored if s.provenance.revision == 0]
    revised = [s for s in scored if s.provenance.revision == 1]
    failed = [s.content.problem for s in first if not s.provenance.verdict.passed]
    assert failed and [s.content.problem for s in revised] == failed  # rationalized: the failures
    assert all(s.content.rationalized for s in revised)
    assert all(s.provenance.model == "generation-0" and s.provenance.arm == "star" for s in scored)
    kept: Kept = arm.pipeline.curate(scored, [], 1, np.random.default_rng(3))
    assert kept.attempts, "nothing kept: the test would check nothing"
    assert all(answer_correct(a.problem, a.completion) for a in kept.attempts)
    assert any(a.rationalized for a in kept.attempts)
    assert kept.pool == len(first) and kept.first_try == len(first) - len(failed)
    wrong = sum(not working_correct(a.problem, a.completion) for a in kept.attempts)
    stats = Summarize(build_arms(config)[0].pipeline.generate.pool, True)(kept)
    assert stats["kept/size"] == len(kept.attempts)
    assert stats["kept/fraction"] == len(kept.attempts) / kept.pool
    assert stats["kept/wrong_working_fraction"] == wrong / len(kept.attempts)
    assert stats["kept/first_try_fraction"] + stats["kept/rationalized_fraction"] == pytest.approx(
        stats["kept/fraction"]
    )
    trained: Trained = arm.pipeline.train(model, kept, np.random.default_rng(2))
    assert trained.total_tokens == model.total_tokens + trained.tokens
    assert all(torch.equal(model.lm.state[k], v) for k, v in before.items())


def test_the_whole_working_verifier_keeps_only_fully_right_rationales(config: StarConfig) -> None:
    """The verifier is a swappable stage: with `verifier: working` a right answer reached by
    wrong working is not kept."""
    answer_arm, _, by_answer = _scored(config)
    working = config.model_copy(update={"verifier": "working"})
    _, _, by_working = _scored(working)
    kept_answer = answer_arm.pipeline.curate(by_answer, [], 1, np.random.default_rng(3))
    kept_working = build_arms(working)[0].pipeline.curate(
        by_working, [], 1, np.random.default_rng(3)
    )
    assert kept_working.attempts, "nothing kept: the test would check nothing"
    assert all(working_correct(a.problem, a.completion) for a in kept_working.attempts)
    assert {s.provenance.verdict.verifier for s in kept_working.samples} == {"working check"}
    slipped = [a for a in kept_answer.attempts if not working_correct(a.problem, a.completion)]
    assert slipped, "no right answer with wrong working at this size: the test shows nothing"
    assert not {(a.problem, a.completion) for a in slipped} & {
        (a.problem, a.completion) for a in kept_working.attempts
    }


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


def test_the_review_monitor_never_flags_gold_working_and_names_the_flaw() -> None:
    from selfimprove.reasoning.star import REVIEW
    from selfimprove.reasoning.tasks import Problem, random_problems

    for operation in ("add", "mul1"):
        for digits in range(1, 7):
            rng = np.random.default_rng(digits)
            for problem in random_problems(operation, digits, 100, rng):
                gold = Attempt(problem, problem.rationale(), False)
                assert REVIEW.flag(gold) is None and REVIEW.truth(gold), problem
    p = Problem(478, 56, "add")  # 8+6+0=14 4 / 7+5+1=13 34 / 4+0+1=05 534 / >534
    miscopied = Attempt(p, p.rationale().replace(">534", ">535"), False)
    assert REVIEW.flag(miscopied) == "the answer is not read from the working"
    wrong_sum = Attempt(p, p.rationale().replace("7+5+1=13 34", "7+5+1=14 44"), False)
    assert REVIEW.flag(wrong_sum) == "line 2: 7+5+1 is not 14"
    # a digit read from the wrong operand: consistent arithmetic, so only the truth sees it
    misread = Attempt(p, p.rationale().replace("8+6+0=14 4", "8+5+0=13 3"), False)
    assert not REVIEW.truth(misread)
    assert REVIEW.view(misread) == {"prompt": "478+56\n", "completion": misread.completion}
    assert REVIEW.edit(misread, {"completion": p.rationale()}).completion == p.rationale()


def test_held_out_sets_are_disjoint_from_everything_any_arm_trains_on() -> None:
    """At the shapes recipe's full sizes: every held-out set (the task's draw for the lengths
    in the headline, the sets by shape, the robustness sets, validation) shares no sum with
    any arm's seed set or pool; 1-digit sums (100 exist) cannot be held out and are reported
    apart; the baseline's sets are exactly those of the recipe without shape sets."""
    config = load_config("reasoning/star_shapes")
    assert isinstance(config, StarConfig)
    data = Data.of(config)
    key = lambda problems: {(p.a, p.b) for p in problems}  # noqa: E731
    trained = key(data.seed) | key(data.pool)
    for seed, pool in data.draws.values():
        trained |= key(seed) | key(pool)
    assert len(data.draws) == 2 and len(trained) > 4000
    assert data.held_out_lengths == (2, 3, 4, 5, 6)  # 1 digit is left out of the headline
    assert key(data.held_out[1]) <= trained  # ...because every 1-digit sum is trained on
    held = [data.held_out[d] for d in data.held_out_lengths]
    held += [*data.shapes.values(), *data.robust.values(), data.validation]
    for problems in held:
        assert problems and not key(problems) & trained
    assert len(data.shapes) == 8 and all(len(s) == 100 for s in data.shapes.values())
    assert all(p.equal_lengths for p in data.shapes[(4, "equal")])
    assert not any(p.equal_lengths for p in data.shapes[(4, "unequal")])
    plain = Data.of(load_config("reasoning/star"))
    assert (plain.seed, plain.pool, plain.held_out, plain.validation) == (
        data.seed,
        data.pool,
        data.held_out,
        data.validation,
    )
    seed, pool = data.draws["balanced 0.5"]
    assert 0.35 < np.mean([not p.equal_lengths for p in pool]) < 0.45  # 1-digit sums: equal
    assert len(seed) == len(data.seed) and len(pool) == len(data.pool)
    seed, pool = data.draws["rare 0.5"]  # the task's draw, and 20 + 200 unequal sums a length
    assert seed[:200] == data.seed and pool[:2000] == data.pool
    assert len(seed) == 280 and len(pool) == 2800
    assert not any(p.equal_lengths for p in (*seed[200:], *pool[2000:]))


def test_arms_name_a_method_a_verifier_and_a_draw() -> None:
    config = parse_config(
        {
            **TINY,
            "arms": ["star", {"name": "cured", "unequal_share": 0.5, "verifier": "consistent"}],
        },
        "test",
    )
    assert isinstance(config, StarConfig)
    arms = build_arms(config)
    assert [a.name for a in arms] == ["star", "cured"]
    assert arms[1].pipeline.verify.checker == "consistent"
    assert arms[1].pipeline.generate.pool == Data.of(config).draws["balanced 0.5"][1]
    bad = [
        {"arms": [{"name": "d", "method": "direct", "verifier": "working"}]},
        {"operation": "mul1", "arms": [{"name": "s", "unequal_share": 0.5}]},
        {"arms": [{"name": "s", "unequal_share": 1.5}]},
        {"arms": [{"name": "s", "unequal_share": 0.5, "rare_share": 0.5}]},
    ]
    for change in bad:
        with pytest.raises(ConfigError):
            parse_config({**TINY, **change}, "test")
