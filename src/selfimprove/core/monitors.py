"""Monitors of diversity and drift, computed every generation, for all seeds at once.

Samples are `[S, N, D]` (seeds, samples, features) or `[S, N]` tokens; every monitor returns
one value per seed, `[S]`. "Reference" is real data; "generated" is drawn from the model.
Divergences are in nats unless a name says otherwise.
"""

from __future__ import annotations

import numpy as np


def spread(samples: np.ndarray) -> np.ndarray:
    """Root mean per-feature variance: the standard deviation for 1-D data. `[S, N, D] -> [S]`."""
    return np.sqrt(samples.var(axis=1).mean(axis=-1))


def mean_drift(samples: np.ndarray, reference_mean: np.ndarray) -> np.ndarray:
    """Euclidean distance between the sample mean and the reference mean. `-> [S]`."""
    return np.linalg.norm(samples.mean(axis=1) - reference_mean, axis=-1)


def tail_mass(samples: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Share of samples outside `[low, high]` in any feature (the reference's tail quantiles).

    With `low, high` the real 0.5% and 99.5% quantiles, real 1-D data gives about 0.01; a
    collapsing model gives less: its tails vanish first.
    """
    outside = (samples < low) | (samples > high)  # [S, N, D]
    return outside.any(axis=-1).mean(axis=1)


def support_size(tokens: np.ndarray) -> np.ndarray:
    """Number of distinct values per seed. `[S, N] -> [S]`."""
    ordered = np.sort(tokens, axis=1)
    return 1 + (ordered[:, 1:] != ordered[:, :-1]).sum(axis=1)


def good_turing_missing_mass(tokens: np.ndarray) -> np.ndarray:
    """Good-Turing estimate of the probability mass never seen: singletons / N. `-> [S]`."""
    ordered = np.sort(tokens, axis=1)
    num_seeds, num = ordered.shape
    starts = np.ones((num_seeds, num), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = np.ones((num_seeds, num), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    return (starts & ends).sum(axis=1) / num  # a run of length one starts and ends at once


def histogram_probs(samples: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per-seed histogram of 1-D samples `[S, N]` on fixed `edges`, as probabilities `[S, B]`.

    Values beyond the outer edges fall into the outer bins.
    """
    bins = np.clip(np.searchsorted(edges, samples, side="right") - 1, 0, len(edges) - 2)
    counts = np.zeros((samples.shape[0], len(edges) - 1))
    np.add.at(counts, (np.arange(samples.shape[0])[:, None], bins), 1.0)
    return counts / samples.shape[1]


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence between probability vectors `[S, B]`, in nats (max ln 2)."""
    m = 0.5 * (p + q)
    return 0.5 * (_kl(p, m) + _kl(q, m))


def share_gap(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total variation between two label (or class) distributions `[..., C] -> [...]`: the
    bias monitor of feedback loops (Taori & Hashimoto's |P(pred = c) - P(y = c)| summed over
    classes and halved; for two classes, the gap in one class's share). `p` is what the loop
    feeds itself (its own labels, its allocation), `q` what it should match (a human-labelled
    sample, an unbiased estimate, the real data's shares)."""
    return 0.5 * np.abs(np.asarray(p, dtype=float) - np.asarray(q, dtype=float)).sum(axis=-1)


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    safe_p = np.where(p > 0, p, 1.0)
    safe_q = np.where(p > 0, q, 1.0)
    return (p * np.log(safe_p / safe_q)).sum(axis=-1)


def mmd_rbf(x: np.ndarray, y: np.ndarray, bandwidth: float) -> np.ndarray:
    """Unbiased squared maximum mean discrepancy with a Gaussian kernel. `[S,N,D],[S,M,D] -> [S]`.

    The unbiased estimate is near 0 (and may dip below) when both samples share a distribution.
    """
    gamma = 1.0 / (2.0 * bandwidth**2)
    k_xx = np.exp(-gamma * _sq_distances(x, x))
    k_yy = np.exp(-gamma * _sq_distances(y, y))
    k_xy = np.exp(-gamma * _sq_distances(x, y))
    n, m = x.shape[1], y.shape[1]
    within_x = (k_xx.sum(axis=(1, 2)) - n) / (n * (n - 1))
    within_y = (k_yy.sum(axis=(1, 2)) - m) / (m * (m - 1))
    return within_x + within_y - 2.0 * k_xy.mean(axis=(1, 2))


def frechet_distance(
    mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray
) -> np.ndarray:
    """Frechet (2-Wasserstein squared) distance between Gaussians. `[S,D],[S,D,D] -> [S]`.

    ||mu_a - mu_b||^2 + tr(A + B - 2 (A^1/2 B A^1/2)^1/2), the formula behind FID.
    """
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))[..., None, :]) @ np.swapaxes(
        vectors, -1, -2
    )
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_term = np.trace(cov_a, axis1=-2, axis2=-1) + np.trace(cov_b, axis1=-2, axis2=-1)
    trace_term -= 2.0 * np.sqrt(np.clip(middle, 0, None)).sum(axis=-1)
    return ((mean_a - mean_b) ** 2).sum(axis=-1) + trace_term


