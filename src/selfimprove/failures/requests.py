"""Labelled requests, the data both failure loops (`shift.py`, `forgetting.py`) train on,
and what the two loops share: real users' requests, what an arm's stages read (`Setup`),
the fine-tuning stage, the fixed probe sets a model is measured on, and the label-free
monitors.

A `Requests` holds every seed's requests side by side (seeds may hold different numbers, as
after a confidence filter). `labels` is what training reads: the true intent for real data,
the labeller's guess for self-labelled data; `intents` is the truth, read only by metrics
(a self-labelled item's label error) and never by `train`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
from pydantic import Field
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer  # type: ignore[import-untyped]

from selfimprove.core import monitors
from selfimprove.core.config import LoopConfig
from selfimprove.core.records import Metrics, Provenance, Sample
from selfimprove.core.snapshot import TRANSIENT
from selfimprove.failures import commands
from selfimprove.failures.classifier import Classifier, TrainSettings, featurize, fit, probs
from selfimprove.failures.noise import NoiseModel, corrupt

NGRAM_BUCKETS = 2**12  # character 3-grams hashed for the distance monitor
PER_REQUEST = 2000
"""Bytes one request takes with its cached features (text, ~100 n-grams, ~30 3-grams)."""
NO_GATE = "no gate: the study measures the loop without one (alarms may guard it)"
C = TypeVar("C")
A = TypeVar("A")
P = TypeVar("P")


class UsersLoopConfig(LoopConfig):
    """What the shift and forgetting loops share: replicates, how real users write, and how
    the classifier is fitted."""

    generations: int = Field(10, ge=0, description="generations after generation 0")
    checkpoint_every: int = Field(
        0, ge=0, description="snapshot every N generations (0: a resume replays, in seconds)"
    )
    num_seeds: int = Field(5, ge=1, le=100, description="independent replicates per arm")
    informal_share: float = Field(
        0.4, ge=0, le=1, description="share of real users' requests phrased informally"
    )
    users: NoiseModel = Field(NoiseModel(), description="how real users type")
    train: TrainSettings = Field(TrainSettings(), description="the classifier's fitting")


@dataclass(frozen=True, eq=False)
class Requests:
    """Requests of every seed: `texts[s][i]`, `labels[s][i]`, `intents[s][i]`.

    `cache` memoizes each seed's hashed features (the classifier's, and the 3-grams of the
    distance monitor), so a request is hashed once however often it is trained on or
    measured; it is never snapshotted, and `take` carries the rows it keeps.
    """

    texts: tuple[tuple[str, ...], ...]
    labels: tuple[np.ndarray, ...]  # int64 [N_s] each: what training reads
    intents: tuple[np.ndarray, ...]  # int64 [N_s] each: the truth (never trained on)
    confidence: tuple[np.ndarray, ...]  # float64 [N_s] each: the labeller's probability
    cache: dict[tuple[int, int], sparse.csr_matrix] = field(
        default_factory=dict, repr=False, metadata={TRANSIENT: True}
    )

    @property
    def num_samples(self) -> int:
        """Requests over every seed (what the store counts)."""
        return sum(len(t) for t in self.texts)

    def features(self, seed: int, buckets: int) -> sparse.csr_matrix:
        """`[N_s, buckets]` one seed's hashed character n-grams: the classifier's input for
        `buckets` = its `features`, the distance monitor's 3-gram counts for NGRAM_BUCKETS."""
        key = (seed, buckets)
        if key not in self.cache:
            texts = self.texts[seed]
            made = ngram_counts(texts) if buckets == NGRAM_BUCKETS else featurize(texts, buckets)
            self.cache[key] = made
        return self.cache[key]

    def take(self, picks: Sequence[np.ndarray]) -> Requests:
        """Each seed's requests at `picks[s]` (an index array)."""
        out = Requests(
            tuple(tuple(t[i] for i in p) for t, p in zip(self.texts, picks, strict=True)),
            tuple(a[p] for a, p in zip(self.labels, picks, strict=True)),
            tuple(a[p] for a, p in zip(self.intents, picks, strict=True)),
            tuple(a[p] for a, p in zip(self.confidence, picks, strict=True)),
        )
        for (seed, buckets), matrix in self.cache.items():
            out.cache[seed, buckets] = matrix[picks[seed]]
        return out


Kept = tuple[Sample[Requests], ...]
"""What a generation keeps and trains on: its parts (synthetic or new requests, and real or
replayed ones drawn from generation 0's), each with its provenance."""


@dataclass(frozen=True)
class Setup(Generic[C, A, P]):
    """What every stage of one arm reads: the run's config, the arm's settings, and the
    probes drawn once for every arm (common random numbers)."""

    config: C
    arm: A
    probes: P


def labelled(texts: Sequence[Sequence[str]], intents: Sequence[np.ndarray]) -> Requests:
    """Requests with their true labels (real data)."""
    return Requests(
        tuple(tuple(t) for t in texts),
        tuple(intents),
        tuple(intents),
        tuple(np.ones(len(i)) for i in intents),
    )


def user_requests(
    population: UsersLoopConfig,
    intents: np.ndarray,
    test: bool,
    rng: np.random.Generator,
    every: bool = False,
) -> list[str]:
    """Requests as real users type them: informal phrasing at `informal_share`, then the
    users' noise (`every`: every request messy); from the held-out partition when `test`."""
    written = commands.write(intents, test, rng, informal=population.informal_share)
    return corrupt(written, population.users, rng, every)[0]


