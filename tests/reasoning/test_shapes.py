"""The shapes of a sum: shaped and balanced draws have the shape they claim, every
robustness set has its one property, and the coverage monitor counts by shape."""

from __future__ import annotations

import numpy as np
import pytest

from selfimprove.reasoning.shapes import (
    ROBUSTNESS,
    balanced_problems,
    coverage,
    robustness_problems,
    shaped_problems,
)
from selfimprove.reasoning.tasks import Problem


def _columns(p: Problem) -> list[tuple[int, int]]:
    a, b = str(p.a)[::-1], str(p.b)[::-1]
    return [
        (int(a[i]) if i < len(a) else 0, int(b[i]) if i < len(b) else 0) for i in range(p.digits)
    ]


def _carries(p: Problem) -> list[bool]:
    carry, out = 0, []
    for x, y in _columns(p):
        carry = (x + y + carry) // 10
        out.append(carry == 1)
    return out


@pytest.mark.parametrize("digits", [2, 3, 5, 9])
def test_shaped_draws_have_their_shape_and_length(digits: int) -> None:
    rng = np.random.default_rng(0)
    equal = shaped_problems(digits, "equal", 300, rng)
    unequal = shaped_problems(digits, "unequal", 300, rng)
    assert all(p.digits == digits and p.equal_lengths for p in equal)
    assert all(p.digits == digits and not p.equal_lengths for p in unequal)
    shorter = {min(len(str(p.a)), len(str(p.b))) for p in unequal}
    assert shorter == set(range(1, digits))  # every shorter length appears
    assert 0.4 < np.mean([len(str(p.a)) > len(str(p.b)) for p in unequal]) < 0.6  # either side
    with pytest.raises(ValueError):
        shaped_problems(1, "unequal", 1, rng)


def test_a_balanced_draw_has_its_share_of_unequal_sums() -> None:
    rng = np.random.default_rng(1)
    drawn = balanced_problems(4, 2000, 0.5, rng)
    assert all(p.digits == 4 for p in drawn)
    assert abs(np.mean([not p.equal_lengths for p in drawn]) - 0.5) < 0.04
    assert all(p.equal_lengths for p in balanced_problems(1, 50, 0.5, rng))


def test_every_robustness_set_has_its_property() -> None:
    rng = np.random.default_rng(2)
    sets = {name: robustness_problems(name, (2, 3, 5), 300, rng) for name in ROBUSTNESS}
    assert all(len(s) == 300 and {p.digits for p in s} == {2, 3, 5} for s in sets.values())
    assert all(all(_carries(p)) and len(str(p.answer)) == p.digits + 1 for p in sets["carry_chain"])
    assert all(p.equal_lengths for name in ("carry_chain", "no_carry", "zeros") for p in sets[name])
    assert not any(any(_carries(p)) for p in sets["no_carry"])
    assert all(min(p.a, p.b) < 10 for p in sets["one_digit_addend"])
    inner = [x == 0 or y == 0 for p in sets["zeros"] if p.digits > 2 for x, y in _columns(p)[1:-1]]
    assert np.mean(inner) > 0.6  # inner digits are 0 half the time in each operand
    assert all(p.answer == p.a + p.b for s in sets.values() for p in s)


def test_coverage_counts_the_pools_multi_digit_problems_by_shape() -> None:
    pool = [
        Problem(12, 34, "add"),
        Problem(56, 78, "add"),
        Problem(12, 3, "add"),
        Problem(1, 2, "add"),
    ]
    kept = [Problem(12, 34, "add"), Problem(1, 2, "add")]
    assert coverage(pool, kept) == {"equal": 0.5, "unequal": 0.0}
    assert np.isnan(coverage(pool[:2], kept)["unequal"])
