"""A linear intent classifier on hashed character n-grams, one per seed.

Features: scikit-learn's `HashingVectorizer` (character 2- to 4-grams inside word
boundaries, lowercased, each row scaled to unit length) into `features` buckets. It is
stateless, so the model is its weights alone: softmax regression, `weights [S, F, C]` and
`bias [S, C]` for S seeds, F buckets and C intents, as plain arrays a snapshot holds.

Training is minibatch SGD on the cross-entropy with weight decay, warm-started from the
incumbent: a successor is the incumbent fine-tuned on its new data, so what the new data
no longer shows (a slang word, a typo's n-grams) fades step by step instead of vanishing at
once. Weight decay shrinks every weight a little each step, the unused ones included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer  # type: ignore[import-untyped]

from selfimprove.core.config import ConfigModel


class TrainSettings(ConfigModel):
    """How a classifier is fitted (the same at generation 0 and after)."""

    features: int = Field(
        2**14, ge=64, le=2**20, description="hash buckets for character n-grams (F)"
    )
    epochs: int = Field(10, ge=1, le=100, description="passes over a later generation's data")
    initial_epochs: int = Field(
        30,
        ge=1,
        le=1000,
        description="passes over generation 0's data, fitted from zero (to convergence, as a "
        "model in service would be)",
    )
    batch_size: int = Field(64, ge=1, le=100_000, description="examples per SGD step")
    learning_rate: float = Field(5.0, gt=0, le=100, description="SGD step size")
    weight_decay: float = Field(
        1e-4, ge=0, lt=1, description="L2 penalty: each step multiplies weights by 1 - lr * this"
    )


@dataclass(frozen=True)
class Classifier:
    """Softmax regression per seed on hashed n-grams."""

    weights: np.ndarray  # float64 [S, F, C]
    bias: np.ndarray  # float64 [S, C]

    @property
    def num_seeds(self) -> int:
        return int(self.weights.shape[0])


def blank(num_seeds: int, features: int, classes: int) -> Classifier:
    return Classifier(np.zeros((num_seeds, features, classes)), np.zeros((num_seeds, classes)))


def featurize(texts: Sequence[str], features: int) -> sparse.csr_matrix:
    """`[N, F]` unit-length rows of hashed character 2-4-gram counts."""
    vectorizer = HashingVectorizer(
        analyzer="char_wb",
        ngram_range=(2, 4),
        n_features=features,
        alternate_sign=False,
        lowercase=True,
        norm="l2",
    )
    if not texts:  # a filter may keep nothing; the vectorizer cannot transform no texts
        return sparse.csr_matrix((0, features))
    matrix: sparse.csr_matrix = vectorizer.transform(texts)
    return matrix


def probs(model: Classifier, seed: int, x: sparse.csr_matrix) -> np.ndarray:
    """`[N, C]` intent probabilities of one seed's classifier."""
    logits = np.asarray(x @ model.weights[seed]) + model.bias[seed]  # [N, C]
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def fit(
    start: Classifier,
    data: Sequence[tuple[sparse.csr_matrix, np.ndarray]],
    settings: TrainSettings,
    rng: np.random.Generator,
    epochs: int | None = None,
) -> Classifier:
    """Each seed's classifier fine-tuned from `start` on its own `(x [N, F], labels [N])`
    for `epochs` passes (default: the settings' `epochs`); `start` is not changed."""
    weights, bias = start.weights.copy(), start.bias.copy()
    for seed, (x, labels) in enumerate(data):
        _sgd(weights[seed], bias[seed], x, labels, settings, epochs or settings.epochs, rng)
    return Classifier(weights, bias)


def _sgd(
    w: np.ndarray,
    b: np.ndarray,
    x: sparse.csr_matrix,
    labels: np.ndarray,
    settings: TrainSettings,
    epochs: int,
    rng: np.random.Generator,
) -> None:
    """Minibatch SGD on softmax cross-entropy, in place on one seed's `w [F, C]`, `b [C]`."""
    n, lr = x.shape[0], settings.learning_rate
    if n == 0:
        return
    shrink = 1.0 - lr * settings.weight_decay
    onehot = np.eye(w.shape[1])[labels]  # [N, C]
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, settings.batch_size):
            rows = order[start : start + settings.batch_size]
            xb = x[rows]  # [B, F]
            logits = np.asarray(xb @ w) + b  # [B, C]
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            grad = (p - onehot[rows]) / len(rows)  # [B, C]
            w *= shrink
            w -= lr * np.asarray(xb.T @ grad)
            b -= lr * grad.sum(axis=0)
