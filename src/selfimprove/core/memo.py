"""A one-slot memo for what a run builds once and all its arms share (a distillation teacher,
a collapse study's generation-0 model): the value of the newest key, rebuilt when the key
changes. A pure function's cache: a resumed run simply builds it again."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

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
