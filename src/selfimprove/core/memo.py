"""A one-slot memo for what a run builds once and all its arms share (a distillation teacher,
a collapse study's generation-0 model): the value of the newest key, rebuilt when the key
changes. A pure function's cache: a resumed run simply builds it again."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Newest(Generic[K, V]):
    """Holds one (key, value) pair; `get` builds the value for a key it does not hold."""

    def __init__(self) -> None:
        self._entry: tuple[K, V] | None = None

    def get(self, key: K, build: Callable[[], V]) -> V:
        if self._entry is None or self._entry[0] != key:
            self._entry = (key, build())
        return self._entry[1]


class SharedDraw(Generic[K, V]):
    """A `Newest` for work that draws from a random stream (a generation-0 model every arm
    of a run shares): the stream's state is part of the key, and a value taken from the memo
    leaves the stream where building it would have, so every arm sees the same draws."""

    def __init__(self) -> None:
        self._memo: Newest[tuple[K, str], tuple[V, Mapping[str, Any]]] = Newest()

    def get(self, key: K, rng: np.random.Generator, build: Callable[[], V]) -> V:
        value, state = self._memo.get(
            (key, repr(rng.bit_generator.state)), lambda: (build(), rng.bit_generator.state)
        )
        rng.bit_generator.state = state  # as if built here
        return value
