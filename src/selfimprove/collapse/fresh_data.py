"""E5: the fresh-data loop of Alemohammad et al. (2023), with a d-dimensional Gaussian.

Every generation fits mean and covariance to `real` fresh samples of N(0, I) plus `synthetic`
samples of the incumbent drawn with sampling bias lambda (the temperature: covariance times
lambda). The Frechet distance to N(0, I) settles on a plateau that does not depend on where
the loop started (about 12.5 at lambda = 1 and 20.7 at lambda = 0.8 for d = 100, 100 real,
900 synthetic); with no fresh real data it grows without bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from selfimprove.collapse.study import (
    CollapseConfig,
    PolicyArm,
    policy_pipeline,
    study_gate,
)
from selfimprove.core import monitors
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.experiment import Experiment, Measured, newest
from selfimprove.core.policies import Kept
from selfimprove.core.records import Batch, Claim, ClaimPlot, Metrics
from selfimprove.core.summaries import spread_summary


class FreshDataArm(PolicyArm):
    start_mean: float = Field(0.0, description="generation 0 model: mean (every coordinate)")
    start_scale: float | None = Field(
        None, gt=0, description="generation 0 model: covariance scale; None fits real data instead"
    )

    @model_validator(mode="after")
    def _real_data_exists(self) -> FreshDataArm:
        if self.start_scale is not None and self.policy.mix == "mix_fixed_real":
            raise ValueError("a given start has no generation-0 real data for mix_fixed_real")
        return self

    def label(self) -> str:
        start = (
            ""
            if self.start_scale is None
            else f", start N({self.start_mean:g}, {self.start_scale:g} I)"
        )
        return self.name or f"{self.policy.label()}{start}"


class FreshDataConfig(CollapseConfig):
    """E5: d-dimensional Gaussian fitted on fresh real plus synthetic data."""

    kind: Literal["collapse.fresh_data"] = Field(
        "collapse.fresh_data", description="which experiment this recipe runs"
    )
    arms: tuple[FreshDataArm, ...] = Field(
        (FreshDataArm(),),
        min_length=1,
        description="variants run side by side (data policy, start)",
    )
    dimension: int = Field(100, ge=1, description="d")
    samples_per_generation: int = Field(1000, ge=2, description="real + synthetic per generation")


@dataclass(frozen=True)
class GaussianND:
    mean: np.ndarray  # [S, d]
    cov: np.ndarray  # [S, d, d]


@dataclass(frozen=True)
class GaussianFamily:
    dimension: int

    def draw_real(self, num_seeds: int, num: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((num_seeds, num, self.dimension))

    def sample(
        self, model: GaussianND, num: int, temperature: float, rng: np.random.Generator
    ) -> np.ndarray:
        jitter = 1e-9 * np.eye(self.dimension)
        chol = np.linalg.cholesky(temperature * model.cov + jitter)  # [S, d, d]
        z = self.draw_real(model.mean.shape[0], num, rng)
        return model.mean[:, None, :] + z @ np.swapaxes(chol, 1, 2)

    def fit(
        self, batches: Sequence[Batch], incumbent: GaussianND | None, rng: np.random.Generator
    ) -> GaussianND:
        del rng  # the fit is deterministic
        del incumbent
        data = np.concatenate([b.data for b in batches], axis=1)  # [S, N, d]
        mean = data.mean(axis=1)
        centred = data - mean[:, None, :]
        return GaussianND(mean, np.swapaxes(centred, 1, 2) @ centred / data.shape[1])


@dataclass(frozen=True)
class StartAt:
    """Generation 0 is a given Gaussian, not a fit: to show the plateau forgets the start."""

    family: GaussianFamily
    num_seeds: int
    mean: float
    scale: float

    def __call__(self, rng: np.random.Generator) -> tuple[GaussianND, Kept]:
        del rng
        d, s = self.family.dimension, self.num_seeds
        model = GaussianND(
            np.full((s, d), self.mean), np.broadcast_to(self.scale * np.eye(d), (s, d, d)).copy()
        )
        return model, ()


@dataclass(frozen=True)
class EvaluateFreshData:
    def __call__(self, model: GaussianND, generation: int, rng: np.random.Generator) -> Metrics:
        del generation, rng
        num_seeds, dim = model.mean.shape
        identity = np.broadcast_to(np.eye(dim), (num_seeds, dim, dim))
        distance = monitors.frechet_distance(
            model.mean, model.cov, np.zeros_like(model.mean), identity
        )
        metrics = spread_summary("collapse/frechet", distance)
        metrics |= spread_summary(
            "collapse/spread", np.sqrt(np.trace(model.cov, axis1=1, axis2=2) / dim)
        )
        return metrics


def build_arms(config: FreshDataConfig) -> list[Arm]:
    family = GaussianFamily(config.dimension)
    arms = []
    for arm in config.arms:
        pipeline: Pipeline[GaussianND, Batch, Kept] = policy_pipeline(
            family,
            arm.policy,
            config.num_seeds,
            config.samples_per_generation,
            EvaluateFreshData(),
            study_gate(config),
        )
        if arm.start_scale is not None:
            start = StartAt(family, config.num_seeds, arm.start_mean, arm.start_scale)
            pipeline = replace(pipeline, initialize=start)
        arms.append(Arm(arm.label(), pipeline))
    return arms


FRECHET = "collapse/frechet_median"


def fresh_data_claims(config: FreshDataConfig, measured: Measured) -> list[Claim]:
    table = measured.metrics
    claims = []
    plateaus: dict[tuple[float, float], list[tuple[str, float]]] = {}
    synthetic = []
    for arm in config.arms:
        _, last = newest(table[arm.label()])
        distance = last[FRECHET]
        if arm.policy.mix == "mix_fresh_real":
            plateaus.setdefault((arm.policy.real_fraction, arm.policy.temperature), []).append(
                (arm.label(), distance)
            )
        elif arm.policy.mix == "replace":
            synthetic.append((arm.label(), distance))
    for (fraction, temperature), runs in plateaus.items():
        values = [d for _, d in runs]
        if len(values) > 1:
            claims.append(
                Claim(
                    f"{fraction:g} fresh real, lambda {temperature:g}: the Frechet plateau does not depend on the start (within 10%)",
                    ", ".join(f"{d:.2f}" for d in values),
                    max(values) <= 1.1 * min(values),
                    ClaimPlot(FRECHET, tuple(label for label, _ in runs)),
                )
            )
    highest = max((d for runs in plateaus.values() for _, d in runs), default=math.nan)
    for label, distance in synthetic:
        claims.append(
            Claim(
                f"{label}: without fresh real data the distance grows past 3x the highest plateau",
                f"{distance:.2f} vs {highest:.2f}",
                distance > 3 * highest,
                ClaimPlot(FRECHET, (label,), (3 * highest, None)),
            )
        )
    return claims


EXPERIMENT = Experiment(FreshDataConfig, build_arms, fresh_data_claims)
