"""Error amplification as a loop: a tiny GPT learns country capitals from statements with a
few planted errors, and each generation is trained on the previous model's statements.

initialize  per replicate, a fresh tiny GPT trained on one statement per entity (`australia:
            canberra`) from the knowledge base (`data/capitals.py`), `planted_errors` of them
            wrong (another entity's capital swapped in)
generate    each replicate's incumbent writes `statements_per_entity` statements per entity,
            sampled at `temperature`
verify      unverified (nothing checks), or the lookup verifier: a statement passes when the
            knowledge base gives the same capital
review      optional (`arms[].review`, a `review:` section): simulated reviewers audit that
            share of the statements against the knowledge base (`oversight/`)
curate      keeps what was not failed; a failed statement is dropped, or (`verify: correct`)
            replaced by the knowledge base's statement; `real_share` adds the true statements
            of that share of the entities, drawn afresh
train       a fresh tiny GPT per replicate, `steps` steps on the kept statements
evaluate    each replicate's greedy answer for every entity against the truth: error rate,
            planted errors still wrong (and still the very capital planted), new errors
            (right at generation 0, wrong now), confidence (the model's probability of its
            answer) on wrong and on right answers; and the monitors, which need no answer
            key: drift (answers changed since generation 0) and churn (since the incumbent)

Replicates (`num_seeds`) are independent copies of the whole experiment inside one arm
(arrays `[S, N]`: replicates, entities; `failures/fact_base.py` holds the data and model).
Metrics are means over replicates; the error rate and the drift carry `_low` / `_high`, the
95% interval of that mean (Student's t over the replicates; none with one replicate). Each
generation's model is trained from fresh weights: what a verifier drops is forgotten, not
kept from the incumbent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from scipy.stats import t as student_t

from selfimprove.core.config import ConfigModel, LoopConfig, ReviewConfig
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.experiment import Experiment
from selfimprove.core.gates import build_gate
from selfimprove.core.memo import SharedDraw
from selfimprove.core.records import Evaluation, Metrics, Provenance, Sample, Verdict
from selfimprove.core.stages import unverified
from selfimprove.data.capitals import capitals
from selfimprove.failures.fact_base import (
    KNOWLEDGE_BASE,
    REVIEW,
    FactModels,
    Facts,
    Statement,
    answers_of,
    beliefs,
    export_records,
    train_fresh,
)
from selfimprove.failures.fact_claims import fact_claims
from selfimprove.models.shape import GptShape
from selfimprove.models.tiny_gpt import EOS, PAD, LmModel, LmTrainConfig, SamplingConfig, sample

Verify = Literal["none", "drop", "correct"]


class FactArm(ConfigModel):
    """One arm: what checks the statements before the next model learns them."""

    name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="arm name (default from settings)"
    )
    verify: Verify = Field(
        "none",
        description="none: nothing checks; drop: the lookup verifier fails wrong statements and "
        "curate drops them; correct: ... and replaces each by the knowledge base's statement",
    )
    real_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of entities whose true statement is added each generation",
    )
    review: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of statements the `review:` section's reviewers audit (0: none)",
    )

    def label(self) -> str:
        if self.name is not None:
            return self.name
        parts = [] if self.verify == "none" else [f"verify-{self.verify}"]
        parts += [f"real-{self.real_share:g}"] if self.real_share else []
        parts += [f"review-{self.review:g}"] if self.review else []
        return "+".join(parts) or "unverified"


class FactsConfig(LoopConfig):
    """Error amplification: planted wrong facts, learned and relearned from the model's own
    statements."""

    kind: Literal["failures.facts"] = Field(
        "failures.facts", description="which experiment this recipe runs"
    )
    generations: int = Field(10, ge=0, description="generations after generation 0")
    num_seeds: int = Field(5, ge=1, le=100, description="independent replicates per arm")
    entities: int = Field(
        150, ge=2, le=10_000, description="countries drawn from the knowledge base (about 228)"
    )
    planted_errors: int = Field(
        8, ge=0, description="wrong capitals in generation 0's statements, per replicate"
    )
    statements_per_entity: int = Field(
        2, ge=1, le=64, description="statements the incumbent writes per entity per generation"
    )
    temperature: float = Field(
        1.0, ge=0, le=10, description="sampling temperature of those statements (0: greedy)"
    )
    model: GptShape = Field(
        GptShape(context=8, layers=1, heads=4, width=32), description="the tiny GPT"
    )
    steps: int = Field(150, ge=1, le=100_000, description="training steps per generation (fresh)")
    training: LmTrainConfig = Field(
        LmTrainConfig(batch_size=128, learning_rate=1e-2, warmup_steps=20),
        description="optimizer settings",
    )
    arms: tuple[FactArm, ...] = Field(
        (FactArm(),), min_length=1, description="checks run side by side"
    )

    @model_validator(mode="after")
    def _consistent(self) -> FactsConfig:
        if self.planted_errors >= self.entities:
            raise ValueError("planted_errors: fewer than entities (one wrong capital each)")
        if any(arm.review > 0 for arm in self.arms) and self.review is None:
            raise ValueError("arms with review need a `review:` section (its reviewers)")
        return self

    def memory_bytes(self) -> int:
        """Training (the model is tiny) and two generations of statements as Python objects
        (about 1 KB each with their provenance)."""
        statements = self.num_seeds * self.entities * (self.statements_per_entity + 1)
        vocab = 2 * self.entities + 3
        return self.model.memory_bytes(self.training.batch_size, vocab) + 2 * 1024 * statements


# --- stages -------------------------------------------------------------------------------


_GENERATION_ZERO: SharedDraw[str, tuple[LmModel, ...]] = SharedDraw()
"""Generation 0's models: every arm of a run starts from the same statements and stream, so
the first arm's models serve them all (a pure function's memo; a resumed run retrains)."""


@dataclass(frozen=True)
class Initialize:
    config: FactsConfig
    facts: Facts

    def __call__(
        self, rng: np.random.Generator
    ) -> tuple[FactModels, tuple[Sample[Statement], ...]]:
        f = self.facts
        kept = f.generation_zero()
        key = self.config.model_dump_json(exclude={"arms"})
        lms = _GENERATION_ZERO.get(key, rng, lambda: self._train(kept, rng))
        answers = answers_of(lms, f)
        return FactModels(lms, answers, answers), kept

    def _train(
        self, kept: Sequence[Sample[Statement]], rng: np.random.Generator
    ) -> tuple[LmModel, ...]:
        by_replicate = _by_replicate(kept, len(self.facts.told))
        return tuple(train_fresh(self.config, self.facts, rows, rng) for rows in by_replicate)


@dataclass(frozen=True)
class WriteStatements:
    """Generate: each replicate's incumbent answers every entity, sampled at a temperature."""

    config: FactsConfig
    facts: Facts

    def __call__(
        self, model: FactModels, generation: int, rng: np.random.Generator
    ) -> list[Statement]:
        del generation
        k, f = self.config.statements_per_entity, self.facts
        settings = SamplingConfig(
            max_new_tokens=1, temperature=self.config.temperature, stop_at_end=False
        )
        out = []
        for s, lm in enumerate(model.lms):
            greedy = beliefs(lm, f)[0]
            rows = sample(lm, f.prompts * k, settings, rng)
            for j, row in enumerate(rows):
                i = j % len(f.entities)
                if row[0] not in (PAD, EOS):  # those: the model said nothing
                    off_mode = bool(row[0] != greedy[i])
                    out.append(Statement(s, f.entities[i], f.word(row[0]), off_mode))
        return out


