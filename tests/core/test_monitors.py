"""Monitors against answers known in advance."""

import numpy as np
import pytest

from selfimprove.core import monitors


def test_spread_and_mean_drift_of_a_known_gaussian() -> None:
    rng = np.random.default_rng(0)
    x = 3.0 + 2.0 * rng.standard_normal((4, 20000, 1))
    assert monitors.spread(x) == pytest.approx(np.full(4, 2.0), rel=0.02)
    assert monitors.mean_drift(x, np.zeros(1)) == pytest.approx(np.full(4, 3.0), rel=0.02)


def test_tail_mass_of_real_data_is_the_quantile_mass() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 200000, 1))
    mass = monitors.tail_mass(x, np.array([-2.5758]), np.array([2.5758]))
    assert mass == pytest.approx(np.full(2, 0.01), abs=0.001)
    assert monitors.tail_mass(0.5 * x, np.array([-2.5758]), np.array([2.5758])).max() < 1e-4


def test_support_and_good_turing_count_by_hand() -> None:
    tokens = np.array([[1, 1, 2, 3], [5, 5, 5, 5]])
    assert monitors.support_size(tokens).tolist() == [3, 1]
    assert monitors.good_turing_missing_mass(tokens).tolist() == [0.5, 0.0]


def test_js_divergence_bounds() -> None:
    p = np.array([[0.5, 0.5, 0.0, 0.0]])
    q = np.array([[0.0, 0.0, 0.5, 0.5]])
    assert monitors.js_divergence(p, p)[0] == pytest.approx(0.0)
    assert monitors.js_divergence(p, q)[0] == pytest.approx(np.log(2))


def test_frechet_distance_matches_the_closed_form_in_one_dimension() -> None:
    # In 1-D: (m1 - m2)^2 + (s1 - s2)^2.
    d = monitors.frechet_distance(
        np.array([[1.0]]), np.array([[[4.0]]]), np.array([[0.0]]), np.array([[[1.0]]])
    )
    assert d[0] == pytest.approx(1.0 + (2.0 - 1.0) ** 2)
    identity = np.eye(3)[None]
    assert monitors.frechet_distance(np.zeros((1, 3)), identity, np.zeros((1, 3)), identity)[
        0
    ] == pytest.approx(0.0, abs=1e-12)


def test_knn_precision_recall_see_a_variance_shrink() -> None:
    rng = np.random.default_rng(2)
    real = rng.standard_normal((2, 400, 2))
    same = rng.standard_normal((2, 400, 2))
    shrunk = 0.1 * rng.standard_normal((2, 400, 2))
    precision, recall = monitors.knn_precision_recall(real, same)
    assert precision.min() > 0.9 and recall.min() > 0.9
    precision, recall = monitors.knn_precision_recall(real, shrunk)
    assert precision.min() > 0.95  # every shrunk sample still looks real
    assert recall.max() < 0.3  # but most of the real distribution is no longer covered


def test_mmd_near_zero_for_one_distribution_and_large_for_two() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 2, 300, 1))
    assert abs(monitors.mmd_rbf(a, b, 0.5)).max() < 0.02
    assert monitors.mmd_rbf(a, b + 2.0, 0.5).min() > 0.3


def test_histogram_probs_sum_to_one_and_clip_the_tails() -> None:
    edges = np.array([-np.inf, -1.0, 0.0, 1.0, np.inf])
    probs = monitors.histogram_probs(np.array([[-5.0, -0.5, 0.5, 9.0]]), edges)
    assert probs.tolist() == [[0.25, 0.25, 0.25, 0.25]]


def test_density_and_coverage_match_the_reference_implementation() -> None:
    prdc = pytest.importorskip("prdc")  # Naeem et al.'s own code, installed with the dev extra
    rng = np.random.default_rng(3)
    real = rng.standard_normal((1, 300, 6))
    fake = 0.6 * rng.standard_normal((1, 250, 6)) + 0.3
    density, coverage = monitors.density_coverage(real, fake, k=5)
    expected = prdc.compute_prdc(real_features=real[0], fake_features=fake[0], nearest_k=5)
    assert density[0] == pytest.approx(expected["density"], rel=1e-9)
    assert coverage[0] == pytest.approx(expected["coverage"], rel=1e-9)
