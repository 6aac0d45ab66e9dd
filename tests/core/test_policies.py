import numpy as np
import pytest

from selfimprove.core.policies import DataPolicy, curate, subsample, training_batches
from selfimprove.core.records import Batch, Provenance

REAL = Batch(np.arange(2 * 100, dtype=float).reshape(2, 100, 1), Provenance("real", 0, "world"))


def synthetic(generation: int, num: int = 100) -> Batch:
    return Batch(np.full((2, num, 1), -float(generation)), Provenance("synthetic", generation, "m"))


def fresh(num: int, generation: int, rng: np.random.Generator) -> Batch:
    return Batch(np.full((2, num, 1), 1000.0), Provenance("real", generation, "world"))


def test_replace_keeps_only_the_newest_synthetic_batch() -> None:
    kept = curate(
        DataPolicy(mix="replace"),
        synthetic(3),
        [(REAL,), (synthetic(2),)],
        fresh,
        100,
        np.random.default_rng(0),
    )
    assert kept == (kept[0],) and kept[0].provenance.generation == 3


def test_accumulate_keeps_real_and_every_synthetic_batch() -> None:
    policy, rng = DataPolicy(mix="accumulate"), np.random.default_rng(0)
    history = [(REAL,)]
    for generation in range(1, 4):
        history.append(curate(policy, synthetic(generation), history, fresh, 100, rng))
    assert [b.provenance.generation for b in history[-1]] == [0, 1, 2, 3]
    assert history[-1][0].provenance.source == "real"


def test_mix_fixed_real_draws_its_share_from_generation_zero() -> None:
    policy = DataPolicy(mix="mix_fixed_real", real_fraction=0.1)
    assert policy.num_synthetic(100) == 90
    kept = curate(
        policy, synthetic(5, 90), [(REAL,), (synthetic(4),)], fresh, 100, np.random.default_rng(0)
    )
    real_part = kept[0].data
    assert real_part.shape == (2, 10, 1)
    for seed in range(2):  # each seed's real samples come from its own real data, without repeats
        assert set(real_part[seed, :, 0]) <= set(REAL.data[seed, :, 0])
        assert len(set(real_part[seed, :, 0])) == 10


def test_mix_fresh_real_draws_new_real_data() -> None:
    policy = DataPolicy(mix="mix_fresh_real", real_fraction=0.2)
    kept = curate(policy, synthetic(1, 80), [(REAL,)], fresh, 100, np.random.default_rng(0))
    assert kept[0].data.shape == (2, 20, 1) and (kept[0].data == 1000.0).all()


def test_accumulate_subsample_trains_on_a_budget_sized_subset_of_the_pool() -> None:
    policy = DataPolicy(mix="accumulate_subsample")
    pool = (REAL, synthetic(1), synthetic(2))
    (train,) = training_batches(policy, pool, 100, np.random.default_rng(0))
    assert train.data.shape == (2, 100, 1)
    everything = np.concatenate([b.data for b in pool], axis=1)
    for seed in range(2):
        assert set(train.data[seed, :, 0]) <= set(everything[seed, :, 0])


def test_subsample_without_replacement_never_repeats() -> None:
    batch = Batch(np.arange(3 * 50, dtype=float).reshape(3, 50, 1), REAL.provenance)
    picked = subsample(batch, 50, np.random.default_rng(1)).data
    for seed in range(3):
        assert sorted(picked[seed, :, 0]) == sorted(batch.data[seed, :, 0])


@pytest.mark.parametrize(
    ("policy", "label"),
    [
        (DataPolicy(), "replace"),
        (
            DataPolicy(mix="mix_fresh_real", real_fraction=0.1, temperature=0.8),
            "mix_fresh_real(0.1), tau=0.8",
        ),
        (DataPolicy(noise_scale=0.1), "replace, noise=0.1"),
    ],
)
def test_labels(policy: DataPolicy, label: str) -> None:
    assert policy.label() == label