@dataclass(frozen=True)
class LookUp:
    """Verify: the statement's capital against the knowledge base's."""

    def __call__(self, samples: Sequence[Statement], rng: np.random.Generator) -> list[Verdict]:
        del rng
        base = capitals()
        return [
            Verdict(
                s.capital == base[s.entity], "lookup", reason=f"knowledge base: {base[s.entity]}"
            )
            for s in samples
        ]


@dataclass(frozen=True)
class Keep:
    """Curate: what no check failed; a failed statement dropped or corrected; true statements
    of a fresh `real_share` of the entities added."""

    arm: FactArm
    facts: Facts
    replicates: int

    def __call__(
        self, scored: Any, history: object, generation: int, rng: np.random.Generator
    ) -> tuple[Sample[Statement], ...]:
        del history
        base, source = capitals(), Provenance("real", generation, KNOWLEDGE_BASE)
        kept: list[Sample[Statement]] = []
        for item in scored:
            verdict = item.provenance.verdict
            if verdict is None or verdict.passed is not False:
                kept.append(item)
            elif self.arm.verify == "correct" and verdict.verifier == "lookup":
                s = item.content
                kept.append(Sample(Statement(s.replicate, s.entity, base[s.entity]), source))
        count = round(self.arm.real_share * len(self.facts.entities))
        for s in range(self.replicates if count else 0):
            for i in sorted(rng.choice(len(self.facts.entities), count, replace=False)):
                entity = self.facts.entities[i]
                kept.append(Sample(Statement(s, entity, base[entity]), source))
        return tuple(kept)


@dataclass(frozen=True)
class TrainFresh:
    config: FactsConfig
    facts: Facts

    def __call__(
        self, incumbent: FactModels, kept: tuple[Sample[Statement], ...], rng: np.random.Generator
    ) -> FactModels:
        rows = _by_replicate(kept, len(incumbent.lms))
        lms = tuple(train_fresh(self.config, self.facts, r, rng) for r in rows)
        return FactModels(lms, incumbent.reference, answers_of(incumbent.lms, self.facts))


def _by_replicate(kept: Sequence[Sample[Statement]], replicates: int) -> list[list[Statement]]:
    rows: list[list[Statement]] = [[] for _ in range(replicates)]
    for item in kept:
        rows[item.content.replicate].append(item.content)
    return rows


