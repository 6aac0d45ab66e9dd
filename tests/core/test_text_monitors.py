"""Text monitors: known values on hand-made corpora."""

from __future__ import annotations

import math
import random

import pytest

from selfimprove.core.text_monitors import WordIndex, compression_ratio, self_bleu, words


def test_words_split_lowercase_words_and_punctuation() -> None:
    assert words("O Romeo, Romeo! wherefore art thou's") == [
        "o",
        "romeo",
        ",",
        "romeo",
        "!",
        "wherefore",
        "art",
        "thou's",
    ]


def test_distinct_n_counts_ngrams_inside_documents_only() -> None:
    docs = [["a", "b", "a", "b"], ["a", "b"]]
    corpus = WordIndex.of(docs).encode(docs)
    assert corpus.distinct(1) == pytest.approx(2 / 6)
    # bigrams: ab, ba, ab | ab (none across the boundary "b a")
    assert corpus.distinct(2) == pytest.approx(2 / 4)
    assert corpus.distinct(3) == pytest.approx(2 / 2)


def test_unknown_words_get_their_own_ids_and_count_as_novel() -> None:
    index = WordIndex.of([["the", "the", "king"]])
    assert index.vocabulary == ("the", "king")
    corpus = index.encode([["the", "queen", "queen", "jester"]])
    assert corpus.vocabulary_size() == 3
    assert corpus.novel_share() == pytest.approx(3 / 4)


def test_rare_ngrams_and_their_coverage() -> None:
    real = [["a", "a", "a", "b", "c"]]
    index = WordIndex.of(real)
    rare = index.encode(real).rare(1, max_count=1)  # b and c, seen once each
    assert sorted(index.vocabulary[i] for i in rare) == ["b", "c"]
    assert index.encode([["a", "b", "a"]]).coverage(1, rare) == pytest.approx(0.5)
    assert index.encode([["a", "a"]]).coverage(1, rare) == 0.0


def test_self_bleu_of_copies_is_one_and_of_disjoint_documents_is_zero() -> None:
    doc = ["the", "king", "is", "dead", "long", "live", "the", "king"]
    assert self_bleu([doc, list(doc), list(doc)]) == pytest.approx(1.0)
    assert self_bleu([["a", "b", "c", "d"], ["e", "f", "g", "h"]]) == 0.0


def test_self_bleu_matches_a_hand_computed_value() -> None:
    # Each document is the other's only reference, both of length 4 (no brevity penalty).
    # "a b c d" vs "x b c d": unigrams b, c, d match: 3/4 (unsmoothed); bigrams "b c",
    # "c d": (2 + 1)/(3 + 1); trigram "b c d": (1 + 1)/(2 + 1); 4-gram none: (0 + 1)/(1 + 1).
    a, b = ["a", "b", "c", "d"], ["x", "b", "c", "d"]
    expected = math.exp((math.log(3 / 4) + math.log(3 / 4) + math.log(2 / 3) + math.log(1 / 2)) / 4)
    assert self_bleu([a, b]) == pytest.approx(expected)


def test_compression_ratio_is_lower_for_repetitive_text() -> None:
    rng = random.Random(0)
    varied = " ".join("".join(rng.choice("abcdefghij") for _ in range(5)) for _ in range(400))
    repeated = "am i " * 480
    assert compression_ratio(repeated) < 0.05 < compression_ratio(varied)