def joined(
    kept: Sequence[Sample[Requests]], seed: int, buckets: int
) -> tuple[sparse.csr_matrix, np.ndarray]:
    """One seed's features `[N, buckets]` and labels `[N]` over every part of the kept data."""
    x = sparse.vstack([part.content.features(seed, buckets) for part in kept], format="csr")
    labels = np.concatenate([part.content.labels[seed] for part in kept])
    return x, labels.astype(np.int64)


def fit_kept(
    start: Classifier,
    kept: Kept,
    settings: TrainSettings,
    rng: np.random.Generator,
    epochs: int | None = None,
) -> Classifier:
    """`start` fine-tuned, seed by seed, on the labels of every kept part (never `intents`)."""
    data = [joined(kept, seed, settings.features) for seed in range(start.num_seeds)]
    return fit(start, data, settings, rng, epochs)


@dataclass(frozen=True)
class FineTune:
    """The train stage of both loops: the incumbent fine-tuned on what was kept (warm start:
    what the new data no longer shows fades step by step)."""

    settings: TrainSettings

    def __call__(self, incumbent: Classifier, kept: Kept, rng: np.random.Generator) -> Classifier:
        return fit_kept(incumbent, kept, self.settings, rng)


def texts_of(kept: Sequence[Sample[Requests]], seed: int) -> list[str]:
    return [t for part in kept for t in part.content.texts[seed]]


def real_sample(requests: Requests, generation: int, source: str) -> Sample[Requests]:
    return Sample(requests, Provenance("real", generation, source))


@dataclass(frozen=True)
class Probe:
    """A fixed labelled set a model is measured on (never trained on)."""

    texts: tuple[str, ...]
    x: sparse.csr_matrix  # [N, F]
    intents: np.ndarray  # int64 [N]

    @classmethod
    def of(cls, texts: Sequence[str], intents: np.ndarray, features: int) -> Probe:
        return cls(tuple(texts), featurize(texts, features), intents)

    def accuracy(self, model: Classifier) -> np.ndarray:
        """`[S]` each seed's accuracy."""
        return np.array(
            [
                np.mean(probs(model, s, self.x).argmax(1) == self.intents)
                for s in range(model.num_seeds)
            ]
        )


@dataclass(frozen=True)
class Traffic:
    """An unlabelled sample of real users' requests, as an operator could log it: what the
    label-free monitors compare a model and its training data with."""

    texts: tuple[str, ...]
    x: sparse.csr_matrix  # [N, F]
    ngrams: np.ndarray  # float64 [NGRAM_BUCKETS]: character 3-gram distribution
    word_counts: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, texts: Sequence[str], features: int) -> Traffic:
        counts: dict[str, int] = {}
        for text in texts:
            for w in text.lower().split():
                counts[w] = counts.get(w, 0) + 1
        return cls(
            tuple(texts),
            featurize(texts, features),
            distribution(ngram_counts(texts)),
            tuple(sorted(counts.items())),
        )

    def unsure_share(self, model: Classifier, below: float) -> np.ndarray:
        """`[S]` share of the traffic each seed's model gives no intent `below` or more."""
        return np.array(
            [np.mean(probs(model, s, self.x).max(1) < below) for s in range(model.num_seeds)]
        )

    def ngram_js(self, counts: sparse.csr_matrix) -> float:
        """Jensen-Shannon divergence (nats) between the character 3-grams of some texts
        (their `ngram_counts`) and the traffic's."""
        p = distribution(counts)[None]
        return float(monitors.js_divergence(p, self.ngrams[None])[0])

    def word_coverage(self, texts: Sequence[str]) -> float:
        """Share of the traffic's words (counted with repeats) that occur in `texts`."""
        seen = {w for text in texts for w in text.lower().split()}
        total = sum(c for _, c in self.word_counts)
        return sum(c for w, c in self.word_counts if w in seen) / total


def ngram_counts(texts: Sequence[str]) -> sparse.csr_matrix:
    """`[N, NGRAM_BUCKETS]` counts of each text's hashed character 3-grams (lowercased)."""
    vectorizer = HashingVectorizer(
        analyzer="char_wb",
        ngram_range=(3, 3),
        n_features=NGRAM_BUCKETS,
        alternate_sign=False,
        norm=None,
    )
    if not texts:  # a filter may keep nothing; the vectorizer cannot transform no texts
        return sparse.csr_matrix((0, NGRAM_BUCKETS))
    counts: sparse.csr_matrix = vectorizer.transform(texts)
    return counts


def distribution(counts: sparse.csr_matrix) -> np.ndarray:
    """`[NGRAM_BUCKETS]` the share of each 3-gram bucket over every row of `counts`."""
    total = np.asarray(counts.sum(axis=0)).ravel()
    return total / total.sum() if total.sum() else np.full(NGRAM_BUCKETS, 1.0 / NGRAM_BUCKETS)


def spread(key: str, values: np.ndarray) -> Metrics:
    """Mean over seeds and its 95% interval (mean +- 1.96 standard errors)."""
    mean = float(values.mean())
    error = 1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return {f"{key}_mean": mean, f"{key}_low": mean - error, f"{key}_high": mean + error}