@dataclass(frozen=True)
class Examine:
    """Evaluate: every replicate's greedy answers against the truth, and the monitors."""

    facts: Facts

    def __call__(self, model: FactModels, generation: int, rng: np.random.Generator) -> Evaluation:
        del generation, rng
        f = self.facts
        pairs = [beliefs(lm, f) for lm in model.lms]
        answers = np.stack([a for a, _ in pairs])  # [S, N]
        confidence = np.stack([c for _, c in pairs])  # [S, N]
        wrong = answers != f.truth
        planted = f.planted
        metrics: Metrics = {}
        metrics |= _spread("facts/error_rate", wrong.mean(axis=1))
        metrics |= _spread("facts/drift", (answers != model.reference).mean(axis=1))
        metrics["facts/churn_mean"] = float((answers != model.previous).mean())
        metrics["facts/new_errors_mean"] = float((wrong & (model.reference == f.truth)).mean())
        if planted.any():
            metrics["facts/planted_wrong_mean"] = _share(wrong, planted)
            metrics["facts/planted_persisting_mean"] = _share(answers == f.told, planted)
        metrics["facts/confidence_wrong_mean"] = _average(confidence, wrong)
        metrics["facts/confidence_right_mean"] = _average(confidence, ~wrong)
        return Evaluation(metrics, {"samples": _shown(f, answers[0], confidence[0])})


def _spread(key: str, per_replicate: np.ndarray) -> Metrics:
    """The mean over replicates of a share and its 95% interval: mean +- t(0.975, S - 1)
    standard errors (Student's t, as replicates are few: 2.78 at 5 of them, not 1.96), clipped
    to the share's range [0, 1]; with one replicate there is no interval, only the mean."""
    mean = float(per_replicate.mean())
    if len(per_replicate) < 2:
        return {f"{key}_mean": mean}
    error = float(per_replicate.std(ddof=1)) / np.sqrt(len(per_replicate))
    half = float(student_t.ppf(0.975, len(per_replicate) - 1)) * error
    return {
        f"{key}_mean": mean,
        f"{key}_low": max(mean - half, 0.0),
        f"{key}_high": min(mean + half, 1.0),
    }


def _share(hit: np.ndarray, where: np.ndarray) -> float:
    """Mean over replicates of the share of `where`'s entities that `hit`."""
    return float(np.mean([h[w].mean() for h, w in zip(hit, where, strict=True) if w.any()]))


def _average(values: np.ndarray, where: np.ndarray) -> float:
    """Mean of `values` over the entries `where` marks, all replicates pooled (nan: none)."""
    return float(values[where].mean()) if where.any() else float("nan")


def _shown(f: Facts, answers: np.ndarray, confidence: np.ndarray) -> list[str]:
    """Replicate 0's planted errors and its first new errors, as the report shows them."""
    lines = []
    wrong = np.flatnonzero(answers != f.truth)
    for i in [*np.flatnonzero(f.planted[0]), *wrong[~f.planted[0][wrong]][:6]]:
        said = Statement(0, f.entities[i], f.word(int(answers[i]))).text
        planted = f.word(int(f.told[0, i])).replace("_", " ")
        tag = f"planted {planted}" if f.planted[0, i] else "new error"
        mark = "right" if answers[i] == f.truth[i] else "wrong"
        lines.append(f"{said} ({mark}, {tag}; p {confidence[i]:.2f})")
    return lines


def summarize(kept: tuple[Sample[Statement], ...]) -> Metrics:
    """What the next model learns: the share of its statements that are wrong (measured
    against the knowledge base, never filtered here), from the knowledge base, and off their
    writer's mode. That last is the monitor (no answer key needed): the share that is not its
    writer's greedy answer. Sampled at temperature 1, some always are, so an arm that lets
    sampled statements into training unchecked always has some; a check that fails wrong
    statements keeps almost none (a wrong model's right samples pass)."""
    if not kept:
        return {}
    base = capitals()
    wrong = sum(s.content.capital != base[s.content.entity] for s in kept)
    real = sum(s.provenance.model == KNOWLEDGE_BASE for s in kept)
    off_mode = sum(s.content.off_mode for s in kept)
    return {
        "kept/wrong_statements": wrong / len(kept),
        "kept/real_statements": real / len(kept),
        "kept/off_mode_statements": off_mode / len(kept),
    }


def build_arms(config: FactsConfig) -> list[Arm]:
    facts = Facts.of(config)
    arms = []
    for arm in config.arms:
        pipeline: Pipeline[FactModels, list[Statement], tuple[Sample[Statement], ...]] = Pipeline(
            initialize=Initialize(config, facts),
            generate=WriteStatements(config, facts),
            verify=unverified if arm.verify == "none" else LookUp(),
            curate=Keep(arm, facts, config.num_seeds),
            train=TrainFresh(config, facts),
            evaluate=Examine(facts),
            gate=build_gate(config.gate),
            history_window=0,
            summarize=summarize,
        )
        arms.append(Arm(arm.label(), pipeline, review=_review_of(config.review, arm)))
    return arms


def _review_of(review: ReviewConfig | None, arm: FactArm) -> ReviewConfig | None:
    """This arm's review: audits of a random share `review` of the statements."""
    if review is None or arm.review == 0:
        return None
    return review.model_copy(update={"mode": "audit", "share": arm.review})


EXPERIMENT = Experiment(FactsConfig, build_arms, fact_claims, export_records, REVIEW)
