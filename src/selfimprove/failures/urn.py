"""Ensign et al.'s runaway feedback loop (predictive policing) as a loop on the engine.

Two regions, A and B, with true daily incident rates `rates`. The model is an urn of
discovered incidents per region (from `prior`); each day (one generation) one patrol goes to
region A with probability equal to A's share of the urn, and an incident is discovered with
the visited region's rate, only where the patrol went. The naive loop puts every discovery
back in the urn, so data come from where the model already looks: with equal rates the share
ends anywhere in [0, 1] (a Polya urn), with rates 0.3 / 0.2 it runs past the true share 0.6
towards 1. Thinning (the paper's correction) keeps a discovery with probability
`min(p_A, p_B) / p_visited`, so each region's kept discoveries arrive in proportion to its
rate and the share learns the truth.

Conventions: shares are region A's; a model holds one urn per seed (`[S, 2]`), one call works
on all seeds. The monitor needs no truth: the inverse-propensity estimate of each region's
rate (discoveries divided by the probability the patrol was there, every discovery counted)
is unbiased whatever the allocation, so its gap to the urn's share says the loop is feeding
on itself (`monitor/ipw_gap`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from selfimprove.core import monitors
from selfimprove.core.config import ConfigModel, LoopConfig
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.experiment import Experiment, Measured, newest
from selfimprove.core.gates import build_gate
from selfimprove.core.policies import Kept
from selfimprove.core.records import Batch, Claim, ClaimPlot, Evaluation
from selfimprove.core.stages import unverified
from selfimprove.core.summaries import spread_summary
from selfimprove.failures.monitoring import Damage, monitor_claims

Correction = Literal["none", "thinning"]
_REGION, _FOUND, _PROPENSITY, _KEPT = range(4)  # the columns of a day's batch [S, 1, 4]


class UrnArm(ConfigModel):
    """One arm: the world's true rates and what the loop does with its discoveries."""

    name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.() /=-]{1,60}$", description="arm name in tables and plots"
    )
    rates: tuple[float, float] = Field(
        (0.3, 0.2), description="true daily incident rates of regions A and B (each in (0, 1])"
    )
    correction: Correction = Field(
        "none",
        description="none: every discovery goes back in the urn; thinning: kept with "
        "probability min(p_A, p_B) / p(visited region) (Ensign et al.)",
    )

    def label(self) -> str:
        if self.name is not None:
            return self.name
        return f"{self.correction}, rates {self.rates[0]:g}/{self.rates[1]:g}"

    @property
    def true_share(self) -> float:
        return self.rates[0] / (self.rates[0] + self.rates[1])


class UrnConfig(LoopConfig):
    """Runaway feedback (Ensign et al.): patrols go where past discoveries were."""

    kind: Literal["failures.urn"] = Field(
        "failures.urn", description="which experiment this recipe runs"
    )
    generations: int = Field(2000, ge=0, le=100_000, description="days after day 0")
    checkpoint_every: int = Field(
        0, ge=0, description="a resume replays from day 0 in seconds: no snapshots by default"
    )
    num_seeds: int = Field(2000, ge=1, le=1_000_000, description="independent runs, one array")
    prior: tuple[float, float] = Field(
        (1.0, 1.0), description="the urn's starting counts for regions A and B (each > 0)"
    )
    runaway_share: float = Field(
        0.9, gt=0.5, lt=1, description="a run whose share of A is above this has run away"
    )
    monitor_after: int = Field(
        50,
        ge=0,
        description="days before the monitor reports (its estimate needs discoveries first)",
    )
    arms: tuple[UrnArm, ...] = Field((UrnArm(),), min_length=1, description="arms side by side")

    def memory_bytes(self) -> int:
        """A few float64 arrays of `[S, 4]` per day; the engine keeps two days."""
        return 8 * 4 * 16 * self.num_seeds

    @model_validator(mode="after")
    def _positive(self) -> UrnConfig:
        if min(self.prior) <= 0:
            raise ValueError("prior counts must be > 0")
        for arm in self.arms:
            if not all(0 < r <= 1 for r in arm.rates):
                raise ValueError(f"arm {arm.label()}: rates must lie in (0, 1]")
        return self


