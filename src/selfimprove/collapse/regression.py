"""E4: linear regression retrained on labels its predecessor produced.

Dohmatob et al. (2024) and Gerstgrasser et al. (2024): inputs x ~ N(0, I_d), labels
y = x.w + noise (variance sigma^2), T samples per generation, ordinary least squares. Each
generation relabels fresh inputs with the incumbent's weights plus fresh noise. The excess
test error ||w_n - w*||^2 of the model after n fits grows linearly when data is replaced,
E_n = n sigma^2 d / (T - d - 1), and stays bounded when it accumulates,
sigma^2 d / (T - d - 1) * sum_{k<=n} 1/k^2 <= (pi^2/6) sigma^2 d / (T - d - 1).
Our generation g is the model after g + 1 fits (generation 0 is fitted on real data).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from selfimprove.collapse.study import (
    CollapseConfig,
    PolicyArm,
    policy_pipeline,
    study_gate,
)
from selfimprove.core.engine import Arm
from selfimprove.core.experiment import Experiment, Measured, newest
from selfimprove.core.records import Batch, Claim, ClaimPlot, Metrics
from selfimprove.core.summaries import spread_summary


class RegressionConfig(CollapseConfig):
    """E4: linear regression refitted on model-labelled data."""

    kind: Literal["collapse.regression"] = Field(
        "collapse.regression", description="which experiment this recipe runs"
    )
    arms: tuple[PolicyArm, ...] = Field(
        (PolicyArm(),), min_length=1, description="data policies run side by side"
    )
    dimension: int = Field(10, ge=1, description="d: number of input features")
    samples_per_generation: int = Field(
        100, ge=3, description="T: training-set size per generation (at least dimension + 2)"
    )
    noise_std: float = Field(1.0, gt=0, description="sigma: label noise std")

    @model_validator(mode="after")
    def _enough_samples(self) -> RegressionConfig:
        if self.samples_per_generation < self.dimension + 2:
            raise ValueError("samples_per_generation must be at least dimension + 2")
        return self


@dataclass(frozen=True)
class LinearModel:
    weights: np.ndarray  # [S, d]


@dataclass(frozen=True)
class LinearRegression:
    """Samples are `[S, T, d + 1]`: the inputs, then the label in the last column."""

    true_weights: np.ndarray  # [d]
    noise_std: float

    def draw_real(self, num_seeds: int, num: int, rng: np.random.Generator) -> np.ndarray:
        weights = np.broadcast_to(self.true_weights, (num_seeds, self.true_weights.size))
        return self.sample(LinearModel(weights), num, 1.0, rng)

    def sample(
        self, model: LinearModel, num: int, temperature: float, rng: np.random.Generator
    ) -> np.ndarray:
        num_seeds, dim = model.weights.shape
        # float32 draws are twice as fast; all algebra below is float64.
        x = rng.standard_normal((num_seeds, num, dim), dtype=np.float32).astype(np.float64)
        noise = np.sqrt(temperature) * self.noise_std * rng.standard_normal((num_seeds, num))
        y = np.einsum("snd,sd->sn", x, model.weights) + noise
        return np.concatenate([x, y[..., None]], axis=2)

    def fit(
        self, batches: Sequence[Batch], incumbent: LinearModel | None, rng: np.random.Generator
    ) -> LinearModel:
        del rng  # the fit is deterministic
        del incumbent
        gram = sum(_normal_equations(b)[0] for b in batches)  # [S, d, d]
        moment = sum(_normal_equations(b)[1] for b in batches)  # [S, d, 1]
        return LinearModel(np.linalg.solve(gram, moment)[..., 0])


def _normal_equations(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """X^T X and X^T y of one batch, cached: they add up across batches."""
    if "normal" not in batch.cache:
        x, y = batch.data[..., :-1], batch.data[..., -1:]
        x_t = np.swapaxes(x, 1, 2)
        batch.cache["normal"] = (x_t @ x, x_t @ y)
    cached: tuple[np.ndarray, np.ndarray] = batch.cache["normal"]
    return cached


def replace_error(generation: int, dim: int, num: int, noise_var: float) -> float:
    return (generation + 1) * noise_var * dim / (num - dim - 1)


def accumulate_error(generation: int, dim: int, num: int, noise_var: float) -> float:
    fits = np.arange(1, generation + 2)
    return float(noise_var * dim / (num - dim - 1) * (1.0 / fits**2).sum())


@dataclass(frozen=True)
class EvaluateRegression:
    arm: PolicyArm
    family: LinearRegression
    samples_per_generation: int

    def __call__(self, model: LinearModel, generation: int, rng: np.random.Generator) -> Metrics:
        del rng
        error = ((model.weights - self.family.true_weights) ** 2).sum(axis=1)  # [S]
        metrics = spread_summary("collapse/test_error", error)
        metrics["collapse/test_error_mean"] = float(error.mean())
        args = (
            generation,
            self.family.true_weights.size,
            self.samples_per_generation,
            self.family.noise_std**2,
        )
        policy = self.arm.policy
        if policy.temperature == 1.0 and policy.noise_scale == 0.0:
            if policy.mix == "replace":
                metrics["analytic/collapse/test_error_mean"] = replace_error(*args)
            elif policy.mix == "accumulate":
                metrics["analytic/collapse/test_error_mean"] = accumulate_error(*args)
        return metrics


def build_arms(config: RegressionConfig) -> list[Arm]:
    true_weights = np.ones(config.dimension) / np.sqrt(config.dimension)
    family = LinearRegression(true_weights, config.noise_std)
    arms = []
    for arm in config.arms:
        evaluate = EvaluateRegression(arm, family, config.samples_per_generation)
        pipeline = policy_pipeline(
            family,
            arm.policy,
            config.num_seeds,
            config.samples_per_generation,
            evaluate,
            study_gate(config),
        )
        arms.append(Arm(arm.label(), pipeline))
    return arms


ERROR = "collapse/test_error_mean"


def regression_claims(config: RegressionConfig, measured: Measured) -> list[Claim]:
    table = measured.metrics
    claims = []
    c = (
        config.noise_std**2
        * config.dimension
        / (config.samples_per_generation - config.dimension - 1)
    )
    for arm in config.arms:
        n, last = newest(table[arm.label()])
        error = last[ERROR]
        theory = last.get("analytic/collapse/test_error_mean")
        if theory is not None and arm.policy.mix == "replace":
            claims.append(
                Claim(
                    f"{arm.label()}: test error grows linearly, (n+1) sigma^2 d/(T-d-1), within 10%",
                    f"{error:.3f} (theory {theory:.3f}) after {n} generations",
                    abs(error / theory - 1) <= 0.1,
                    ClaimPlot(ERROR, (arm.label(),), (0.9 * theory, 1.1 * theory)),
                )
            )
        if theory is not None and arm.policy.mix == "accumulate":
            bound = math.pi**2 / 6 * c
            claims.append(
                Claim(
                    f"{arm.label()}: test error stays below (pi^2/6) sigma^2 d/(T-d-1) = {bound:.3f} and within 10% of theory",
                    f"{error:.3f} (theory {theory:.3f})",
                    error <= bound and abs(error / theory - 1) <= 0.1,
                    ClaimPlot(
                        ERROR,
                        (arm.label(),),
                        (0.9 * theory, min(bound, 1.1 * theory)),
                        bound,
                        "bound (π²/6) σ² d/(T-d-1)",
                    ),
                )
            )
    return claims


EXPERIMENT = Experiment(RegressionConfig, build_arms, regression_claims)
