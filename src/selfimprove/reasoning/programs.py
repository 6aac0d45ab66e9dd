"""Program-synthesis tasks: list transformations named in words, checked by running tests.

A specification names a pipeline of primitive steps on a list of integers ("sort then
double"); the program that meets it applies one commented line per step (the comment is
the program's working: it names the step the next line carries out):

    sort then double
    def f(x):
        # sort
        x = sorted(x)
        # double
        x = [v * 2 for v in x]
        return x

Tests are input/output pairs computed here by the reference pipeline (trusted code); a
generated program is only ever run in the sandbox. Held-out specifications are
compositions never seen in training, so passing them needs the steps, not memorized text.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# name -> (line of the program, reference implementation)
PRIMITIVES: dict[str, tuple[str, Callable[[list[int]], list[int]]]] = {
    "reverse": ("x = x[::-1]", lambda x: x[::-1]),
    "sort": ("x = sorted(x)", sorted),
    "double": ("x = [v * 2 for v in x]", lambda x: [v * 2 for v in x]),
    "increment": ("x = [v + 1 for v in x]", lambda x: [v + 1 for v in x]),
    "square": ("x = [v * v for v in x]", lambda x: [v * v for v in x]),
    "negate": ("x = [-v for v in x]", lambda x: [-v for v in x]),
    "evens": ("x = [v for v in x if v % 2 == 0]", lambda x: [v for v in x if v % 2 == 0]),
    "positives": ("x = [v for v in x if v > 0]", lambda x: [v for v in x if v > 0]),
    "dedupe": ("x = list(dict.fromkeys(x))", lambda x: list(dict.fromkeys(x))),
    "drop_first": ("x = x[1:]", lambda x: x[1:]),
}


@dataclass(frozen=True)
class Spec:
    steps: tuple[str, ...]

    @property
    def prompt(self) -> str:
        return " then ".join(self.steps) + "\n"

    def program(self) -> str:
        """The reference program (what a worked example shows)."""
        body = "".join(f"    # {s}\n    {PRIMITIVES[s][0]}\n" for s in self.steps)
        return f"def f(x):\n{body}    return x\n"

    def __call__(self, x: list[int]) -> list[int]:
        for step in self.steps:
            x = list(PRIMITIVES[step][1](x))
        return x


def all_specs(lengths: Sequence[int]) -> list[Spec]:
    """Every pipeline of distinct primitives with a length in `lengths`, in a fixed order."""
    names = sorted(PRIMITIVES)
    return [Spec(steps) for n in lengths for steps in itertools.permutations(names, n)]


def test_inputs(count: int, rng: np.random.Generator) -> list[list[int]]:
    """Lists that tell the primitives apart: repeats, negatives, odd and even, unsorted."""
    inputs = []
    for _ in range(count):
        size = int(rng.integers(3, 8))
        inputs.append([int(v) for v in rng.integers(-9, 10, size)])
    return inputs


def extract_program(completion: str) -> str:
    """The completion up to and including the `return` line (what the sandbox runs)."""
    lines = completion.split("\n")
    kept = []
    for line in lines:
        kept.append(line)
        if line.strip().startswith("return"):
            break
    return "\n".join(kept) + "\n"
