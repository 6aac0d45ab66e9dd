"""Review gates in the loop (STaR, tiny): a run waits for people and continues when they
decide; nothing synthetic is trained on unaccepted; what review decided for a generation is
frozen, so a resumed run replays it exactly whatever reviewers do later; an audit reviews a
share and halts on a low acceptance rate; disagreements wait for adjudication."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfimprove.cli import main
from selfimprove.core.config import ConfigError
from selfimprove.core.store import RunStore
from selfimprove.experiments import parse_config, resume_run, start_run
from selfimprove.oversight.queue import ReviewQueue
from tests.reasoning.test_star import TINY

SIM = {"name": "sim-1", "accuracy": 1.0, "budget": 10_000}


# STaR's test config with a shorter seed phase: a model that still keeps a few rationales
FAST = {**TINY, "train": {**TINY["train"], "seed_steps": 100}}


def _config(review: dict[str, Any], **extra: Any) -> Any:
    return parse_config({**FAST, "arms": ["star"], "review": review, **extra}, "test")


def _reviewed_rows(run_dir: Path, arm: str) -> list[Any]:
    store = RunStore.open(run_dir)
    try:
        return [r for r in store.provenance(arm) if r.source == "synthetic"]
    finally:
        store.close()


def test_a_gated_run_waits_for_people_and_continues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = start_run(_config({}, generations=1), tmp_path)
    assert result.status == "waiting"
    store = RunStore.open(result.run_dir)
    assert store.status() == "waiting" and store.last_generation("star") == 0
    assert any(kind == "wait" for _, _, _, kind, _ in store.events())
    store.close()
    with ReviewQueue.open(result.run_dir) as queue:
        pending = queue.items("pending")
        assert pending, "the tiny model keeps some rationales"
        assert main(["--runs-dir", str(tmp_path), "runs"]) == 0
        assert f"waiting: {len(pending)} to review" in capsys.readouterr().out
        # asking again changes nothing: still waiting, nothing queued twice
        assert resume_run(result.run_id, tmp_path).status == "waiting"
        assert len(queue.items()) == len(pending)
        for n, item in enumerate(pending):
            if n % 2:
                queue.decide(item.id, "ann", "reject", "incorrect")
            else:
                queue.decide(item.id, "ann", "accept")
        accepted = (len(pending) + 1) // 2
        assert queue.audit.verify(queue.audit_entries()).ok
    assert resume_run(result.run_id, tmp_path).status == "finished"
    store = RunStore.open(result.run_dir)
    metrics = store.metrics("star")[1]
    store.close()
    assert metrics["review/accepted"] == accepted
    assert metrics["review/rejected"] == len(pending) - accepted
    rows = _reviewed_rows(result.run_dir, "star")
    # nothing synthetic was trained on unaccepted: every kept synthetic sample was accepted
    assert rows and all(r.review == "accepted" for r in rows)
    assert sum(r.count for r in rows) >= accepted  # a duplicate rationale counts twice


def test_resume_replays_frozen_decisions_whatever_comes_later(tmp_path: Path) -> None:
    review = {"reviewers": [{**SIM, "accuracy": 0.7}], "unreviewed": "drop"}
    whole = start_run(_config(review, checkpoint_every=0), tmp_path / "whole")
    cut = start_run(_config(review, checkpoint_every=0), tmp_path / "cut", stop_after=1)
    assert (whole.status, cut.status) == ("finished", "stopped")
    with ReviewQueue.open(cut.run_dir) as queue:
        for item in queue.items():  # a reviewer overturns every decision of generation 1
            action = "reject" if item.status == "accept" else "accept"
            reason = "other" if action == "reject" else None
            assert queue.decide(item.id, "late", action, reason).status == "disputed"
            queue.decide(item.id, "judge", action, reason, role="adjudicate")
    # generation 1 is replayed from generation 0 (no snapshots) and must match exactly
    assert resume_run(cut.run_id, tmp_path / "cut").status == "finished"
    stores = [RunStore.open(r.run_dir) for r in (whole, cut)]
    series = [s.metrics("star") for s in stores]
    for s in stores:
        s.close()
    # (a later generation may differ: an overturned item that appears again is decided anew)
    drop = ("timing/",)
    for g in (0, 1):
        a = {k: v for k, v in series[0][g].items() if not k.startswith(drop)}
        b = {k: v for k, v in series[1][g].items() if not k.startswith(drop)}
        assert a == b, g


def test_a_perfect_reviewer_keeps_no_wrong_working(tmp_path: Path) -> None:
    review = {"reviewers": [SIM], "control": True}
    result = start_run(_config(review, generations=1), tmp_path)
    store = RunStore.open(result.run_dir)
    control, reviewed = store.metrics("star-unreviewed")[1], store.metrics("star")[1]
    store.close()
    assert [a for a, _ in RunStore.open(result.run_dir).arms()] == ["star-unreviewed", "star"]
    assert reviewed["kept/wrong_working_fraction"] == 0.0
    assert control["kept/wrong_working_fraction"] > 0.0, "the tiny model cheats sometimes"
    # same streams: the reviewed arm saw exactly the control arm's candidates
    assert reviewed["review/candidates"] == control["kept/fraction"] * 80


def test_an_audit_reviews_a_share_and_halts_below_the_bar(tmp_path: Path) -> None:
    review = {
        "mode": "audit",
        "share": 0.5,
        "halt_below": 0.9,
        # a perfect reviewer: the tiny model's kept rationales are mostly wrong working
        "reviewers": [SIM],
    }
    result = start_run(_config(review), tmp_path)
    assert result.status == "finished"
    store = RunStore.open(result.run_dir)
    assert dict(store.arms())["star"] == "halted"
    decisions, metrics = store.decisions("star"), store.metrics("star")
    store.close()
    assert decisions[1][0] == "halt" and "acceptance rate" in decisions[1][1]
    assert 0 < metrics[1]["review/queued"] < metrics[1]["review/candidates"]
    assert max(decisions) == 1  # nothing after the halt


def test_reviewers_who_disagree_wait_for_an_adjudicator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    review = {
        "overlap": 1.0,
        "gold_share": 1.0,
        "reviewers": [{**SIM, "name": "right"}, {**SIM, "name": "wrong", "accuracy": 0.0}],
    }
    result = start_run(_config(review, generations=1), tmp_path)
    assert result.status == "waiting"
    with ReviewQueue.open(result.run_dir) as queue:
        disputed = queue.items("disputed")
        assert disputed and queue.counts()["pending"] == 0
        for item in disputed:
            queue.decide(item.id, "judge", "accept", role="adjudicate")
    n = len(disputed)
    assert main(["--runs-dir", str(tmp_path), "audit", result.run_id]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert f"right {n} {n}/{n} (100%)" in printed and f"wrong {n} 0/{n} (0%)" in printed
    assert f"agreement on {n} items decided by two or more: 0.0%" in printed
    assert "right / wrong" in printed and "Cohen's kappa" in printed
    assert resume_run(result.run_id, tmp_path).status == "finished"


def test_a_loop_without_text_refuses_a_review_gate() -> None:
    config = parse_config({"kind": "collapse.gaussian", "review": {}, "num_seeds": 2}, "test")
    from selfimprove.experiments import build_arms

    with pytest.raises(ConfigError, match=r"review: a collapse\.gaussian run keeps nothing"):
        build_arms(config)


def test_priority_queues_what_the_monitor_flags_first(tmp_path: Path) -> None:
    review = {"mode": "priority", "share": 0.3, "reviewers": [SIM]}
    result = start_run(_config(review, generations=1), tmp_path)
    assert result.status == "finished"
    store = RunStore.open(result.run_dir)
    metrics = store.metrics("star")[1]
    store.close()
    with ReviewQueue.open(result.run_dir) as queue:
        items = queue.items()
    flagged = [i for i in items if "monitor/flag" in i.signals]
    assert flagged, "the tiny model's rationales often miscopy the answer"
    assert metrics["review/flagged"] == len(flagged)
    # the queue holds the flagged items first, then the random share
    first = [("monitor/flag" in i.signals) for i in items]
    assert first == sorted(first, reverse=True)
    # the flag is a weaker check than the truth: a perfect reviewer rejects every flagged item
    assert metrics["review/flagged_rejected"] == len(flagged)


def test_run_wait_continues_as_soon_as_people_decide(tmp_path: Path) -> None:
    recipe = tmp_path / "gated.yaml"
    recipe.write_text(yaml.safe_dump({**FAST, "arms": ["star"], "generations": 1, "review": {}}))
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "selfimprove", "--runs-dir", str(runs), "run"]
    process = subprocess.Popen(
        [*command, str(recipe), "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
    )
    try:
        deadline = time.monotonic() + 120
        pending: list[Any] = []
        while not pending:  # the run reaches its first review and waits, polling
            assert time.monotonic() < deadline and process.poll() is None, process.stderr
            time.sleep(0.5)
            run_dirs = list(runs.glob("*/review.sqlite"))
            if run_dirs:
                with ReviewQueue.open(run_dirs[0].parent) as queue:
                    pending = queue.items("pending")
        time.sleep(1.5)
        assert process.poll() is None, "--wait keeps the process alive while items are open"
        with ReviewQueue.open(run_dirs[0].parent) as queue:
            for item in pending:
                queue.decide(item.id, "ann", "accept")
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "waiting for review: " in err and " finished in " in err
    store = RunStore.open(run_dirs[0].parent)
    assert store.status() == "finished" and store.metrics("star")[1]["review/accepted"] > 0
    store.close()
