"""Monitors of generated text: diversity, repetition and the tail of the real vocabulary.

A corpus is a list of documents; the monitors work on word ids (`WordIndex` maps words to
ids, giving words it has never seen fresh ids past the real vocabulary), so a million-word
corpus costs a few numpy calls. n-grams never cross a document boundary. Higher values mean
more diverse text, except `self_bleu` (higher: the documents repeat each other).
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*|[^\sa-z]")
_BITS = 20  # word ids below 2^20, so a 3-gram packs into one int64


def words(text: str) -> list[str]:
    """Lower-cased words (with inner apostrophes) and single punctuation marks."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class WordIndex:
    """Word -> id for a real vocabulary (ids 0..V-1, most frequent first)."""

    vocabulary: tuple[str, ...]

    @classmethod
    def of(cls, documents: Iterable[Sequence[str]]) -> WordIndex:
        counts = Counter(w for doc in documents for w in doc)
        ordered = sorted(counts, key=lambda w: (-counts[w], w))
        if len(ordered) >= 2**_BITS // 2:
            raise ValueError(f"a vocabulary of {len(ordered)} words is too large")
        return cls(tuple(ordered))

    def encode(self, documents: Sequence[Sequence[str]]) -> Corpus:
        """Flat ids with document numbers; unknown words get ids from V on, one per word."""
        ids = {w: i for i, w in enumerate(self.vocabulary)}
        novel: dict[str, int] = {}
        flat, doc = [], []
        for number, words_of_doc in enumerate(documents):
            for w in words_of_doc:
                known = ids.get(w)
                flat.append(
                    known if known is not None else novel.setdefault(w, len(ids) + len(novel))
                )
            doc.extend([number] * len(words_of_doc))
        return Corpus(np.asarray(flat, dtype=np.int64), np.asarray(doc, dtype=np.int64), len(ids))


@dataclass(frozen=True)
class Corpus:
    """Word ids `[T]`, the document of each `[T]`, and the real vocabulary's size."""

    ids: np.ndarray
    doc: np.ndarray
    known: int

    def ngram_codes(self, n: int) -> np.ndarray:
        """One int64 per n-gram (n <= 3) that lies inside one document."""
        if n > 3:
            raise ValueError("n-gram codes pack at most 3 words")
        size = self.ids.size - n + 1
        if size <= 0:
            return np.zeros(0, dtype=np.int64)
        codes = self.ids[:size].copy()
        for k in range(1, n):
            codes = (codes << _BITS) | self.ids[k : k + size]
        same_doc = self.doc[:size] == self.doc[n - 1 : n - 1 + size]
        picked: np.ndarray = codes[same_doc]
        return picked

    def distinct(self, n: int) -> float:
        """Distinct n-grams over all n-grams (distinct-n, Li et al. 2016)."""
        codes = self.ngram_codes(n)
        return np.unique(codes).size / codes.size if codes.size else 0.0

    def vocabulary_size(self) -> int:
        return int(np.unique(self.ids).size)

    def novel_share(self) -> float:
        """Share of word tokens that are not in the real vocabulary."""
        return float((self.ids >= self.known).mean()) if self.ids.size else 0.0

    def rare(self, n: int, max_count: int) -> np.ndarray:
        """Codes of the n-grams seen at least once and at most `max_count` times."""
        codes, counts = np.unique(self.ngram_codes(n), return_counts=True)
        return codes[counts <= max_count]

    def coverage(self, n: int, targets: np.ndarray) -> float:
        """Share of `targets` (n-gram codes, e.g. a real corpus's rare ones) produced here."""
        if targets.size == 0:
            return math.nan
        return float(np.isin(targets, self.ngram_codes(n)).mean())


def compression_ratio(text: str) -> float:
    """Compressed size over raw size (zlib level 9): lower means more repetitive text."""
    raw = text.encode()
    return len(zlib.compress(raw, 9)) / len(raw) if raw else 0.0


def self_bleu(documents: Sequence[Sequence[object]], max_n: int = 4) -> float:
    """Mean BLEU-`max_n` of each document against all the others as references (Zhu et al.
    2018, Texygen): 1 when every document copies another, near 0 for unrelated text.

    Clipped n-gram precisions, geometric mean with add-one smoothing for n > 1 (Lin and Och
    2004), brevity penalty against the closest other length. The clip count of an n-gram is
    its largest count in any *other* document: the two largest counts per n-gram give it for
    every document in one pass.
    """
    if len(documents) < 2:
        raise ValueError("self-BLEU needs at least two documents")
    counts = [[Counter(_tuples(doc, n)) for n in range(1, max_n + 1)] for doc in documents]
    top = [_two_largest(doc_counts[n] for doc_counts in counts) for n in range(max_n)]
    lengths = [len(doc) for doc in documents]
    scores = []
    for index, doc in enumerate(documents):
        log_precision = 0.0
        for n in range(max_n):
            own = counts[index][n]
            total = sum(own.values())
            clipped = sum(min(c, _largest_other(top[n][g], index)) for g, c in own.items())
            smooth = 1 if n > 0 else 0
            if clipped + smooth == 0:
                log_precision = -math.inf
                break
            log_precision += math.log((clipped + smooth) / (total + smooth)) / max_n
        others = lengths[:index] + lengths[index + 1 :]
        reference = min(others, key=lambda length: (abs(length - len(doc)), length))
        penalty = 0.0 if len(doc) >= reference or not doc else 1 - reference / len(doc)
        scores.append(math.exp(log_precision + penalty))
    return sum(scores) / len(scores)


def _tuples(doc: Sequence[object], n: int) -> list[tuple[object, ...]]:
    return [tuple(doc[i : i + n]) for i in range(len(doc) - n + 1)]


def _two_largest(
    per_document: Iterable[Counter[tuple[object, ...]]],
) -> dict[tuple[object, ...], tuple[int, int, int]]:
    """n-gram -> (largest count, the document holding it, second-largest count)."""
    best: dict[tuple[object, ...], tuple[int, int, int]] = {}
    for index, doc_counts in enumerate(per_document):
        for g, c in doc_counts.items():
            first, holder, second = best.get(g, (0, -1, 0))
            if c > first:
                best[g] = (c, index, first)
            elif c > second:
                best[g] = (first, holder, c)
    return best


def _largest_other(entry: tuple[int, int, int], index: int) -> int:
    first, holder, second = entry
    return second if holder == index else first