@dataclass(frozen=True)
class Urn:
    """Discoveries per region put back in the urn `[S, 2]`, and every discovery weighted by
    the inverse of the probability that the patrol was there `[S, 2]` (the monitor's)."""

    counts: np.ndarray
    weighted: np.ndarray

    @property
    def share(self) -> np.ndarray:
        """`[S]`: region A's share of the urn, the probability of patrolling A tomorrow."""
        share: np.ndarray = self.counts[:, 0] / self.counts.sum(axis=1)
        return share


@dataclass(frozen=True)
class StartUrn:
    num_seeds: int
    prior: tuple[float, float]

    def __call__(self, rng: np.random.Generator) -> tuple[Urn, Kept]:
        del rng  # day 0 has no discoveries
        counts = np.tile(np.asarray(self.prior, dtype=float), (self.num_seeds, 1))
        return Urn(counts, np.zeros_like(counts)), ()


@dataclass(frozen=True)
class Patrol:
    """One day: the patrol goes to A with A's share, and discovers an incident there with the
    region's rate. `[S, 1, 4]`: region (0 = A), found, propensity of that region, kept (0)."""

    rates: tuple[float, float]

    def __call__(self, model: Urn, generation: int, rng: np.random.Generator) -> Batch:
        del generation
        share = model.share
        region = (rng.random(share.shape) >= share).astype(float)  # 0: A, 1: B
        rate = np.where(region == 0, self.rates[0], self.rates[1])
        found = (rng.random(share.shape) < rate).astype(float)
        propensity = np.where(region == 0, share, 1 - share)
        day = np.stack([region, found, propensity, np.zeros_like(found)], axis=-1)
        return Batch(day[:, None, :])


@dataclass(frozen=True)
class CurateDiscoveries:
    """What goes back in the urn: every discovery (naive), or each with probability
    `min(p_A, p_B) / p_visited` (thinning), so both regions feed the urn at the same
    effective patrol rate."""

    correction: Correction

    def __call__(
        self, scored: Batch, history: object, generation: int, rng: np.random.Generator
    ) -> Kept:
        del history, generation
        day = scored.data[:, 0, :].copy()  # [S, 4]
        found = day[:, _FOUND]
        if self.correction == "thinning":
            share = np.where(day[:, _REGION] == 0, day[:, _PROPENSITY], 1 - day[:, _PROPENSITY])
            least = np.minimum(share, 1 - share)
            found = found * (rng.random(found.shape) < least / day[:, _PROPENSITY])
        day[:, _KEPT] = found
        return (Batch(day[:, None, :], scored.provenance),)


def update_urn(incumbent: Urn, kept: Kept, rng: np.random.Generator) -> Urn:
    """Add the day's kept discoveries to the urn, and every discovery over its propensity to
    the weighted counts (a new model: the incumbent is never mutated)."""
    del rng
    day = kept[0].data[:, 0, :]
    rows = np.arange(day.shape[0])
    region = day[:, _REGION].astype(int)
    counts, weighted = incumbent.counts.copy(), incumbent.weighted.copy()
    counts[rows, region] += day[:, _KEPT]
    weighted[rows, region] += day[:, _FOUND] / day[:, _PROPENSITY]
    return Urn(counts, weighted)


SHOWN_RUNS = 500  # runs whose shares the report's histogram draws


