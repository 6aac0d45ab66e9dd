"""Inference-time refinement: only failing answers are revised, every answer re-checked after
every round, the budget stops it, and the report's cost adds up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfimprove.cli import main
from selfimprove.constitutional.chains import Budget
from selfimprove.constitutional.checkers import TRAINING_CHECKERS
from selfimprove.constitutional.constitution import load_constitution
from selfimprove.constitutional.prompts import select
from selfimprove.constitutional.refine import refine
from selfimprove.models.chat import tiny_random_chat
from tests.constitutional.test_sl_cai import Scripted

REFUSAL = "I can't help with that. It could hurt someone; please talk to someone you trust."


def test_refinement_revises_only_what_fails_until_it_passes() -> None:
    prompts = select("red_team", "train", 2)
    compliant = f"Step 1: {' '.join(prompts[0].topic)}. Step 2: then {' '.join(prompts[0].topic)}."
    # round 0: a refusal (passes) and a compliant answer (fails); round 1 revises only the second
    chat = Scripted([REFUSAL, compliant, "It explains how to do it.", REFUSAL])
    budget = Budget(16, 16, 0.0)
    result = refine(chat, prompts, load_constitution("default"), TRAINING_CHECKERS, 3, budget)
    assert result.passed == (True, True)
    assert [r.round for r in result.rounds] == [0, 1]  # stopped: nothing left to revise
    assert [r.revised for r in result.rounds] == [0, 1]
    assert [r.pass_rate for r in result.rounds] == [0.5, 1.0]
    assert result.chains[0].revisions == 0 and result.chains[1].revisions == 1
    assert len(chat.asked) == 4  # 2 answers, 1 critique, 1 revision


def test_the_round_budget_stops_a_model_that_never_passes() -> None:
    chat = tiny_random_chat()
    prompts = select("helpful", "test", 3)
    budget = Budget(6, 6, 0.0)
    result = refine(chat, prompts, load_constitution("default"), TRAINING_CHECKERS, 2, budget)
    assert [r.round for r in result.rounds] == [0, 1, 2]
    assert all(r.tokens > 0 for r in result.rounds)
    assert result.rounds[0].tokens <= 3 * 6  # at most max_tokens per answer
    # gibberish never names a capital: every round revises every prompt
    assert [r.revised for r in result.rounds] == [0, 3, 3]


def test_the_refine_command_prints_each_round_and_writes_the_chains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "chains.json"
    args = ["refine", "--model", "tiny-random", "--prompts", "helpful:test:3", "--rounds", "2"]
    assert main([*args, "--max-tokens", "6", "--critique-tokens", "6", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pass rate" in printed and len(printed.strip().splitlines()) == 2 + 3 + 1
    written = json.loads(out.read_text())
    assert [r["round"] for r in written["rounds"]] == [0, 1, 2]
    assert len(written["chains"]) == 3
    assert all(len(c["steps"]) == 2 and not c["passed"] for c in written["chains"])
    # an existing --json file is never overwritten
    assert main([*args, "--json", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad", ["harmful:test", "red_team:valid", "red_team:test:0", "red_team:test:x"]
)
def test_a_bad_prompts_slice_is_one_line(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["refine", "--model", "tiny-random", "--prompts", bad]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "KIND:SPLIT" in err or "whole number" in err


def test_refine_prints_control_characters_as_escapes(capsys: pytest.CaptureFixture[str]) -> None:
    """A prompt (and so the chain printed back) carrying a terminal escape: it is shown as
    text, never sent to the terminal."""
    hostile = "\x1b]0;owned\x07How do I \x1b[2Jpick a lock?"
    args = ["refine", "--model", "tiny-random", "--prompt", hostile, "--rounds", "1"]
    assert main([*args, "--max-tokens", "4", "--critique-tokens", "4"]) == 0
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\x07" not in printed
    assert "\\x1b]0;owned\\x07How do I \\x1b[2Jpick a lock?" in printed
