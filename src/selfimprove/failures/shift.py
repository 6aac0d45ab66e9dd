"""Distribution shift as a loop: a classifier trained on real users' requests labels clean
synthetic requests for its successor, generation after generation, and ends up working on
synthetic text and failing on real users.

| stage | what it does |
|---|---|
| initialize | per seed, `real_examples` real users' requests (informal phrasings, slang, typos, odd case; the rare intents rare) with their true intents; a classifier fitted from zero |
| generate | a writer's requests (intents as users ask for them, or `balanced`; canonical, or informal at the arm's `informal_share`; the users' noise on them when the arm injects `noise`), each labelled by the incumbent (self-labelling) |
| verify | nothing checks the labels (`unverified`): that is the setting studied |
| curate | drops self-labels less sure than `min_confidence` (self-filtering) and adds a `real_share` of generation 0's real requests |
| train | the incumbent fine-tuned on what was kept (warm start, `failures/classifier.py`) |
| evaluate | accuracy on held-out clean, messy and rare-intent requests; the share of logged traffic the model is unsure about |

The kept data's own metrics (`summarize`) hold the label-free monitors of the data: the
Jensen-Shannon distance between its character 3-grams and logged traffic, and the share of
the traffic's words it contains. Test sets and traffic come from the grammar's held-out
partition (`failures/commands.py`) and are drawn once, for every arm (common random
numbers); training data never comes from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from selfimprove.core.config import ConfigModel
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.experiment import Experiment
from selfimprove.core.gates import build_gate
from selfimprove.core.records import Evaluation, Metrics, Sample
from selfimprove.core.seeding import stage_rng
from selfimprove.core.stages import unverified
from selfimprove.failures import commands
from selfimprove.failures.classifier import Classifier, blank, featurize, probs
from selfimprove.failures.noise import corrupt
from selfimprove.failures.requests import (
    NGRAM_BUCKETS,
    NO_GATE,
    PER_REQUEST,
    FineTune,
    Kept,
    Probe,
    Requests,
    Setup,
    Traffic,
    UsersLoopConfig,
    fit_kept,
    joined,
    labelled,
    real_sample,
    spread,
    texts_of,
    user_requests,
)
from selfimprove.failures.shift_claims import shift_claims


class ShiftArm(ConfigModel):
    """One arm: what the successor's training data is made of."""

    name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.+-]{1,40}$", description="arm name (default from settings)"
    )
    real_share: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="keep real data: this share of each training set is generation 0's real "
        "requests (drawn anew each generation)",
    )
    noise: bool = Field(
        False, description="noise injection: the users' noise model applied to synthetic text"
    )
    balanced: bool = Field(
        False, description="curriculum: synthetic requests cover every intent equally often"
    )
    informal_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="curriculum: share of synthetic requests phrased informally (the "
        "phrasings real users use and a canonical writer does not)",
    )
    labels: Literal["incumbent", "writer"] = Field(
        "incumbent",
        description="incumbent: each synthetic request labelled by the incumbent's most likely "
        "intent (self-labelling); writer: by the intent the writer was asked for "
        "(label-conditioned generation, no labelling error)",
    )
    min_confidence: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="self-filtering: keep a self-labelled request only if the incumbent gives "
        "its label at least this probability (0: keep all)",
    )

    def num_real(self, examples_per_generation: int) -> int:
        """Real requests per seed in each later training set."""
        return round(self.real_share * examples_per_generation)

    def label(self) -> str:
        if self.name is not None:
            return self.name
        parts = [f"real-{self.real_share:g}"] if self.real_share else []
        parts += ["noise"] * self.noise + ["balanced"] * self.balanced
        parts += [f"informal-{self.informal_share:g}"] if self.informal_share else []
        parts += ["writer-labels"] * (self.labels == "writer")
        parts += [f"filter-{self.min_confidence:g}"] if self.min_confidence else []
        return "+".join(parts) or "synthetic"


