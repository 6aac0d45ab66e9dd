"""E6: a memorizer on Zipf-distributed items, and what a cut tail does to its scaling law.

Dohmatob et al. (2024, "A Tale of Tails"): items i ~ p_i proportional to i^-beta; a memorizer
knows exactly the items it has seen, so its test error is the true mass of the unseen ones.
On clean data the error falls as T^-(1 - 1/beta) (slope -0.5 at beta = 2). Synthetic data from
a model that cut its tail at rank k never shows the tail, so the error plateaus at the cut
tail mass; mixing a share pi of real data recovers the law as if pi * T clean samples were seen.

Here generation g trains on T_g = initial_samples * 2^g samples (`axis/train_size`), drawn
from the arm's source; the `iterate` source instead trains each generation on
`initial_samples` draws from its predecessor's empirical distribution, a pure collapse loop
whose support can only shrink. The vocabulary is truncated at `vocabulary` items and p is
normalized over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from selfimprove.collapse.study import CollapseConfig, study_gate
from selfimprove.core import monitors
from selfimprove.core.config import ConfigModel
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.experiment import Experiment, Measured, newest
from selfimprove.core.policies import Kept
from selfimprove.core.records import Batch, Claim, ClaimPlot, Metrics, Provenance, Source
from selfimprove.core.stages import unverified

ZipfSource = Literal["real", "tail_cut", "mix", "iterate"]


class ZipfArm(ConfigModel):
    name: str | None = Field(None, description="label in tables and plots")
    source: ZipfSource = Field(
        "real", description="real, tail_cut, mix (real + tail_cut) or iterate"
    )
    tail_cut: int = Field(1000, ge=1, description="k: the synthetic generator knows ranks <= k")
    real_fraction: float = Field(0.0, ge=0.0, le=1.0, description="pi, for source mix")

    @model_validator(mode="after")
    def _fraction_for_mix(self) -> ZipfArm:
        if (self.source == "mix") != (self.real_fraction > 0.0):
            raise ValueError("real_fraction > 0 goes with source mix, and only with it")
        return self

    def label(self) -> str:
        match self.source:
            case "tail_cut":
                default = f"synthetic, tail cut at {self.tail_cut}"
            case "mix":
                default = f"{self.real_fraction:g} real + synthetic cut at {self.tail_cut}"
            case _:
                default = self.source
        return self.name or default


class ZipfConfig(CollapseConfig):
    """E6: Zipf memorizer scaling with clean, tail-cut and mixed data."""

    kind: Literal["collapse.zipf"] = Field(
        "collapse.zipf", description="which experiment this recipe runs"
    )
    arms: tuple[ZipfArm, ...] = Field(
        (ZipfArm(),), min_length=1, description="variants run side by side (data source)"
    )
    exponent: float = Field(2.0, gt=1.0, description="beta")
    vocabulary: int = Field(2**17, ge=10, description="items, ranks 1..vocabulary")
    initial_samples: int = Field(
        100, ge=1, description="T at generation 0 (and per generation for iterate)"
    )

    def memory_bytes(self) -> int:
        """The last generation's draw per seed (initial_samples * 2**g, or initial_samples
        for iterate) and counts over the vocabulary: 8-byte values, three copies."""
        # 2**generations itself is a number of billions of digits for generations in the
        # billions (the fuzz found it): past 2**80 bytes any estimate refuses alike
        doubling = min(self.generations, 80)
        largest = max(train_size(arm, self.initial_samples, doubling) for arm in self.arms)
        return 8 * 3 * self.num_seeds * (largest + self.vocabulary)


@dataclass(frozen=True)
class Memorizer:
    counts: np.ndarray  # [S, V]: how often each item was seen in training


@dataclass(frozen=True)
class ZipfWorld:
    probs: np.ndarray  # [V], p_i for rank i + 1
    tail_cut: int

    def draw(self, num_seeds: int, num: int, rng: np.random.Generator, cut: bool) -> np.ndarray:
        probs = self.probs[: self.tail_cut] if cut else self.probs
        cumulative = np.cumsum(probs)
        u = rng.random((num_seeds, num)) * cumulative[-1]
        return np.minimum(np.searchsorted(cumulative, u, side="right"), probs.size - 1)

    def tail_mass(self) -> float:
        return float(self.probs[self.tail_cut :].sum())


def train_size(arm: ZipfArm, initial: int, generation: int) -> int:
    return initial if arm.source == "iterate" else initial * 2**generation


@dataclass(frozen=True)
class DrawZipf:
    """Generate: T_g items from the arm's source (the predecessor, for iterate)."""

    world: ZipfWorld
    arm: ZipfArm
    initial: int

    def __call__(self, model: Memorizer, generation: int, rng: np.random.Generator) -> Batch:
        num_seeds, num = model.counts.shape[0], train_size(self.arm, self.initial, generation)
        if self.arm.source == "iterate":
            return Batch(_sample_counts(model.counts, num, rng))  # the engine stamps it
        num_real = {"real": num, "tail_cut": 0, "mix": round(self.arm.real_fraction * num)}[
            self.arm.source
        ]
        real = self.world.draw(num_seeds, num_real, rng, cut=False)
        synthetic = self.world.draw(num_seeds, num - num_real, rng, cut=True)
        # not the incumbent's output: this stage names it (real, or the fixed tail-cut generator)
        source: Source = "real" if num_real == num else "synthetic"
        maker = "world" if num_real == num else "tail-cut generator"
        return Batch(
            np.concatenate([real, synthetic], axis=1), Provenance(source, generation, maker)
        )


