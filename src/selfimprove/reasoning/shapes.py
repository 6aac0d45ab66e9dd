"""The shapes of a sum, for STaR's honest evaluation and its cure.

A d-digit sum is `equal` when both operands have d digits and `unequal` when the shorter one
has fewer. The task draws the second operand uniformly below 10^d, so about 10% of its sums
are unequal: a model trained on them can learn the common shape rather than addition
(the chapter's distribution shift, inside the loop). Here:

- `shaped_problems`: sums of one shape, for held-out sets split by shape;
- `ROBUSTNESS`: named sets that probe one difficulty each (a one-digit addend, a carry that
  runs through every column, no carry at all, zeros inside the operands);
- `balanced_problems`: the cure's draw, a chosen share of unequal sums (rare cases generated
  on purpose, the chapter's "curriculum diversity");
- `coverage`: how much of each shape of a pool the kept rationales cover, a monitor a user
  can compute from the verifier alone (no held-out answers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from selfimprove.reasoning.tasks import Problem

Shape = Literal["equal", "unequal"]
SHAPES: tuple[Shape, ...] = ("equal", "unequal")


def _numbers(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One number per entry with exactly that many digits (1 digit: 0-9)."""
    low = np.where(digits == 1, 0, 10 ** (digits - 1))
    return rng.integers(low, 10**digits)


def _sides(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> list[Problem]:
    swap = rng.random(len(a)) < 0.5  # the longer operand on either side
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    return [Problem(int(x), int(y), "add") for x, y in zip(a, b, strict=True)]


def shaped_problems(
    digits: int, shape: Shape, count: int, rng: np.random.Generator
) -> list[Problem]:
    """`count` sums whose longer operand has `digits` digits; `equal`: so has the other;
    `unequal`: the other's length is uniform over 1..digits-1."""
    if shape == "unequal" and digits < 2:
        raise ValueError("a 1-digit sum has no unequal shape")
    longer = np.full(count, digits)
    other = longer if shape == "equal" else rng.integers(1, digits, size=count)
    return _sides(_numbers(longer, rng), _numbers(other, rng), rng)


def balanced_problems(
    digits: int, count: int, unequal_share: float, rng: np.random.Generator
) -> list[Problem]:
    """`count` sums of `digits` digits, `unequal_share` of them unequal (in expectation;
    1-digit sums are all equal)."""
    if digits < 2:
        return shaped_problems(digits, "equal", count, rng)
    unequal = rng.random(count) < unequal_share
    other = np.where(unequal, rng.integers(1, digits, size=count), digits)
    return _sides(_numbers(np.full(count, digits), rng), _numbers(other, rng), rng)


def _column_sums(
    digits: int, count: int, rng: np.random.Generator, pick: Callable[..., tuple[Any, Any]]
) -> list[Problem]:
    """Equal-length sums built column by column: `pick(column, count, rng)` gives the digits
    of both operands in that column (column 0 is the units; the last one leads)."""
    a = np.zeros(count, dtype=np.int64)
    b = np.zeros(count, dtype=np.int64)
    for column in range(digits):
        x, y = pick(column, digits, count, rng)
        a += x * 10**column
        b += y * 10**column
    return [Problem(int(x), int(y), "add") for x, y in zip(a, b, strict=True)]


def _carry_chain(column: int, digits: int, count: int, rng: np.random.Generator) -> tuple[Any, Any]:
    """The units carry, every other column sums to 9: the carry runs through all of them."""
    if column == 0:
        x = rng.integers(1, 10, size=count)
        return x, rng.integers(10 - x, 10)
    low = 1 if column == digits - 1 else 0
    x = rng.integers(low, 9 if low else 10, size=count)
    return x, 9 - x


def _no_carry(column: int, digits: int, count: int, rng: np.random.Generator) -> tuple[Any, Any]:
    low = 1 if column == digits - 1 else 0
    x = rng.integers(low, 9 if low else 10, size=count)
    return x, rng.integers(low, 10 - x)


def _zeros(column: int, digits: int, count: int, rng: np.random.Generator) -> tuple[Any, Any]:
    """Inner digits are 0 half the time; the leading digits are not."""
    if column == digits - 1:
        return rng.integers(1, 10, size=count), rng.integers(1, 10, size=count)
    pair = rng.integers(1, 10, size=(2, count)) * (rng.random((2, count)) < 0.5)
    return pair[0], pair[1]


def _one_digit_addend(digits: int, count: int, rng: np.random.Generator) -> list[Problem]:
    return _sides(_numbers(np.full(count, digits), rng), _numbers(np.ones(count, int), rng), rng)


RobustSet = Callable[[int, int, np.random.Generator], list[Problem]]
ROBUSTNESS: dict[str, RobustSet] = {
    "one_digit_addend": _one_digit_addend,
    "carry_chain": lambda d, n, rng: _column_sums(d, n, rng, _carry_chain),
    "no_carry": lambda d, n, rng: _column_sums(d, n, rng, _no_carry),
    "zeros": lambda d, n, rng: _column_sums(d, n, rng, _zeros),
}
"""Named robustness sets: name -> (digits, count, rng) -> sums of that many digits."""


def robustness_problems(
    name: str, lengths: Sequence[int], count: int, rng: np.random.Generator
) -> list[Problem]:
    """`count` sums of set `name`, their lengths spread evenly over `lengths` (all >= 2)."""
    per = np.bincount(rng.integers(0, len(lengths), size=count), minlength=len(lengths))
    return [p for d, n in zip(lengths, per, strict=True) for p in ROBUSTNESS[name](d, int(n), rng)]


def shape_of(problem: Problem) -> Shape:
    return "equal" if problem.equal_lengths else "unequal"


def coverage(pool: Sequence[Problem], kept: Sequence[Problem]) -> dict[Shape, float]:
    """Per shape, the share of the pool's multi-digit problems of that shape that have a kept
    rationale (nan for a shape the pool lacks)."""
    out: dict[Shape, float] = {}
    chosen = {(p.a, p.b) for p in kept}
    for shape in SHAPES:
        mine = {(p.a, p.b) for p in pool if p.digits > 1 and shape_of(p) == shape}
        out[shape] = len(mine & chosen) / len(mine) if mine else float("nan")
    return out
