"""E9: a word-bigram language model trained, generation after generation, on its own text.

Generation 0 counts the bigrams of real Shakespeare (training plays only); each later
generation samples a corpus the size of the training set from the incumbent, at the arm's
temperature and top-p, and the data policy decides what the next model counts. Sampling
uses the unsmoothed counts, so a word or bigram the model never produced is gone for good;
held-out cross-entropy is measured with the counts interpolated with an add-one unigram
(Jelinek-Mercer), so unseen words cost a finite amount. A generation takes seconds.

Metric keys: `eval/test_nll` (nats per word on the held-out plays), `model/bigrams` (distinct
bigrams the model knows), `monitor/*` (the generated corpus: `collapse.text.RealText`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from selfimprove.collapse.study import PolicyArm, draw_from_pool, policy_pipeline, study_gate
from selfimprove.collapse.text import RealText, TextSplit, spread_windows, text_claims
from selfimprove.core.config import LoopConfig
from selfimprove.core.engine import Arm
from selfimprove.core.experiment import Experiment, Measured
from selfimprove.core.records import Batch, Claim, Evaluation
from selfimprove.core.text_monitors import WordIndex, words
from selfimprove.data import shakespeare


class NgramConfig(LoopConfig):
    """E9: word-bigram model collapse under temperature, top-p and data policies."""

    kind: Literal["collapse.ngram"] = Field(
        "collapse.ngram", description="which experiment this recipe runs"
    )
    arms: tuple[PolicyArm, ...] = Field(
        (PolicyArm(),), min_length=1, description="data policies run side by side"
    )
    text: TextSplit = Field(TextSplit(), description="plays trained on and held out")
    document_words: int = Field(100, ge=4, description="words per document")
    train_documents: int | None = Field(
        None, ge=2, description="documents in the training set (default: every window)"
    )
    interpolation: float = Field(
        0.8, gt=0.0, lt=1.0, description="weight of the bigram counts in held-out scoring"
    )
    checkpoint_every: int = Field(0, ge=0, description="cheap to replay: no snapshots by default")

    def memory_bytes(self) -> int:
        """Word ids and bigram codes (int64, a few copies) of one generation's documents,
        which the corpus bounds (about a million words), kept per generation when an arm
        accumulates."""
        words = min((self.train_documents or 10**6) * self.document_words, 2 * 10**6)
        accumulates = any(arm.policy.keeps_every_generation for arm in self.arms)
        return 8 * 8 * words * (1 + (self.generations if accumulates else 0))


@dataclass(frozen=True)
class Bigram:
    """Sorted bigram codes `prev * V + next` with their counts, and unigram counts `[V]`."""

    codes: np.ndarray
    counts: np.ndarray
    unigram: np.ndarray

    @property
    def vocabulary(self) -> int:
        return int(self.unigram.size)


def count_bigrams(documents: np.ndarray, vocabulary: int) -> Bigram:
    """Counts of `[N, L]` word-id documents (bigrams inside a document only)."""
    pairs = documents[:, :-1].astype(np.int64) * vocabulary + documents[:, 1:]
    codes, counts = np.unique(pairs, return_counts=True)
    unigram = np.bincount(documents.ravel(), minlength=vocabulary)
    return Bigram(codes, counts, unigram)


def nucleus(weights: np.ndarray, rows: np.ndarray, temperature: float, top_p: float) -> np.ndarray:
    """Per row, counts -> probabilities at `temperature`, cut to the top-p nucleus.

    `weights` `[E]` are counts grouped by `rows` `[E]` (non-decreasing row ids). Returns
    probabilities `[E]` summing to 1 within each row; entries outside the nucleus are 0 (the
    most likely entry of a row is always kept, as in the tiny GPT's sampler).
    """
    logw = np.log(weights.astype(np.float64)) / temperature
    start = np.r_[0, np.flatnonzero(np.diff(rows)) + 1]
    row_max = np.maximum.reduceat(logw, start)
    size = np.diff(np.r_[start, rows.size])
    p = np.exp(logw - np.repeat(row_max, size))
    p /= np.repeat(np.add.reduceat(p, start), size)
    if top_p < 1.0:
        order = np.lexsort((-p, rows))  # within each row, most likely first
        ranked = p[order]
        before = np.cumsum(ranked) - ranked
        before -= np.repeat(before[start], size)  # cumulative mass before, within the row
        keep = np.empty_like(ranked, dtype=bool)
        keep[order] = before < top_p
        p = np.where(keep, p, 0.0)
        p /= np.repeat(np.add.reduceat(p, start), size)
    return p


@dataclass(frozen=True)
class Sampler:
    """Inverse-CDF tables of a bigram model at one temperature / top-p, for all rows at once."""

    cdf: np.ndarray  # [E]: row + cumulative probability within the row, in (row, row + 1]
    nexts: np.ndarray  # [E]
    has_row: np.ndarray  # [V]
    start_cdf: np.ndarray  # [V']: the unigram, for document starts and dead ends
    start_words: np.ndarray

    @classmethod
    def of(cls, model: Bigram, temperature: float, top_p: float) -> Sampler:
        vocabulary = model.vocabulary
        rows, nexts = np.divmod(model.codes, vocabulary)
        p = nucleus(model.counts, rows, temperature, top_p)
        start = np.r_[0, np.flatnonzero(np.diff(rows)) + 1]
        within = np.cumsum(p) - np.repeat(
            np.cumsum(p)[start] - p[start], np.diff(np.r_[start, rows.size])
        )
        cdf = rows + within
        cdf[np.r_[start[1:] - 1, rows.size - 1]] = rows[np.r_[start[1:] - 1, rows.size - 1]] + 1.0
        has_row = np.zeros(vocabulary, dtype=bool)
        has_row[rows] = True
        seen = np.flatnonzero(model.unigram)
        q = nucleus(model.unigram[seen], np.zeros(seen.size, dtype=np.int64), temperature, top_p)
        start_cdf = np.cumsum(q)
        start_cdf[-1] = 1.0
        return cls(cdf, nexts, has_row, start_cdf, seen)

    def _starts(self, num: int, rng: np.random.Generator) -> np.ndarray:
        index = np.searchsorted(self.start_cdf, rng.random(num), side="right")
        return self.start_words[np.minimum(index, self.start_words.size - 1)]

    def sample(self, num: int, length: int, rng: np.random.Generator) -> np.ndarray:
        """`num` documents of `length` word ids, `[num, length]`."""
        out = np.empty((num, length), dtype=np.int64)
        out[:, 0] = self._starts(num, rng)
        for position in range(1, length):
            previous = out[:, position - 1]
            u = previous + np.maximum(rng.random(num), 1e-12)
            index = np.minimum(np.searchsorted(self.cdf, u, side="left"), self.cdf.size - 1)
            chosen = self.nexts[index]
            dead = ~self.has_row[previous]  # a word only ever seen last: restart from the unigram
            if dead.any():
                chosen[dead] = self._starts(int(dead.sum()), rng)
            out[:, position] = chosen
        return out


@dataclass(frozen=True)
class ShakespeareWords:
    """The real text as word-id documents, and the family's fit and sample (S = 1)."""

    train: np.ndarray  # [N, L]
    test: np.ndarray  # [M, L]
    real: RealText
    top_p: float

    @property
    def vocabulary(self) -> int:
        return len(self.real.index.vocabulary) + 1  # the last id stands for unknown words

    def draw_real(self, num_seeds: int, num: int, rng: np.random.Generator) -> np.ndarray:
        return draw_from_pool(self.train, num_seeds, num, rng)

    def sample(
        self, model: Bigram, num: int, temperature: float, rng: np.random.Generator
    ) -> np.ndarray:
        docs = Sampler.of(model, temperature, self.top_p).sample(num, self.train.shape[1], rng)
        return docs[None]

    def fit(
        self, batches: Sequence[Batch], incumbent: Bigram | None, rng: np.random.Generator
    ) -> Bigram:
        del rng  # the fit is deterministic
        del incumbent
        documents = np.concatenate([b.data[0] for b in batches], axis=0)
        return count_bigrams(documents, self.vocabulary)

    def texts(self, documents: np.ndarray) -> list[list[str]]:
        vocabulary = self.real.index.vocabulary
        return [
            [vocabulary[i] if i < len(vocabulary) else "<unk>" for i in doc] for doc in documents
        ]


def held_out_nll(model: Bigram, documents: np.ndarray, weight: float) -> float:
    """Mean negative log-likelihood per word (nats) of `[M, L]` documents under the counts
    interpolated with an add-one unigram."""
    vocabulary = model.vocabulary
    unigram = (model.unigram + 1.0) / (model.unigram.sum() + vocabulary)
    rows = model.codes // vocabulary
    row_total = np.bincount(rows, weights=model.counts, minlength=vocabulary)
    previous, following = documents[:, :-1].ravel(), documents[:, 1:].ravel()
    pairs = previous.astype(np.int64) * vocabulary + following
    where = np.minimum(np.searchsorted(model.codes, pairs), model.codes.size - 1)
    count = np.where(model.codes[where] == pairs, model.counts[where], 0)
    total = row_total[previous]
    bigram = np.divide(count, total, out=np.zeros(count.shape), where=total > 0)
    lam = np.where(total > 0, weight, 0.0)
    p = lam * bigram + (1 - lam) * unigram[following]
    first = unigram[documents[:, 0]]
    return float(-(np.log(p).sum() + np.log(first).sum()) / documents.size)


@dataclass(frozen=True)
class EvaluateNgram:
    family: ShakespeareWords
    temperature: float
    budget: int
    weight: float

    def __call__(self, model: Bigram, generation: int, rng: np.random.Generator) -> Evaluation:
        del generation
        docs = self.family.sample(model, self.budget, self.temperature, rng)[0]
        texts = self.family.texts(docs)
        metrics = {
            "eval/test_nll": held_out_nll(model, self.family.test, self.weight),
            "model/bigrams": float(model.codes.size),
            "model/words": float(np.count_nonzero(model.unigram)),
        } | self.family.real.metrics(texts, "\n".join(" ".join(t) for t in texts))
        return Evaluation(metrics, {"samples": [" ".join(t) for t in texts[:3]]})


def shakespeare_words(config: NgramConfig, top_p: float) -> ShakespeareWords:
    """Training documents spread over the training plays; every window of the test plays."""
    split = config.text
    train_words = words(shakespeare.corpus(split.training_plays()))
    index = WordIndex.of([train_words])
    unknown = len(index.vocabulary)
    lookup = {w: i for i, w in enumerate(index.vocabulary)}
    length = config.document_words
    train = spread_windows(
        np.array([lookup[w] for w in train_words]), length, config.train_documents
    )
    test_words = words(shakespeare.corpus(split.test_plays))
    test = spread_windows(np.array([lookup.get(w, unknown) for w in test_words]), length, None)
    real = RealText.of([[index.vocabulary[i] for i in doc] for doc in train], split, index)
    return ShakespeareWords(train, test, real, top_p)


def build_arms(config: NgramConfig) -> list[Arm]:
    shared = shakespeare_words(config, 1.0)  # read and index the plays once per run
    arms = []
    for arm in config.arms:
        family = dataclasses.replace(shared, top_p=arm.policy.top_p)
        budget = family.train.shape[0]
        evaluate = EvaluateNgram(family, arm.policy.temperature, budget, config.interpolation)
        pipeline = policy_pipeline(family, arm.policy, 1, budget, evaluate, study_gate(config))
        arms.append(Arm(arm.label(), pipeline))
    return arms


def ngram_claims(config: NgramConfig, measured: Measured) -> list[Claim]:
    return text_claims(config.arms, measured.metrics, "nats per word")


EXPERIMENT = Experiment(NgramConfig, build_arms, ngram_claims)