def _sample_counts(counts: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
    """Draw `num` items per seed from each row's empirical distribution, all rows at once."""
    num_seeds, vocabulary = counts.shape
    cumulative = np.cumsum(counts, axis=1)  # [S, V]
    totals = cumulative[:, -1:]
    offsets = np.arange(num_seeds)[:, None] * (totals.max() + 1)
    u = rng.random((num_seeds, num)) * totals + offsets
    flat = np.searchsorted((cumulative + offsets).ravel(), u.ravel(), side="right")
    return (flat - np.repeat(np.arange(num_seeds) * vocabulary, num)).reshape(num_seeds, num)


def memorize(items: np.ndarray, vocabulary: int) -> Memorizer:
    num_seeds = items.shape[0]
    flat = (items + np.arange(num_seeds)[:, None] * vocabulary).ravel()
    return Memorizer(
        np.bincount(flat, minlength=num_seeds * vocabulary).reshape(num_seeds, vocabulary)
    )


@dataclass(frozen=True)
class InitializeZipf:
    world: ZipfWorld
    num_seeds: int
    initial: int

    def __call__(self, rng: np.random.Generator) -> tuple[Memorizer, Kept]:
        batch = Batch(
            self.world.draw(self.num_seeds, self.initial, rng, cut=False),
            Provenance("real", 0, "world"),
        )
        return memorize(batch.data, self.world.probs.size), (batch,)


def keep_newest(scored: Batch, history: object, generation: int, rng: np.random.Generator) -> Kept:
    del history, generation, rng
    return (scored,)


@dataclass(frozen=True)
class TrainMemorizer:
    vocabulary: int

    def __call__(self, incumbent: Memorizer, kept: Kept, rng: np.random.Generator) -> Memorizer:
        del incumbent, rng
        return memorize(np.concatenate([b.data for b in kept], axis=1), self.vocabulary)


@dataclass(frozen=True)
class EvaluateZipf:
    world: ZipfWorld
    arm: ZipfArm
    initial: int

    def __call__(self, model: Memorizer, generation: int, rng: np.random.Generator) -> Metrics:
        del rng
        seen = model.counts > 0
        error = 1.0 - seen @ self.world.probs  # [S]
        num = train_size(self.arm, self.initial, generation)
        empirical = model.counts / model.counts.sum(axis=1, keepdims=True)
        metrics = {
            "collapse/error_mean": float(error.mean()),
            "collapse/support_size_median": float(np.median(seen.sum(axis=1))),
            "monitor/good_turing": float(np.median((model.counts == 1).sum(axis=1) / num)),
            "monitor/js": float(
                np.median(monitors.js_divergence(empirical, self.world.probs[None, :]))
            ),
        }
        if self.arm.source != "iterate":
            metrics["axis/train_size"] = float(num)  # plot against T, not the generation
        expected = self._expected_error(num)
        if expected is not None and (self.arm.source != "iterate" or generation == 0):
            metrics["analytic/collapse/error_mean"] = expected
        return metrics

    def _expected_error(self, num: int) -> float | None:
        """E[unseen true mass] = sum_i p_i P(item i never drawn), exactly."""
        p = self.world.probs
        cut = np.zeros_like(p)
        cut[: self.world.tail_cut] = p[: self.world.tail_cut] / p[: self.world.tail_cut].sum()
        num_real = {
            "real": num,
            "iterate": num,
            "tail_cut": 0,
            "mix": round(self.arm.real_fraction * num),
        }
        real = num_real[self.arm.source]
        return float((p * (1 - p) ** real * (1 - cut) ** (num - real)).sum())


def build_arms(config: ZipfConfig) -> list[Arm]:
    ranks = np.arange(1, config.vocabulary + 1, dtype=float)
    probs = ranks**-config.exponent
    probs /= probs.sum()
    arms = []
    for arm in config.arms:
        world = ZipfWorld(probs, arm.tail_cut)
        pipeline: Pipeline[Memorizer, Batch, Kept] = Pipeline(
            initialize=InitializeZipf(world, config.num_seeds, config.initial_samples),
            generate=DrawZipf(world, arm, config.initial_samples),
            verify=unverified,
            curate=keep_newest,
            train=TrainMemorizer(config.vocabulary),
            evaluate=EvaluateZipf(world, arm, config.initial_samples),
            gate=study_gate(config),
            history_window=1,
        )
        arms.append(Arm(arm.label(), pipeline))
    return arms


def zipf_claims(config: ZipfConfig, measured: Measured) -> list[Claim]:
    table = measured.metrics
    claims = []
    ranks = np.arange(1, config.vocabulary + 1, dtype=float)
    probs = ranks**-config.exponent / (ranks**-config.exponent).sum()
    errors: dict[str, float] = {}
    for arm in config.arms:
        series = table[arm.label()]
        n, last = newest(series)
        errors[arm.source] = last["collapse/error_mean"]
        if arm.source == "real" and n >= 4:
            gens = [g for g in sorted(series) if g >= n // 2]
            sizes = np.log([series[g]["axis/train_size"] for g in gens])
            slope = float(
                np.polyfit(sizes, np.log([series[g]["collapse/error_mean"] for g in gens]), 1)[0]
            )
            expected = -(1 - 1 / config.exponent)
            claims.append(
                Claim(
                    f"clean data: error falls as T^{expected:g} (slope within 0.1)",
                    f"slope {slope:.3f}",
                    abs(slope - expected) <= 0.1,
                )
            )
        if arm.source == "tail_cut":
            tail = float(probs[arm.tail_cut :].sum())
            error = errors["tail_cut"]
            claims.append(
                Claim(
                    f"synthetic data cut at rank {arm.tail_cut}: error plateaus at the cut tail mass (within 10%)",
                    f"{error:.5f} vs tail mass {tail:.5f} at T = {last['axis/train_size']:g}",
                    abs(error / tail - 1) <= 0.1,
                )
            )
        if arm.source == "iterate":
            support0, support = (
                series[0]["collapse/support_size_median"],
                last["collapse/support_size_median"],
            )
            claims.append(
                Claim(
                    f"iterated memorizer: the support shrinks to under half in {n} generations",
                    f"{support0:g} -> {support:g} items",
                    support < 0.5 * support0,
                    ClaimPlot(
                        "collapse/support_size_median", (arm.label(),), (None, 0.5 * support0)
                    ),
                )
            )
            blind = last["monitor/good_turing"]
            claims.append(
                Claim(
                    "iterated memorizer: the Good-Turing estimate on its own data misses the lost mass (under a tenth of it)",
                    f"estimate {blind:.4f}, true unseen mass {last['collapse/error_mean']:.4f}",
                    blind < 0.1 * last["collapse/error_mean"],
                )
            )
    if "mix" in errors and "tail_cut" in errors:
        claims.append(
            Claim(
                "mixing real data beats pure synthetic data at the largest T",
                f"{errors['mix']:.5f} vs {errors['tail_cut']:.5f}",
                errors["mix"] < errors["tail_cut"],
            )
        )
    return claims


EXPERIMENT = Experiment(ZipfConfig, build_arms, zipf_claims)
