"""How real users type: the messy tail that canonical text lacks.

A share `messy_share` of utterances is messy; in a messy one, in this order:

1. slang: each phrase or word with an informal form (`PHRASES`, `SLANG`: "going to" ->
   "gonna", "please" -> "pls", "music" -> "tunes", "light" -> "lite", "to" -> "2") is
   replaced with probability `slang_rate`, by one of its forms at random;
2. typos: each word of three letters or more gets one keyboard typo with probability
   `typo_rate`: a QWERTY neighbour struck instead of a letter, a letter dropped, a letter
   struck twice, or two neighbouring letters swapped (each a quarter of typos; the letter
   is uniform over the word);
3. case: with probability `case_rate` the utterance is typed ALL CAPS, Title Case, or with
   a Capital first (a third each); the featurizer lowercases, so case alone costs a
   classifier nothing (it is here because real traffic has it, and a test says so).

Why our own model and not a library: nlpaug's KeyboardAug draws from Python's and numpy's
global random state (its maintainers declined a seed, makcedward/nlpaug#6), and textnoisr,
seedable per instance, strikes uniformly random letters rather than neighbouring keys and
has no slang; every draw here comes from the stage's `np.random.Generator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from selfimprove.core.config import ConfigModel

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_SHIFT = (0.0, 0.25, 0.75)  # how far each row sits to the right of the one above, in keys


def _neighbours() -> dict[str, str]:
    """Keys whose centres lie within 1.3 key widths of a key's, on a staggered QWERTY board."""
    where = {k: (r, c + _SHIFT[r]) for r, row in enumerate(_ROWS) for c, k in enumerate(row)}
    near = {}
    for key, (r, x) in where.items():
        near[key] = "".join(
            k for k, (r2, x2) in where.items() if k != key and (r - r2) ** 2 + (x - x2) ** 2 < 1.7
        )
    return near


NEIGHBOURS = _neighbours()
SLANG: dict[str, tuple[str, ...]] = {
    "please": ("pls", "plz"),
    "lights": ("lites", "lightz"),
    "light": ("lite",),
    "music": ("tunes", "jams"),
    "temperature": ("temp",),
    "thermostat": ("thermo",),
    "volume": ("vol",),
    "message": ("msg",),
    "text": ("txt",),
    "tomorrow": ("tmrw", "tmr"),
    "tonight": ("tonite", "2nite"),
    "you": ("u",),
    "your": ("ur",),
    "to": ("2",),
    "for": ("4",),
    "minutes": ("mins",),
    "seconds": ("secs",),
    "phone": ("fone", "cell"),
    "taxi": ("cab", "uber"),
    "alarm": ("alrm",),
    "weather": ("wx",),
    "mom": ("mum", "ma"),
    "what": ("wat", "wut"),
    "bathroom": ("loo",),
    "call": ("ring",),
    "shopping": ("shoppin",),
    "the": ("da",),
}
PHRASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("going", "to"): ("gonna",),
    ("want", "to"): ("wanna",),
    ("i", "am"): ("im", "i'm"),
    ("living", "room"): ("lounge",),
    ("what", "is"): ("whats", "what's"),
}
TYPOS = ("neighbour", "drop", "double", "swap")
_STANDARD = {form: word for word, forms in SLANG.items() for form in forms} | {
    form: " ".join(pair) for pair, forms in PHRASES.items() for form in forms
}


def standard(text: str) -> str:
    """`text` with every informal form spelled out ("ring mom" -> "call mom", "im" -> "i am"):
    the same for a text and every spelling the slang step can make of it, so the held-out
    partition (`failures/commands.py`) can keep a request and its slang spellings together."""
    return " ".join(_STANDARD.get(word, word) for word in text.split(" "))