def frechet_from_samples(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Frechet distance between Gaussians fitted to two sample sets `[S, N, D]`."""
    return frechet_distance(x.mean(axis=1), _covariance(x), y.mean(axis=1), _covariance(y))


def knn_precision_recall(
    reference: np.ndarray, generated: np.ndarray, k: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """k-NN precision and recall (Kynkaanniemi et al. 2019). `[S,N,D],[S,M,D] -> ([S], [S])`.

    Precision: share of generated samples inside some reference sample's k-NN ball (quality).
    Recall: share of reference samples inside some generated sample's k-NN ball (coverage).
    A model that shrinks its variance keeps precision near 1 while recall falls.
    """
    ref_radius = _kth_neighbour_distance(reference, k)  # [S, N]
    gen_radius = _kth_neighbour_distance(generated, k)  # [S, M]
    cross = _sq_distances(generated, reference)  # [S, M, N]
    precision = (cross <= ref_radius[:, None, :]).any(axis=2).mean(axis=1)
    recall = (cross <= gen_radius[:, :, None]).any(axis=1).mean(axis=1)
    return precision, recall


def density_coverage(
    reference: np.ndarray, generated: np.ndarray, k: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Density and coverage (Naeem et al. 2020). `[S,N,D],[S,M,D] -> ([S], [S])`.

    Density: how many reference k-NN balls a generated sample falls in, on average, over k
    (about 1 for real data; it rewards samples where real data is dense, so it is robust to
    outlying reference points). Coverage: share of reference samples whose k-NN ball holds
    at least one generated sample (1 minus the modes the model dropped).
    """
    ref_radius = _kth_neighbour_distance(reference, k)  # [S, N]
    inside = _sq_distances(generated, reference) < ref_radius[:, None, :]  # [S, M, N]
    density = inside.sum(axis=(1, 2)) / (k * generated.shape[1])
    coverage = inside.any(axis=1).mean(axis=1)
    return density, coverage


def _kth_neighbour_distance(points: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point. `[S, N, D] -> [S, N]`."""
    distances = _sq_distances(points, points)
    return np.partition(distances, k, axis=2)[:, :, k]  # index 0 is the point itself


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances. `[S, N, D], [S, M, D] -> [S, N, M]`."""
    if a.shape[-1] <= 2:  # low dimension: direct differences beat a matmul with inner size D
        return sum((a[:, :, None, d] - b[:, None, :, d]) ** 2 for d in range(a.shape[-1]))
    squared = (
        (a**2).sum(-1)[:, :, None] + (b**2).sum(-1)[:, None, :] - 2.0 * a @ np.swapaxes(b, 1, 2)
    )
    return np.maximum(squared, 0.0)


def _covariance(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=1, keepdims=True)
    return np.swapaxes(centred, 1, 2) @ centred / x.shape[1]  # [S, D, D]
