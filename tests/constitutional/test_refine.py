"""Inference-time refinement: only failing answers are revised, every answer re-checked after
every round, the budget stops it, and the report's cost adds up."""

from __future__ import annotations

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
