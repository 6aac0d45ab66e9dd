"""Arithmetic with a per-digit scratchpad: n-digit addition and multiplication by one digit.

A problem is a prompt line; its completion is the working, one line per digit from the
least significant, then the answer:

    29+57                  prompt
    9+7+0=16 6             digit + digit + carry = two-digit sum, then the answer so far
    2+5+1=08 86
    >86                    the answer

    347*6
    7*6+0=42 2             digit * multiplier + carry = two-digit product
    4*6+4=28 82
    3*6+2=20 082
    >2082                  the last carry, then the answer so far, without leading zeros

Three checkers: `answer_correct` reads only the answer line; `working_correct` checks every
line of the working (digits, carries, sums, the answer so far, the final assembly), so a
right answer reached by wrong working is caught; `consistent_correct`, between the two, asks
for the right answer read from the model's own last line (its carry, then its running total),
which needs no more of the answer key than the answer check. A hint (`29+57 ?86`) gives the answer, for
STaR's rationalization; a rationale is always stored under the prompt without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

ALPHABET = "0123456789+*= >?\n"
Operation = Literal["add", "mul1"]


@dataclass(frozen=True)
class Problem:
    a: int
    b: int
    operation: Operation

    @property
    def digits(self) -> int:
        """The problem's length: digits of its longer multi-digit operand."""
        return (
            len(str(self.a))
            if self.operation == "mul1"
            else max(len(str(self.a)), len(str(self.b)))
        )

    @property
    def equal_lengths(self) -> bool:
        """Both operands have the same number of digits (a sum's common shape: the task draws
        the second operand uniformly below 10^d, so unequal lengths are about 10% of it)."""
        return len(str(self.a)) == len(str(self.b))

    @property
    def answer(self) -> int:
        return self.a + self.b if self.operation == "add" else self.a * self.b

    @property
    def symbol(self) -> str:
        return "+" if self.operation == "add" else "*"

    def prompt(self, hint: bool = False) -> str:
        hinted = f" ?{self.answer}" if hint else ""
        return f"{self.a}{self.symbol}{self.b}{hinted}\n"

    def working(self) -> list[str]:
        """The correct working lines (without the answer line)."""
        lines, carry, partial = [], 0, ""
        xs = str(self.a)[::-1]
        if self.operation == "add":
            ys = str(self.b)[::-1]
            for i in range(self.digits):
                x = int(xs[i]) if i < len(xs) else 0
                y = int(ys[i]) if i < len(ys) else 0
                total = x + y + carry
                carry, partial = total // 10, f"{total % 10}{partial}"
                lines.append(f"{x}+{y}+{total - x - y}={total:02d} {partial}")
        else:
            for ch in xs:
                x, before = int(ch), carry
                total = x * self.b + carry
                carry, partial = total // 10, f"{total % 10}{partial}"
                lines.append(f"{x}*{self.b}+{before}={total:02d} {partial}")
        return lines

    def rationale(self) -> str:
        """The gold completion: working, then the answer line."""
        return "".join(f"{line}\n" for line in self.working()) + f">{self.answer}"

    def direct(self) -> str:
        """The completion without working (the direct fine-tuning baseline)."""
        return f">{self.answer}"


def random_problems(
    operation: Operation, digits: int, count: int, rng: np.random.Generator
) -> list[Problem]:
    """`count` problems whose (longer) operand has exactly `digits` digits."""
    low, high = (0 if digits == 1 else 10 ** (digits - 1)), 10**digits
    a = rng.integers(low, high, size=count)
    if operation == "mul1":
        b = rng.integers(0, 10, size=count)
    else:
        b = rng.integers(0, high, size=count)
        swap = rng.random(count) < 0.5  # the longer operand on either side
        a, b = np.where(swap, b, a), np.where(swap, a, b)
    return [Problem(int(x), int(y), operation) for x, y in zip(a, b, strict=True)]


def final_answer(completion: str) -> str | None:
    """The text of the answer line (`>...`), or None when there is none."""
    lines = completion.rstrip("\n").split("\n")
    last = lines[-1] if lines else ""
    return last[1:] if last.startswith(">") else None


def answer_correct(problem: Problem, completion: str) -> bool:
    answer = final_answer(completion)
    return answer is not None and answer.isdigit() and answer == str(problem.answer)


def working_correct(problem: Problem, completion: str) -> bool:
    """Every working line is exactly the correct one, and the answer follows from them."""
    lines = completion.rstrip("\n").split("\n")
    return lines[:-1] == problem.working() and answer_correct(problem, completion)


def answer_from_working(completion: str) -> str | None:
    """The answer the working's last line implies: its carry, then its running total
    (`3+5+1=09 987` -> `987`; `9+7+0=16 6` -> `16`); None when the last line before the
    answer is not a working line."""
    lines = completion.rstrip("\n").split("\n")
    last = _WORKING_LINE.fullmatch(lines[-2]) if len(lines) >= 2 else None
    if last is None:
        return None
    return str(int(f"{int(last[1]) // 10}{last[2]}"))


_WORKING_LINE = re.compile(r"\d[+*]\d\+\d=(\d\d) (\d+)")


def consistent_correct(problem: Problem, completion: str) -> bool:
    """The answer is right AND it is the one the model's own last working line implies."""
    return answer_correct(problem, completion) and final_answer(completion) == answer_from_working(
        completion
    )