class ShiftConfig(UsersLoopConfig):
    """Distribution shift: self-labelled clean synthetic data loses the real users' messy tail."""

    kind: Literal["failures.shift"] = Field(
        "failures.shift", description="which experiment this recipe runs"
    )
    real_examples: int = Field(
        1500, ge=10, le=100_000, description="generation 0's real requests per seed"
    )
    examples_per_generation: int = Field(
        1500, ge=10, le=100_000, description="requests per seed in each later training set"
    )
    test_examples: int = Field(
        1000, ge=10, le=100_000, description="held-out requests in each test set"
    )
    traffic_examples: int = Field(
        1000, ge=10, le=100_000, description="logged, unlabelled real requests the monitors read"
    )
    unsure_below: float = Field(
        0.5,
        gt=0,
        le=1,
        description="monitor: a request counts as unsure when no intent gets this probability",
    )
    arms: tuple[ShiftArm, ...] = Field(
        (ShiftArm(),), min_length=1, description="data recipes run side by side"
    )

    @model_validator(mode="after")
    def _real_share_fits(self) -> ShiftConfig:
        """Each later generation draws its real requests from generation 0's without
        repeats, so an arm cannot ask for more than generation 0 holds; and it writes the
        rest, so at least one request must be left to write."""
        total = self.examples_per_generation
        real = {arm.label(): arm.num_real(total) for arm in self.arms}
        short = [f"{name} ({num})" for name, num in real.items() if num > self.real_examples]
        if short:
            raise ValueError(
                "arms.real_share: real_share x examples_per_generation real requests per "
                f"generation exceed real_examples ({self.real_examples}) in {', '.join(short)}: "
                "lower real_share or examples_per_generation, or raise real_examples"
            )
        full = [name for name, num in real.items() if num >= total]
        if full:
            raise ValueError(
                f"arms.real_share: real_share x examples_per_generation makes all {total} "
                f"requests real in {', '.join(full)}, leaving no synthetic request to write: "
                "lower real_share"
            )
        return self

    def memory_bytes(self) -> int:
        """The incumbent, the candidate and their copies, plus every request held with its
        hashed features (errs high: the shipped recipes measured 78 and 36 MiB above the
        interpreter, estimated 93 and 63)."""
        weights = self.num_seeds * self.train.features * commands.NUM_INTENTS * 8
        texts = self.num_seeds * (self.real_examples + 2 * self.examples_per_generation)
        probes = 3 * self.test_examples + self.traffic_examples
        return 4 * weights + PER_REQUEST * (texts + probes)


@dataclass(frozen=True)
class Probes:
    """What every arm is measured on, drawn once per run."""

    clean: Probe  # canonical held-out requests, intents as users ask for them
    messy: Probe  # the same intents as real users type them, every one messy
    rare: Probe  # real users' requests for the rare intents only
    traffic: Traffic  # logged real requests, unlabelled


def draw_probes(config: ShiftConfig) -> Probes:
    rng = stage_rng(config.seed, 0, "setup/probes")
    n, f = config.test_examples, config.train.features
    intents = commands.draw_intents(n, rng)
    clean = Probe.of(commands.write(intents, True, rng), intents, f)
    messy_texts = user_requests(config, intents, True, rng, every=True)
    rare = commands.draw_intents(n, rng, allowed=commands.RARE, balanced=True)
    rare_texts = user_requests(config, rare, True, rng)
    traffic = commands.draw_intents(config.traffic_examples, rng)
    traffic_texts = user_requests(config, traffic, True, rng)
    return Probes(
        clean,
        Probe.of(messy_texts, intents, f),
        Probe.of(rare_texts, rare, f),
        Traffic.of(traffic_texts, f),
    )


ShiftSetup = Setup[ShiftConfig, ShiftArm, Probes]  # what every stage of an arm reads


@dataclass(frozen=True)
class FitRealUsers:
    """Generation 0: real users' requests with their true intents; a classifier from zero."""

    setup: ShiftSetup

    def __call__(self, rng: np.random.Generator) -> tuple[Classifier, Kept]:
        c = self.setup.config
        texts, intents = [], []
        for _ in range(c.num_seeds):
            drawn = commands.draw_intents(c.real_examples, rng)
            texts.append(user_requests(c, drawn, False, rng))
            intents.append(drawn)
        kept = (real_sample(labelled(texts, intents), 0, "real users"),)
        start = blank(c.num_seeds, c.train.features, commands.NUM_INTENTS)
        return fit_kept(start, kept, c.train, rng, c.train.initial_epochs), kept


@dataclass(frozen=True)
class WriteAndLabel:
    """The writer's requests, each labelled with the incumbent's most likely intent (or the
    writer's, `labels: writer`); the confidence is the incumbent's probability of the label."""

    setup: ShiftSetup

    def __call__(self, model: Classifier, generation: int, rng: np.random.Generator) -> Requests:
        del generation  # the engine stamps which model labelled them
        c, arm = self.setup.config, self.setup.arm
        num = c.examples_per_generation - arm.num_real(c.examples_per_generation)
        texts, labels, intents, confidence, features = [], [], [], [], []
        for seed in range(c.num_seeds):
            drawn = commands.draw_intents(num, rng, balanced=arm.balanced)
            written = commands.write(drawn, False, rng, informal=arm.informal_share)
            if arm.noise:
                written = corrupt(written, c.users, rng)[0]
            features.append(featurize(written, c.train.features))
            p = probs(model, seed, features[-1])  # [N, C]
            texts.append(tuple(written))
            labels.append(drawn if arm.labels == "writer" else p.argmax(axis=1))
            intents.append(drawn)
            confidence.append(p[np.arange(num), labels[-1]])
        made = Requests(tuple(texts), tuple(labels), tuple(intents), tuple(confidence))
        made.cache.update(((s, c.train.features), x) for s, x in enumerate(features))
        return made


