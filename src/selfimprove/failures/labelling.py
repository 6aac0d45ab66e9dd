"""Taori & Hashimoto's data feedback loop: a classifier retrained each round on human labels
plus its own labels of fresh inputs, as a loop on the engine.

The world (the paper's 1-D toy): class 1 with probability `prior`, inputs x ~ N(+gap/2, sd)
for class 1 and N(-gap/2, sd) for class 0. The model is linear discriminant analysis, kept
as per-class sufficient statistics (count, sum, sum of squares) per seed, so "retrain on
everything so far" is adding a round's statistics (n_t = n0 + t (m + k)). Each round
(generation) `generate` draws k fresh inputs and the incumbent labels them, by its most
probable class (`argmax`) or by a draw from its p(y | x) (`sample`); `curate` adds m fresh
human labels (real data) and, with `review_share`, has a simulated reviewer check that share
of the model's labels (correct with `reviewer_accuracy`) and fix the ones it finds wrong.

Bias is the paper's: |P(pred = 1) - P(y = 1)|, computed exactly from the fitted decision
threshold and the world's distribution. Argmax labels over-produce the majority class, so
the fitted prior drifts up and the bias grows towards the paper's bound
`(1 + sum_i (k / n_i) prod_{j > i} (n_j - m) / n_j) * delta(n0)`, drawn dashed; sampled labels
keep the prior, so the bias stays where it started. The monitor needs no answer key: the gap
between the share of class 1 in the model's labels and in the same round's human labels
(`monitor/label_share_gap`, `core.monitors.share_gap`).

The world's label of each model-labelled input travels with it (column 2 of a round's batch)
for the simulated reviewer only; training reads columns 0 and 1 (input, label used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field
from scipy.special import expit, ndtr

from selfimprove.core import monitors
from selfimprove.core.config import ConfigModel, LoopConfig
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.experiment import Experiment, Measured, column, newest
from selfimprove.core.gates import build_gate
from selfimprove.core.policies import Kept
from selfimprove.core.records import Batch, Claim, ClaimPlot, Metrics, Provenance
from selfimprove.core.stages import unverified
from selfimprove.core.summaries import spread_summary
from selfimprove.failures.monitoring import Damage, monitor_claims

Labels = Literal["argmax", "sample"]


class LabellingArm(ConfigModel):
    """One arm: how the model labels its fresh inputs, and how many of them a person checks."""

    name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.() /=-]{1,60}$", description="arm name in tables and plots"
    )
    labels: Labels = Field(
        "argmax", description="argmax: the most probable class; sample: a draw from p(y | x)"
    )
    review_share: float = Field(
        0.0, ge=0, le=1, description="share of the model's labels a simulated reviewer checks"
    )
    reviewer_accuracy: float = Field(
        0.95, ge=0.5, le=1, description="probability that the reviewer's label is the true one"
    )

    def label(self) -> str:
        if self.name is not None:
            return self.name
        if self.review_share:
            return f"{self.labels}, {self.review_share:.0%} reviewed"
        return f"{self.labels} labels"


class LabellingConfig(LoopConfig):
    """Bias amplification (Taori & Hashimoto): retraining on the model's own labels."""

    kind: Literal["failures.self_labelling"] = Field(
        "failures.self_labelling", description="which experiment this recipe runs"
    )
    generations: int = Field(30, ge=0, le=10_000, description="rounds after round 0")
    checkpoint_every: int = Field(
        0, ge=0, description="a resume replays from round 0 in seconds: no snapshots by default"
    )
    num_seeds: int = Field(10, ge=1, le=100_000, description="independent replicates, one array")
    prior: float = Field(0.7, gt=0, lt=1, description="P(y = 1) in the world")
    class_gap: float = Field(1.0, gt=0, le=100, description="distance between the class means")
    noise_sd: float = Field(1.0, gt=0, le=100, description="standard deviation of each class")
    initial_labels: int = Field(2000, ge=10, le=10**7, description="n0: human labels of round 0")
    human_per_round: int = Field(200, ge=1, le=10**6, description="m: fresh human labels a round")
    model_per_round: int = Field(
        800, ge=1, le=10**6, description="k: fresh inputs the model labels a round"
    )
    arms: tuple[LabellingArm, ...] = Field(
        (LabellingArm(),), min_length=1, description="arms side by side"
    )

    def memory_bytes(self) -> int:
        """A round's inputs, three float64 columns per seed, a few copies."""
        size = self.initial_labels + self.human_per_round + self.model_per_round
        return 8 * 3 * 4 * self.num_seeds * size


