"""The "did you mean" of every user-facing name: a mistyped command, flag, config key,
experiment kind, recipe or metric. Imports nothing heavy (the CLI's parser uses it)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest of `known`, or nothing when none is close."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