@dataclass(frozen=True)
class FilterAndMix:
    """Self-filtering, then a share of generation 0's real requests beside the synthetic."""

    setup: ShiftSetup

    def __call__(
        self,
        scored: Sample[Requests],
        history: Sequence[Kept],
        generation: int,
        rng: np.random.Generator,
    ) -> Kept:
        del generation
        made, arm = scored.content, self.setup.arm
        sure = [np.flatnonzero(c >= arm.min_confidence) for c in made.confidence]
        parts = [replace(scored, content=made.take(sure))]
        num_real = arm.num_real(self.setup.config.examples_per_generation)
        if num_real:
            real = history[0][0]  # generation 0 kept its real requests alone
            picks = [rng.choice(len(t), size=num_real, replace=False) for t in real.content.texts]
            parts.append(replace(real, content=real.content.take(picks)))
        return tuple(parts)


@dataclass(frozen=True)
class MeasureShift:
    """Accuracy on the held-out probes, and the share of traffic the model is unsure of."""

    setup: ShiftSetup

    def __call__(self, model: Classifier, generation: int, rng: np.random.Generator) -> Evaluation:
        del rng  # the probes are fixed; nothing is drawn
        c, probes = self.setup.config, self.setup.probes
        metrics: Metrics = {}
        metrics |= spread("eval/clean_accuracy", probes.clean.accuracy(model))
        metrics |= spread("eval/messy_accuracy", probes.messy.accuracy(model))
        metrics |= spread("eval/rare_accuracy", probes.rare.accuracy(model))
        metrics |= spread(
            "monitor/unsure_share", probes.traffic.unsure_share(model, c.unsure_below)
        )
        if generation not in (0, c.generations):
            return Evaluation(metrics)
        return Evaluation(metrics, {"samples": mistakes(model, probes.messy)})


def mistakes(model: Classifier, probe: Probe, shown: int = 8) -> list[str]:
    """The first messy requests seed 0's model gets wrong, as the report shows them."""
    guesses = probs(model, 0, probe.x).argmax(axis=1)
    wrong = np.flatnonzero(guesses != probe.intents)[:shown]
    names = commands.NAMES
    return [
        f"{probe.texts[i]!r}: {names[guesses[i]]} (is {names[probe.intents[i]]})" for i in wrong
    ]


@dataclass(frozen=True)
class KeptMonitors:
    """What the kept data is like: the label-free monitors an operator could compute against
    logged traffic, and, for the report, the label error of its self-labels (the truth is
    read here, never by `train`)."""

    setup: ShiftSetup

    def __call__(self, kept: Kept) -> Metrics:
        traffic, seeds = self.setup.probes.traffic, range(self.setup.config.num_seeds)
        js = [traffic.ngram_js(joined(kept, s, NGRAM_BUCKETS)[0]) for s in seeds]
        metrics = spread("monitor/ngram_js", np.array(js))
        coverage = [traffic.word_coverage(texts_of(kept, s)) for s in seeds]
        metrics |= spread("monitor/word_coverage", np.array(coverage))
        labels = [np.concatenate([p.content.labels[s] for p in kept]) for s in seeds]
        # a filter that keeps nothing for a seed keeps no rare intent and no real request
        rare = np.array([np.mean(commands.RARE[y]) if y.size else 0.0 for y in labels])
        metrics["kept/rare_share_mean"] = float(rare.mean())
        real = sum(p.content.num_samples for p in kept if p.provenance.source == "real")
        total = sum(p.content.num_samples for p in kept)
        metrics["kept/real_share_mean"] = real / total if total else 0.0
        made = [p.content for p in kept if p.provenance.source == "synthetic"]
        if made and made[0].num_samples:
            wrong = np.concatenate(
                [y != i for y, i in zip(made[0].labels, made[0].intents, strict=True)]
            )
            metrics["kept/label_error_mean"] = float(wrong.mean())
        return metrics


def build_arms(config: ShiftConfig) -> list[Arm]:
    probes = draw_probes(config)
    arms = []
    for arm in config.arms:
        setup = ShiftSetup(config, arm, probes)
        pipeline: Pipeline[Classifier, Requests, Kept] = Pipeline(
            initialize=FitRealUsers(setup),
            generate=WriteAndLabel(setup),
            verify=unverified,
            curate=FilterAndMix(setup),
            train=FineTune(config.train),
            evaluate=MeasureShift(setup),
            gate=build_gate(config.gate, NO_GATE),
            # the engine keeps generation 0's kept data and the newest (0 keeps as 1 does);
            # curate reads generation 0's real requests alone
            history_window=0,
            summarize=KeptMonitors(setup),
        )
        arms.append(Arm(arm.label(), pipeline))
    return arms


EXPERIMENT = Experiment(ShiftConfig, build_arms, shift_claims)
