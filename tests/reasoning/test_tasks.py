"""Arithmetic tasks: hand-checked scratchpads, and checkers that tell a right answer from
right working."""

from __future__ import annotations

import numpy as np
import pytest

from selfimprove.reasoning.tasks import (
    Problem,
    answer_correct,
    answer_from_working,
    consistent_correct,
    final_answer,
    random_problems,
    working_correct,
)


def test_addition_scratchpad_by_hand() -> None:
    p = Problem(29, 57, "add")
    assert p.prompt() == "29+57\n"
    assert p.prompt(hint=True) == "29+57 ?86\n"
    assert p.rationale() == "9+7+0=16 6\n2+5+1=08 86\n>86"
    assert Problem(999, 1, "add").rationale() == ("9+1+0=10 0\n9+0+1=10 00\n9+0+1=10 000\n>1000")


def test_multiplication_scratchpad_by_hand() -> None:
    assert Problem(347, 6, "mul1").rationale() == ("7*6+0=42 2\n4*6+4=28 82\n3*6+2=20 082\n>2082")
    assert Problem(50, 0, "mul1").rationale() == "0*0+0=00 0\n5*0+0=00 00\n>0"


@pytest.mark.parametrize("operation", ["add", "mul1"])
def test_gold_rationales_pass_both_checkers(operation: str) -> None:
    rng = np.random.default_rng(0)
    for digits in range(1, 7):
        for p in random_problems(operation, digits, 200, rng):  # type: ignore[arg-type]
            assert p.digits == digits
            assert answer_correct(p, p.rationale())
            assert working_correct(p, p.rationale())
            assert final_answer(p.rationale()) == str(p.answer)


def test_right_answer_with_wrong_working_is_caught() -> None:
    p = Problem(29, 57, "add")
    slipped = "9+7+0=16 6\n2+5+0=07 76\n>86"  # a dropped carry, but the answer line is right
    assert answer_correct(p, slipped)
    assert not working_correct(p, slipped)
    assert not answer_correct(p, "9+7+0=16 6\n2+5+1=08 86\n>85")
    assert not answer_correct(p, "9+7+0=16 6\n2+5+1=08 86")  # no answer line
    assert not answer_correct(p, ">086")
    assert answer_correct(p, p.direct()) and not working_correct(p, p.direct())


def test_the_consistent_check_wants_the_answer_its_own_last_line_implies() -> None:
    """`consistent_correct` sits between the two checkers: a miscopied last running total
    (the typical right-answer-wrong-working of a trained model) fails it; a wrong digit in an
    earlier line that the last line does not show passes it (only the whole-working check
    sees that)."""
    p = Problem(29, 57, "add")
    gold = p.rationale()
    assert answer_from_working(gold) == "86" and consistent_correct(p, gold)
    assert answer_from_working(Problem(999, 1, "add").rationale()) == "1000"
    assert answer_from_working(Problem(347, 6, "mul1").rationale()) == "2082"
    miscopied = "9+7+0=16 6\n2+5+1=08 87\n>86"  # right answer, not read from the working
    assert answer_correct(p, miscopied) and not consistent_correct(p, miscopied)
    early = "9+7+0=15 6\n2+5+1=08 86\n>86"  # a wrong first line the last one hides
    assert consistent_correct(p, early) and not working_correct(p, early)
    assert not consistent_correct(p, ">86")  # no working: nothing to read the answer from
    assert not consistent_correct(p, "9+7+0=16 6\n2+5+1=08 87\n>87")  # consistent, wrong


def test_equal_lengths_is_the_operands_digit_count() -> None:
    assert Problem(12, 34, "add").equal_lengths and Problem(3, 4, "add").equal_lengths
    assert not Problem(12, 3, "add").equal_lengths and not Problem(5, 10000, "add").equal_lengths