@dataclass(frozen=True)
class EvaluateUrn:
    true_share: float
    runaway_share: float
    monitor_after: int
    days: int

    def __call__(self, model: Urn, generation: int, rng: np.random.Generator) -> Evaluation:
        del rng
        share = model.share
        metrics = spread_summary("feedback/share", share) | {
            "feedback/share_mean": float(share.mean()),
            "feedback/share_sd": float(share.std()),
            "feedback/share_error": float(np.abs(share - self.true_share).mean()),
            "feedback/runaway_share": float((share > self.runaway_share).mean()),
            "analytic/feedback/share_mean": self.true_share,
        }
        metrics["monitor/ipw_gap"] = math.nan  # until it has evidence: alarms skip NaN
        seen = model.weighted.sum(axis=1) > 0
        if generation >= self.monitor_after and seen.any():
            estimate = model.weighted[seen, 0] / model.weighted[seen].sum(axis=1)
            two = np.stack([estimate, 1 - estimate], axis=-1)
            urn = np.stack([share[seen], 1 - share[seen]], axis=-1)
            metrics["monitor/ipw_gap"] = float(np.median(monitors.share_gap(urn, two)))
        exhibits = {}
        if generation in {self.days // 20, self.days // 4, self.days}:  # the histogram's days
            exhibits["share_of_region_A"] = [round(float(v), 3) for v in share[:SHOWN_RUNS]]
        return Evaluation(metrics, exhibits)


def build_arms(config: UrnConfig) -> list[Arm]:
    gate = build_gate(config.gate, "no gate: the study measures the loop as it runs")
    return [
        Arm(
            arm.label(),
            Pipeline(
                initialize=StartUrn(config.num_seeds, config.prior),
                generate=Patrol(arm.rates),
                verify=unverified,
                curate=CurateDiscoveries(arm.correction),
                train=update_urn,
                evaluate=EvaluateUrn(
                    arm.true_share, config.runaway_share, config.monitor_after, config.generations
                ),
                gate=gate,
                history_window=1,
            ),
        )
        for arm in config.arms
    ]


UNIFORM_SD = (1 / 12) ** 0.5  # 0.289: the spread of a uniform share on [0, 1]


def urn_claims(config: UrnConfig, measured: Measured) -> list[Claim]:
    """Known answers (REFERENCES, 2,000 runs x 2,000 days): equal rates, naive: the share is
    spread like a uniform (sd 0.29); 0.3 / 0.2, naive: mean 0.83, half the runs above 0.9;
    thinning: 0.601 (sd 0.025)."""
    claims = []
    for arm in config.arms:
        label, truth = arm.label(), arm.true_share
        days, last = newest(measured.metrics[arm.label()])
        mean, sd = last["feedback/share_mean"], last["feedback/share_sd"]
        runaway = last["feedback/runaway_share"]
        stats = f"mean share {mean:.3f}, sd {sd:.3f}, above {config.runaway_share:g}: {runaway:.0%} (true {truth:.3f}, {days} days)"
        if days < 200 or config.num_seeds < 200:
            why = "not checked at these settings: needs >= 200 days and >= 200 runs"
            claims.append(Claim(f"{label}: the feedback loop", f"{stats}; {why}", None))
            continue
        if arm.correction == "thinning":
            band = 0.02
            text = f"{label}: thinning learns the true share {truth:.2f} within {band} (reference 0.601, sd 0.025)"
            plot = ClaimPlot(
                "feedback/share_mean", (label,), (truth - band, truth + band), truth, "true share"
            )
            claims.append(Claim(text, stats, abs(mean - truth) <= band, plot))
        elif arm.rates[0] == arm.rates[1]:
            text = f"{label}: with equal rates the naive share runs away anywhere: spread like a uniform on [0, 1] (sd 0.29 +- 0.04), not held at 0.5"
            plot = ClaimPlot("feedback/share_sd", (label,), (UNIFORM_SD - 0.04, UNIFORM_SD + 0.04))
            claims.append(Claim(text, stats, abs(sd - UNIFORM_SD) <= 0.04, plot))
        else:
            text = f"{label}: the naive share runs away past the true {truth:.2f}: mean >= {truth + 0.15:.2f} and >= 30% of runs above {config.runaway_share:g} (reference at 2,000 days: 0.83, ~50%)"
            plot = ClaimPlot(
                "feedback/share_mean", (label,), (truth + 0.15, 1.0), truth, "true share"
            )
            holds = mean >= truth + 0.15 and runaway >= 0.3
            claims.append(Claim(text, stats, holds, plot))
    failing = [a.label() for a in config.arms if a.correction == "none"]
    cured = [a.label() for a in config.arms if a.correction == "thinning"]
    damage = Damage("feedback/share_error", 0.1)
    return claims + monitor_claims(config.alarms, measured, failing, cured, damage, "day")


EXPERIMENT = Experiment(UrnConfig, build_arms, urn_claims)