class NoiseModel(ConfigModel):
    """How real users' requests differ from canonical text (`failures/noise.py`)."""

    messy_share: float = Field(0.5, ge=0, le=1, description="share of utterances with any noise")
    slang_rate: float = Field(
        0.7,
        ge=0,
        le=1,
        description="in a messy utterance, the chance each word or phrase with an informal "
        "form is replaced by one",
    )
    typo_rate: float = Field(
        0.15,
        ge=0,
        le=1,
        description="in a messy utterance, the chance each word of 3+ letters gets one typo",
    )
    case_rate: float = Field(
        0.3, ge=0, le=1, description="in a messy utterance, the chance it is typed in odd case"
    )


@dataclass(frozen=True)
class Tally:
    """What the noise did to a set of utterances, for checking its rates."""

    utterances: int = 0
    messy: int = 0
    slang_places: int = 0  # words or phrases with an informal form, in messy utterances
    slang: int = 0
    typo_places: int = 0  # words of 3+ letters after slang, in messy utterances
    typos: int = 0
    cased: int = 0


def corrupt(
    texts: Sequence[str], noise: NoiseModel, rng: np.random.Generator, every: bool = False
) -> tuple[list[str], Tally]:
    """The texts as real users would type them (`every`: every one messy)."""
    out, tally = [], np.zeros(7, dtype=np.int64)
    messy = rng.random(len(texts)) < (1.0 if every else noise.messy_share)  # [N]
    for text, is_messy in zip(texts, messy.tolist(), strict=True):
        if not is_messy:
            out.append(text)
            continue
        words, places, swapped = _slang(text.split(" "), noise.slang_rate, rng)
        words, typo_places, typos = _typos(words, noise.typo_rate, rng)
        cased = bool(rng.random() < noise.case_rate)
        joined = " ".join(words)
        out.append(_case(joined, int(rng.integers(3))) if cased else joined)
        tally += (0, 1, places, swapped, typo_places, typos, cased)
    tally[0] = len(texts)
    return out, Tally(*(int(v) for v in tally))


def _slang(words: list[str], rate: float, rng: np.random.Generator) -> tuple[list[str], int, int]:
    out, places, swapped, i = [], 0, 0, 0
    while i < len(words):
        pair = (words[i], words[i + 1]) if i + 1 < len(words) else None
        forms = PHRASES.get(pair) if pair is not None else None
        step = 2
        if forms is None:
            forms, step = SLANG.get(words[i]), 1
        if forms is None:
            out.append(words[i])
            i += 1
            continue
        places += 1
        u = rng.random(2)
        if u[0] < rate:
            out.append(forms[int(u[1] * len(forms))])
            swapped += 1
        else:
            out.extend(words[i : i + step])
        i += step
    return out, places, swapped


def _typos(words: list[str], rate: float, rng: np.random.Generator) -> tuple[list[str], int, int]:
    out, places, typos = [], 0, 0
    for word in words:
        if len(word) < 3 or not word.isalpha():
            out.append(word)
            continue
        places += 1
        u = rng.random(3)  # whether, which kind, where
        if u[0] >= rate:
            out.append(word)
            continue
        typos += 1
        out.append(typo(word, TYPOS[int(u[1] * 4)], int(u[2] * len(word)), rng))
    return out, places, typos


def typo(word: str, kind: str, at: int, rng: np.random.Generator) -> str:
    """One keyboard typo of `kind` at letter `at` (a swap takes `at` and the next letter, or
    the one before at the end)."""
    match kind:
        case "neighbour":
            near = NEIGHBOURS.get(word[at], word[at])
            return word[:at] + near[int(rng.integers(len(near)))] + word[at + 1 :]
        case "drop":
            return word[:at] + word[at + 1 :]
        case "double":
            return word[: at + 1] + word[at:]
        case "swap":
            at = min(at, len(word) - 2)
            return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    raise ValueError(f"unknown typo {kind!r}")


def _case(text: str, style: int) -> str:
    return (text.upper(), text.title(), text.capitalize())[style]
