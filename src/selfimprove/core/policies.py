"""Data policies: what the next model is trained on, given what earlier generations kept.

A policy combines a mixing rule with two sampling settings:

- `replace`: only the newest synthetic samples (the collapse setting).
- `accumulate`: the real data plus every synthetic batch so far (Gerstgrasser et al. 2024).
- `accumulate_subsample`: the same pool, but train on a random subset the size of one
  generation (a fixed compute budget; Kazdan et al. 2024).
- `mix_fixed_real`: a `real_fraction` share of each training set is drawn from the fixed
  real data of generation 0, the rest is new synthetic data.
- `mix_fresh_real`: the same share, but of fresh real data every generation
  (Alemohammad et al. 2023).
- `temperature`: sample the model at temperature tau (for a density p, p^(1/tau):
  a Gaussian's covariance times tau; tau < 1 sharpens).
- `top_p`: nucleus sampling, for models over tokens (the text studies): keep the most likely
  tokens whose probabilities add up to p, renormalized.
- `noise_scale`: add Gaussian noise of that scale to each synthetic sample.

Batches are `[S, N, ...]` (seeds, samples); every function here works on all seeds at once.
Conventions: `history[0]` holds generation 0's kept data, which is the real data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from selfimprove.core.config import ConfigModel
from selfimprove.core.records import Batch, Provenance

Mix = Literal["replace", "accumulate", "accumulate_subsample", "mix_fixed_real", "mix_fresh_real"]
Kept = tuple[Batch, ...]


class DataPolicy(ConfigModel):
    """How synthetic and real data are combined into the next training set."""

    mix: Mix = Field("replace", description="mixing rule (see module docstring)")
    real_fraction: float = Field(
        0.0, ge=0.0, lt=1.0, description="share of real data, for mix_fixed_real / mix_fresh_real"
    )
    temperature: float = Field(1.0, gt=0.0, description="sampling temperature tau")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling (token models only)")
    noise_scale: float = Field(0.0, ge=0.0, description="std of noise added to synthetic samples")

    @model_validator(mode="after")
    def _fraction_matches_mix(self) -> DataPolicy:
        mixes_real = self.mix in ("mix_fixed_real", "mix_fresh_real")
        if mixes_real and self.real_fraction <= 0.0:
            raise ValueError(f"mix {self.mix} needs real_fraction > 0")
        if not mixes_real and self.real_fraction > 0.0:
            raise ValueError(
                f"real_fraction is only used by mix_fixed_real / mix_fresh_real, not {self.mix}"
            )
        return self

    @property
    def keeps_every_generation(self) -> bool:
        """Whether the training pool grows with every generation's synthetic batch."""
        return self.mix in ("accumulate", "accumulate_subsample")

    def label(self) -> str:
        """A short readable name, e.g. `mix_fresh_real(0.1)`, `replace, tau=0.8`."""
        parts = [f"{self.mix}({self.real_fraction:g})" if self.real_fraction else self.mix]
        if self.temperature != 1.0:
            parts.append(f"tau={self.temperature:g}")
        if self.top_p != 1.0:
            parts.append(f"top-p={self.top_p:g}")
        if self.noise_scale:
            parts.append(f"noise={self.noise_scale:g}")
        return ", ".join(parts)

    def num_real(self, budget: int) -> int:
        """Real samples in a training set of `budget` samples."""
        return round(self.real_fraction * budget)

    def num_synthetic(self, budget: int) -> int:
        """Synthetic samples to generate per generation for a training set of `budget`."""
        return budget - self.num_real(budget)


def subsample(batch: Batch, num: int, rng: np.random.Generator) -> Batch:
    """`num` samples per seed without replacement, drawn independently for every seed."""
    num_seeds, num_samples = batch.data.shape[:2]
    keys = rng.random((num_seeds, num_samples))
    index = np.argpartition(keys, num - 1, axis=1)[:, :num] if num else keys[:, :0].astype(int)
    picked = np.take_along_axis(batch.data, _expand(index, batch.data.ndim), axis=1)
    return Batch(picked, batch.provenance)


def concat(batches: Sequence[Batch], provenance: Provenance | None = None) -> Batch:
    """One batch holding every sample of `batches`, seed by seed."""
    return Batch(np.concatenate([b.data for b in batches], axis=1), provenance)


def add_noise(batch: Batch, scale: float, rng: np.random.Generator) -> Batch:
    if scale == 0.0:
        return batch
    return Batch(batch.data + scale * rng.standard_normal(batch.data.shape), batch.provenance)


def curate(
    policy: DataPolicy,
    synthetic: Batch,
    history: Sequence[Kept],
    draw_real: Callable[[int, int, np.random.Generator], Batch],
    budget: int,
    rng: np.random.Generator,
) -> Kept:
    """The data the next model is trained on (or, for `accumulate_subsample`, its pool).

    `budget` is the training-set size; `draw_real(num, generation, rng)` draws fresh real
    samples (for `mix_fresh_real`).
    """
    generation = _generation(synthetic)
    match policy.mix:
        case "replace":
            return (synthetic,)
        case "accumulate" | "accumulate_subsample":
            return (*history[-1], synthetic) if history else (synthetic,)
        case "mix_fixed_real":
            fixed_real = concat(history[0], history[0][0].provenance)
            return (subsample(fixed_real, policy.num_real(budget), rng), synthetic)
        case "mix_fresh_real":
            return (draw_real(policy.num_real(budget), generation, rng), synthetic)


def training_batches(policy: DataPolicy, kept: Kept, budget: int, rng: np.random.Generator) -> Kept:
    """What `train` fits on: the kept data, or a budget-sized subset of the pool."""
    if policy.mix != "accumulate_subsample":
        return kept
    pooled = concat(kept)  # a subset to fit on, never stored: it needs no provenance
    return (subsample(pooled, min(budget, pooled.num_samples), rng),)


def _generation(batch: Batch) -> int:
    if batch.provenance is None:
        raise ValueError("curate received a batch the engine did not stamp")
    return batch.provenance.generation


def _expand(index: np.ndarray, ndim: int) -> np.ndarray:
    return index.reshape(index.shape + (1,) * (ndim - 2))
