"""The review stage on its own, with a toy domain (a sample is a string; "bad..." strings
are wrong and flagged): what passes to curate in each mode, decisions that hold when an item
comes back, budgets spent on decisions only, and a halt that trains nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from selfimprove.core.config import ConfigError, ReviewConfig
from selfimprove.core.records import Provenance, Sample, Verdict
from selfimprove.core.review import ReviewHooks, ReviewPlace
from selfimprove.oversight.queue import ReviewQueue
from selfimprove.oversight.stage import ReviewStage

HOOKS = ReviewHooks(
    "toy",
    view=lambda text: {"text": text},
    edit=lambda text, fields: fields["text"],
    editable=("text",),
    truth=lambda text: not text.startswith("bad"),
    flag=lambda text: "looks bad" if text.startswith("bad") else None,
)
PASSED = Verdict(True, "toy check")


def _scored(texts: list[str], generation: int = 1) -> tuple[Sample[str], ...]:
    made = Provenance("synthetic", generation, "generation-0", "arm", PASSED)
    real = Sample("real data", Provenance("real", generation, "world"))
    return (real, *(Sample(t, made) for t in texts))


def _stage(**review: Any) -> ReviewStage:
    return ReviewStage(ReviewConfig(**review), HOOKS)


def _trained(samples: tuple[Any, ...]) -> list[str]:
    """What curate keeps: samples whose verdict did not fail."""
    kept = []
    for s in samples:
        verdict = s.provenance.verdict
        if verdict is None or verdict.passed is not False:
            kept.append(s.content)
    return kept


def _run(stage: ReviewStage, texts: list[str], tmp_path: Path, generation: int = 1) -> Any:
    place = ReviewPlace(tmp_path, "arm", generation)
    return stage(_scored(texts, generation), place, np.random.default_rng(generation))


PERFECT = {"name": "sim", "accuracy": 1.0, "budget": 1000}


def test_audit_and_priority_pass_what_they_do_not_review(tmp_path: Path) -> None:
    texts = [f"good {n}" for n in range(20)] + ["bad 0"]
    for mode in ("audit", "priority"):
        folder = tmp_path / mode
        folder.mkdir()
        result = _run(_stage(mode=mode, share=0.1, reviewers=[PERFECT]), texts, folder)
        kept = _trained(result.scored)
        assert "real data" in kept and all(f"good {n}" in kept for n in range(20)), mode
        if mode == "priority":  # flagged, so reviewed, so rejected
            assert "bad 0" not in kept and result.metrics["review/flagged_rejected"] == 1
    # every sample is still there (refused ones marked), so a loop's counts stay comparable
    assert len(result.scored) == 22


def test_mode_all_trains_only_on_what_was_accepted_or_edited(tmp_path: Path) -> None:
    with ReviewQueue.open(tmp_path) as queue:  # a person fixed one item beforehand
        stage = _stage(unreviewed="drop", reviewers=[{**PERFECT, "budget": 2}])
        first = _run(stage, ["good 0", "bad 0", "bad 1", "good 1"], tmp_path)
        assert _trained(first.scored) == ["real data", "good 0"]  # budget 2: the rest dropped
        assert first.metrics["review/unreviewed"] == 2
        bad = queue.items("pending")[0]
        queue.decide(bad.id, "ann", "edit", edit={"text": "fixed"})
    second = _run(stage, ["bad 1", "good 0"], tmp_path, generation=2)
    assert _trained(second.scored) == ["real data", "fixed", "good 0"]
    edited = next(s for s in second.scored if s.content == "fixed")
    assert edited.provenance.review == "edited"


def test_a_rejected_item_stays_rejected_when_it_comes_back_unsampled(tmp_path: Path) -> None:
    bad = [f"bad {n}" for n in range(10)]
    stage = _stage(mode="audit", share=0.5, reviewers=[PERFECT])
    first = _run(stage, bad, tmp_path)
    rejected = 10 - len(_trained(first.scored)) + 1  # the real sample is kept
    assert 0 < rejected < 10
    second = _run(stage, bad, tmp_path, generation=2)
    # everything rejected before is dropped again, drawn or not; nothing rejected trains
    assert len(_trained(second.scored)) <= len(_trained(first.scored))
    with ReviewQueue.open(tmp_path) as queue:
        refused = {i.fields["text"] for i in queue.items("reject")}
    assert refused and not refused & set(_trained(second.scored))


def test_budgets_are_spent_on_decisions_only(tmp_path: Path) -> None:
    texts = [f"good {n}" for n in range(10)]
    two = [{**PERFECT, "name": "s1", "budget": 5}, {**PERFECT, "name": "s2", "budget": 5}]
    result = _run(_stage(unreviewed="drop", reviewers=two), texts, tmp_path)
    assert result.metrics["review/unreviewed"] == 0  # s2 took the five s1 left
    with ReviewQueue.open(tmp_path) as queue:
        assert {d.reviewer for d in queue.decisions()} == {"s1", "s2"}


def test_a_halt_trains_nothing_and_the_log_says_so(tmp_path: Path) -> None:
    stage = _stage(halt_below=0.9, reviewers=[PERFECT])
    result = _run(stage, ["good 0", "bad 0", "bad 1"], tmp_path)
    assert result.action == "halt" and "acceptance rate 0.333" in result.reason
    with ReviewQueue.open(tmp_path) as queue:
        resolve = [e for e in queue.audit.entries() if e["event"] == "resolve"][-1]
    assert resolve["halted"] is True and resolve["trains_on"] == []
    # the frozen outcome halts a replay the same way
    again = _run(stage, ["good 0", "bad 0", "bad 1"], tmp_path)
    assert again.action == "halt" and again.metrics == result.metrics


def test_programs_are_reviewed_by_people_only(tmp_path: Path) -> None:
    from selfimprove.experiments import build_arms, parse_config
    from selfimprove.reasoning.programs import Spec
    from selfimprove.reasoning.synthesis import REVIEW, Candidate, Task

    spec = Spec(("reverse",))
    task = Task(spec, (([1, 2],), ([3],)), ([2, 1], [3]))
    program = Candidate(task, "def f(x):\n    return x[::-1]\n")
    assert REVIEW.view(program) == {
        "specification": "reverse\n",
        "program": program.program,
        "tests": "f([1, 2]) == [2, 1]\nf([3]) == [3]",
    }
    made = Provenance("synthetic", 1, "generation-0", "arm", Verdict(True, "tests in sandbox"))
    stage = ReviewStage(ReviewConfig(), REVIEW)
    place = ReviewPlace(tmp_path, "arm", 1)
    waiting = stage((Sample(program, made),), place, np.random.default_rng(0))
    assert waiting.action == "wait"
    with ReviewQueue.open(tmp_path) as queue:
        (item,) = queue.items("pending")
        queue.decide(item.id, "ann", "edit", edit={"program": "def f(x):\n    return x\n"})
    done = stage((Sample(program, made),), place, np.random.default_rng(0))
    assert done.action == "continue" and done.scored[0].content.program.endswith("return x\n")
    config = parse_config(
        {"kind": "reasoning.synthesis", "review": {"reviewers": [PERFECT]}}, "test"
    )
    with pytest.raises(ConfigError, match="people review it"):
        build_arms(config)
