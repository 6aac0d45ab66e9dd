"""What every collapse study shares: its config, the `Family` protocol, and the stages that
run a family under a data policy.

A family is a parametric model with vectorized `fit` and `sample`: a model holds one
parameter set per seed, so one call works on all seeds. Generation 0 fits real data; every
later generation samples the incumbent, lets the policy decide what to train on, and refits.
Metric keys: `collapse/*` read the model's parameters, `monitor/*` compare samples drawn from
the model with fresh real samples, `analytic/<key>` is the theory's value of `<key>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np
from pydantic import Field, model_validator

from selfimprove.core import monitors
from selfimprove.core.config import ConfigModel, LoopConfig
from selfimprove.core.engine import Pipeline
from selfimprove.core.gates import Gate, build_gate
from selfimprove.core.policies import DataPolicy, Kept, add_noise, curate, training_batches
from selfimprove.core.records import Batch, Metrics, Provenance
from selfimprove.core.stages import Evaluate, unverified

M = TypeVar("M")


class CollapseConfig(LoopConfig):
    """Settings every collapse study shares."""

    num_seeds: int = Field(100, ge=1, description="independent replicates, run as one array")
    monitor_every: int = Field(10, ge=1, description="compute sample monitors every N generations")
    monitor_seeds: int = Field(8, ge=1, description="seeds the sample monitors look at")
    monitor_samples: int = Field(250, ge=10, description="samples per seed for sample monitors")
    checkpoint_every: int = Field(
        0, ge=0, description="collapse studies are cheap to replay: no snapshots by default"
    )

    def memory_bytes(self) -> int:
        """The largest arm (arms run one after another): float64 samples of every seed,
        twice (drawn and fitted), kept for every generation when the arm accumulates, plus
        the monitors' samples. It errs high: E1 0.60 GiB estimated, 0.36 measured above the
        interpreter; E4 0.80 and 0.50."""
        sizes = ("samples_per_generation", "initial_samples")
        width = int(getattr(self, "dimension", 1))
        largest = 0
        for arm in getattr(self, "arms", ()) or (None,):
            size = max(int(getattr(arm, n, 0) or getattr(self, n, 0)) for n in sizes)
            policy = getattr(arm, "policy", None)
            accumulates = policy is not None and policy.keeps_every_generation
            kept = 1 + (self.generations if accumulates else 0)
            largest = max(largest, size * kept + self.monitor_samples)
        return 8 * 2 * self.num_seeds * width * largest

    @model_validator(mode="after")
    def _no_top_p(self) -> CollapseConfig:
        for arm in getattr(self, "arms", ()):
            policy = getattr(arm, "policy", None)
            if policy is not None and policy.top_p != 1.0:
                raise ValueError("top_p samples token models: the text studies, not this one")
        return self


class PolicyArm(ConfigModel):
    """One arm: a data policy, and a name for the report (default: the policy's label)."""

    name: str | None = Field(None, description="label in tables and plots")
    policy: DataPolicy = Field(DataPolicy(), description="what the next model trains on")

    def label(self) -> str:
        return self.name or self.policy.label()


class Family(Protocol[M]):
    """A parametric model family, vectorized over seeds."""

    def draw_real(self, num_seeds: int, num: int, rng: np.random.Generator) -> np.ndarray:
        """Samples from the true distribution, `[S, num, ...]`."""
        ...

    def sample(
        self, model: M, num: int, temperature: float, rng: np.random.Generator
    ) -> np.ndarray:
        """Samples from `model` at `temperature`, `[S, num, ...]`."""
        ...

    def fit(self, batches: Sequence[Batch], incumbent: M | None, rng: np.random.Generator) -> M:
        """A new model fitted on all samples of `batches` (warm-started from `incumbent`;
        `rng` for fits that draw, such as a network's initialization and minibatches)."""
        ...


def draw_from_pool(
    pool: np.ndarray, num_seeds: int, num: int, rng: np.random.Generator
) -> np.ndarray:
    """`num` distinct items of a fixed real pool `[P, ...]`, the same for every seed:
    `[num_seeds, num, ...]` (the `draw_real` of families trained on a real dataset)."""
    chosen = rng.permutation(pool.shape[0])[:num]
    return np.broadcast_to(pool[chosen], (num_seeds, num, *pool.shape[1:]))


def real_batch(data: np.ndarray, generation: int) -> Batch:
    return Batch(data, Provenance("real", generation, "world"))


@dataclass(frozen=True)
class FitReal(Generic[M]):
    """Generation 0: fit the family on `budget` real samples per seed."""

    family: Family[M]
    num_seeds: int
    budget: int

    def __call__(self, rng: np.random.Generator) -> tuple[M, Kept]:
        kept = (real_batch(self.family.draw_real(self.num_seeds, self.budget, rng), 0),)
        return self.family.fit(kept, None, rng), kept


@dataclass(frozen=True)
class SampleModel(Generic[M]):
    """Draw the synthetic part of the next training set from the incumbent."""

    family: Family[M]
    policy: DataPolicy
    budget: int

    def __call__(self, model: M, generation: int, rng: np.random.Generator) -> Batch:
        del generation  # the engine stamps which model made the batch
        num = self.policy.num_synthetic(self.budget)
        data = self.family.sample(model, num, self.policy.temperature, rng)
        return add_noise(Batch(data), self.policy.noise_scale, rng)


@dataclass(frozen=True)
class CurateByPolicy(Generic[M]):
    """Combine the new synthetic batch with real data and history, as the policy says."""

    family: Family[M]
    policy: DataPolicy
    budget: int
    num_seeds: int

    def __call__(
        self, scored: Batch, history: Sequence[Kept], generation: int, rng: np.random.Generator
    ) -> Kept:
        return curate(self.policy, scored, history, self._draw_real, self.budget, rng)

    def _draw_real(self, num: int, generation: int, rng: np.random.Generator) -> Batch:
        return real_batch(self.family.draw_real(self.num_seeds, num, rng), generation)


@dataclass(frozen=True)
class FitKept(Generic[M]):
    family: Family[M]
    policy: DataPolicy
    budget: int

    def __call__(self, incumbent: M, kept: Kept, rng: np.random.Generator) -> M:
        return self.family.fit(
            training_batches(self.policy, kept, self.budget, rng), incumbent, rng
        )


NO_GATE = "no gate: the study measures the loop without one (alarms may guard it)"


def study_gate(config: LoopConfig) -> Gate:
    """A collapse study keeps every candidate unless its recipe configures a gate."""
    return build_gate(config.gate, NO_GATE)


def policy_pipeline(
    family: Family[M],
    policy: DataPolicy,
    num_seeds: int,
    budget: int,
    evaluate: Evaluate[M],
    gate: Gate,
) -> Pipeline[M, Batch, Kept]:
    """The collapse loop: fit real data, then sample -> curate by policy -> refit, forever.
    Nothing verifies the samples: that is what these studies measure."""
    return Pipeline(
        initialize=FitReal(family, num_seeds, budget),
        generate=SampleModel(family, policy, budget),
        verify=unverified,
        curate=CurateByPolicy(family, policy, budget, num_seeds),
        train=FitKept(family, policy, budget),
        evaluate=evaluate,
        gate=gate,
        history_window=1,  # every policy needs only generation 0 and the newest kept
    )


def sample_monitors(
    generated: np.ndarray,
    reference: np.ndarray,
    bandwidth: float,
    histogram_edges: np.ndarray | None,
) -> Metrics:
    """The core monitors on `[s, n, D]` model samples against as many real samples; medians.

    Tail quantiles are the reference's own 0.5% and 99.5% quantiles (so real data gives ~1%).
    """
    low = np.quantile(reference, 0.005, axis=(0, 1))
    high = np.quantile(reference, 0.995, axis=(0, 1))
    precision, recall = monitors.knn_precision_recall(reference, generated, k=5)
    values = {
        "monitor/spread": monitors.spread(generated),
        "monitor/mean_drift": monitors.mean_drift(generated, reference.mean(axis=(0, 1))),
        "monitor/tail_mass": monitors.tail_mass(generated, low, high),
        "monitor/mmd": monitors.mmd_rbf(generated, reference, bandwidth),
        "monitor/frechet": monitors.frechet_from_samples(generated, reference),
        "monitor/precision": precision,
        "monitor/recall": recall,
    }
    if histogram_edges is not None:
        p = monitors.histogram_probs(generated[..., 0], histogram_edges)
        q = monitors.histogram_probs(reference[..., 0], histogram_edges)
        values["monitor/js"] = monitors.js_divergence(p, q)
    return {key: float(np.median(value)) for key, value in values.items()}