@dataclass(frozen=True)
class World:
    prior: float
    class_gap: float
    noise_sd: float

    def draw(self, num_seeds: int, num: int, rng: np.random.Generator) -> np.ndarray:
        """`[S, num, 2]`: input and true label."""
        label = (rng.random((num_seeds, num)) < self.prior).astype(float)
        x = (label - 0.5) * self.class_gap + self.noise_sd * rng.standard_normal(label.shape)
        return np.stack([x, label], axis=-1)

    def predicted_share(self, threshold: np.ndarray, upward: np.ndarray) -> np.ndarray:
        """P(pred = 1) of the rule "x > threshold" (or "<" where `upward` is False)."""
        half = self.class_gap / 2
        above1 = ndtr((half - threshold) / self.noise_sd)
        above0 = ndtr((-half - threshold) / self.noise_sd)
        above = self.prior * above1 + (1 - self.prior) * above0
        return np.asarray(np.where(upward, above, 1 - above), dtype=float)


@dataclass(frozen=True)
class Lda:
    """Per-class count, sum and sum of squares `[S, 2]` (class 0, class 1), and each seed's
    round-0 bias `[S]` (delta(n0), which the bound scales)."""

    counts: np.ndarray
    sums: np.ndarray
    squares: np.ndarray
    initial_bias: np.ndarray

    def rule(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The posterior's logit a x + b `[S]` each, and the threshold where it is 0."""
        prior1 = self.counts[:, 1] / self.counts.sum(axis=1)
        means = self.sums / self.counts
        variance = (self.squares - self.counts * means**2).sum(axis=1) / self.counts.sum(axis=1)
        slope = (means[:, 1] - means[:, 0]) / variance
        offset = np.log(prior1 / (1 - prior1)) - (means[:, 1] ** 2 - means[:, 0] ** 2) / (
            2 * variance
        )
        return slope, offset, -offset / slope

    def posterior(self, x: np.ndarray) -> np.ndarray:
        """p(y = 1 | x) for inputs `[S, N]`."""
        slope, offset, _ = self.rule()
        return np.asarray(expit(slope[:, None] * x + offset[:, None]))


def statistics(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class count, sum, sum of squares `[S, 2]` of `[S, N, 2+]` (input, label, ...)."""
    x, label = data[..., 0], data[..., 1]
    ones = np.stack([1 - label, label], axis=-1)  # [S, N, 2]
    return (
        ones.sum(axis=1),
        (ones * x[..., None]).sum(axis=1),
        (ones * x[..., None] ** 2).sum(axis=1),
    )


def bias(model: Lda, world: World) -> np.ndarray:
    slope, _, threshold = model.rule()
    return np.abs(world.predicted_share(threshold, slope > 0) - world.prior)


@dataclass(frozen=True)
class FitHumanLabels:
    """Round 0: LDA on n0 human labels."""

    world: World
    num_seeds: int
    initial_labels: int

    def __call__(self, rng: np.random.Generator) -> tuple[Lda, Kept]:
        data = self.world.draw(self.num_seeds, self.initial_labels, rng)
        kept = (Batch(data, Provenance("real", 0, "human labels")),)
        counts, sums, squares = statistics(data)
        model = Lda(counts, sums, squares, np.zeros(self.num_seeds))
        return Lda(counts, sums, squares, bias(model, self.world)), kept


@dataclass(frozen=True)
class LabelFreshInputs:
    """k fresh inputs, labelled by the incumbent. `[S, k, 3]`: input, the model's label, the
    world's label (for the simulated reviewer only)."""

    world: World
    labels: Labels
    model_per_round: int

    def __call__(self, model: Lda, generation: int, rng: np.random.Generator) -> Batch:
        del generation
        fresh = self.world.draw(model.counts.shape[0], self.model_per_round, rng)
        posterior = model.posterior(fresh[..., 0])
        if self.labels == "argmax":
            label = (posterior > 0.5).astype(float)
        else:
            label = (rng.random(posterior.shape) < posterior).astype(float)
        return Batch(np.stack([fresh[..., 0], label, fresh[..., 1]], axis=-1))


@dataclass(frozen=True)
class AddHumanLabels:
    """The round's training data: m fresh human labels (real) and the model's labels, of
    which a simulated reviewer checks `review_share` and fixes those it finds wrong."""

    world: World
    human_per_round: int
    review_share: float
    reviewer_accuracy: float

    def __call__(
        self, scored: Batch, history: object, generation: int, rng: np.random.Generator
    ) -> Kept:
        del history
        human = self.world.draw(scored.num_seeds, self.human_per_round, rng)
        data = scored.data.copy()
        reviewed = rng.random(data.shape[:2]) < self.review_share
        right = rng.random(data.shape[:2]) < self.reviewer_accuracy
        verdict = np.where(right, data[..., 2], 1 - data[..., 2])  # the reviewer's label
        data[..., 1] = np.where(reviewed, verdict, data[..., 1])
        model_labels = Batch(data, scored.provenance)
        return (Batch(human, Provenance("real", generation, "human labels")), model_labels)


def refit(incumbent: Lda, kept: Kept, rng: np.random.Generator) -> Lda:
    """Retrain on all data so far: add the round's statistics (a new model)."""
    del rng
    counts, sums, squares = incumbent.counts, incumbent.sums, incumbent.squares
    for batch in kept:
        c, s, q = statistics(batch.data)
        counts, sums, squares = counts + c, sums + s, squares + q
    return Lda(counts, sums, squares, incumbent.initial_bias)


def label_share_gap(kept: Kept) -> Metrics:
    """The monitor: |share of class 1 in the model's labels - in the round's human labels|,
    median over seeds; and the model's label share itself."""
    human, model = kept
    shares = [b.data[..., 1].mean(axis=1) for b in (model, human)]
    two = [np.stack([s, 1 - s], axis=-1) for s in shares]
    gap = monitors.share_gap(two[0], two[1])
    return {
        "monitor/label_share_gap": float(np.median(gap)),
        "feedback/model_label_share": float(np.median(shares[0])),
    }


def bound_factor(generation: int, n0: int, m: int, k: int) -> float:
    """Taori & Hashimoto's bound on the bias after `generation` rounds, over delta(n0)."""
    n = [n0 + i * (m + k) for i in range(generation + 1)]
    total = 1.0
    for i in range(1, generation + 1):
        total += (
            k / n[i] * float(np.prod([(n[j] - m) / n[j] for j in range(i + 1, generation + 1)]))
        )
    return total


@dataclass(frozen=True)
class EvaluateBias:
    world: World
    sizes: tuple[int, int, int]  # n0, m, k

    def __call__(self, model: Lda, generation: int, rng: np.random.Generator) -> Metrics:
        del rng
        values = bias(model, self.world)
        slope, _, threshold = model.rule()
        share = self.world.predicted_share(threshold, slope > 0)
        bound = bound_factor(generation, *self.sizes) * model.initial_bias
        return spread_summary("feedback/bias", values) | {
            "feedback/bias_mean": float(values.mean()),
            "feedback/predicted_share": float(np.median(share)),
            "analytic/feedback/bias_mean": float(bound.mean()),
        }


def summarize_round(kept: Kept) -> Metrics:
    """The monitor, from round 1 (round 0 has human labels only: NaN, which alarms skip)."""
    if len(kept) == 2:
        return label_share_gap(kept)
    return {"monitor/label_share_gap": math.nan, "feedback/model_label_share": math.nan}


def build_arms(config: LabellingConfig) -> list[Arm]:
    world = World(config.prior, config.class_gap, config.noise_sd)
    sizes = (config.initial_labels, config.human_per_round, config.model_per_round)
    gate = build_gate(config.gate, "no gate: the study measures the loop as it runs")
    return [
        Arm(
            arm.label(),
            Pipeline(
                initialize=FitHumanLabels(world, config.num_seeds, config.initial_labels),
                generate=LabelFreshInputs(world, arm.labels, config.model_per_round),
                verify=unverified,
                curate=AddHumanLabels(
                    world, config.human_per_round, arm.review_share, arm.reviewer_accuracy
                ),
                train=refit,
                evaluate=EvaluateBias(world, sizes),
                gate=gate,
                history_window=1,
                summarize=summarize_round,
            ),
        )
        for arm in config.arms
    ]


GROWTH = 1.2
"""Argmax labels amplify: the mean bias ends at least this many times where it started
(reference: 0.137 -> 0.203, x1.48 in 30 rounds)."""
FLAT = 0.15
"""Sampled labels hold it: the mean bias ends within this fraction of its start (reference
0.137 -> 0.135)."""


def labelling_claims(config: LabellingConfig, measured: Measured) -> list[Claim]:
    claims = []
    for arm in config.arms:
        series = measured.metrics[arm.label()]
        rounds, last = newest(series)
        start, end = series[0]["feedback/bias_mean"], last["feedback/bias_mean"]
        bound = last["analytic/feedback/bias_mean"]
        stats = f"mean bias {start:.3f} -> {end:.3f} over {rounds} rounds (bound {bound:.3f})"
        label = arm.label()
        if rounds < 10:
            claims.append(
                Claim(
                    f"{label}: bias over rounds", f"{stats}; not checked: needs >= 10 rounds", None
                )
            )
            continue
        if arm.labels == "argmax" and arm.review_share == 0:
            text = f"{label}: retraining on its own argmax labels amplifies the bias (x{GROWTH} or more; reference 0.137 -> 0.203) within the paper's bound"
            plot = ClaimPlot("feedback/bias_mean", (label,), (GROWTH * start, bound), None)
            claims.append(Claim(text, stats, GROWTH * start <= end <= bound, plot))
        elif arm.labels == "sample":
            text = f"{label}: labels sampled from p(y | x) hold the bias flat (within {FLAT:.0%}; reference 0.137 -> 0.135)"
            band = (start * (1 - FLAT), start * (1 + FLAT))
            plot = ClaimPlot("feedback/bias_mean", (label,), band, None)
            claims.append(Claim(text, stats, band[0] <= end <= band[1], plot))
        else:
            unreviewed = _unreviewed_end(config, measured)
            text = f"{label}: a reviewer checking {arm.review_share:.0%} of the model's labels removes at least half that share of the amplification (growth <= (1 - {arm.review_share:g} / 2) x unreviewed argmax's)"
            if unreviewed is None:
                claims.append(Claim(text, f"{stats}; not checked: no unreviewed argmax arm", None))
                continue
            growth, base = end - start, unreviewed - series[0]["feedback/bias_mean"]
            measured_text = f"{stats}; growth {growth:+.3f} vs unreviewed {base:+.3f}"
            top = start + (1 - arm.review_share / 2) * base
            plot = ClaimPlot("feedback/bias_mean", (label,), (None, top), None)
            claims.append(Claim(text, measured_text, growth <= top - start, plot))
    failing = [a.label() for a in config.arms if a.labels == "argmax" and a.review_share == 0]
    cured = [a.label() for a in config.arms if a.labels == "sample"]
    damage = Damage("feedback/bias_mean", 0.02)
    return claims + monitor_claims(config.alarms, measured, failing, cured, damage, "round")


def _unreviewed_end(config: LabellingConfig, measured: Measured) -> float | None:
    for arm in config.arms:
        if arm.labels == "argmax" and arm.review_share == 0:
            return column(measured.metrics[arm.label()], "feedback/bias_mean")[-1]
    return None


EXPERIMENT = Experiment(LabellingConfig, build_arms, labelling_claims)
