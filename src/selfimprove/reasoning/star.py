"""STaR (Self-Taught Reasoner) on the generation loop, with a tiny GPT trained from scratch.

initialize  the base model (random weights) trained on a few worked rationales per digit
            length (the seed set), shown with and without the answer hint
generate    a greedy rationale for every answer-only training problem; for the failures,
            rationalization: generate again with the gold answer as a hint (`29+57 ?86`)
verify      keep a rationale when its final answer is right; separately record whether its
            working is right (right answers with wrong working slip through: measured)
curate      this generation's kept rationales, stored under the prompt WITHOUT the hint
train       fine-tune from the base model (or continue from the incumbent) on seed + kept,
            with a token budget that grows with the kept set
evaluate    greedy accuracy on held-out problems per digit length, lengths never trained on
            included
gate        continue (every candidate is kept; the per-length curves tell the story)

Arms in one run: `star`, `star_no_rationalization`, and `direct` (the same problems with
answers only, no rationales; given at least STaR's training tokens every generation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from selfimprove.core.config import LoopConfig
from selfimprove.core.engine import Arm, Pipeline, no_summary
from selfimprove.core.records import Metrics, Provenance, ProvenanceCount, Verdict
from selfimprove.core.seeding import stage_rng
from selfimprove.core.stages import no_verification
from selfimprove.models.tiny_gpt import (
    CharTokenizer,
    Example,
    LmModel,
    initial_lm,
)
from selfimprove.reasoning.generation import (
    ModelShape,
    SamplingConfig,
    SelfTrainConfig,
    Trained,
    complete,
    text_example,
)
from selfimprove.reasoning.tasks import (
    ALPHABET,
    Operation,
    Problem,
    answer_correct,
    random_problems,
    working_correct,
)

ArmKind = Literal["star", "star_no_rationalization", "direct"]
TOKENIZER = CharTokenizer(ALPHABET)


class StarTrainConfig(SelfTrainConfig):
    seed_steps: int = Field(300, ge=1, description="steps on the seed set for generation 0")


class StarConfig(LoopConfig):
    """Verifier-filtered self-training on arithmetic with a per-digit scratchpad."""

    kind: Literal["reasoning.star"] = "reasoning.star"
    operation: Operation = "add"
    train_digits: tuple[int, ...] = Field((1, 2, 3, 4, 5), min_length=1)
    eval_digits: tuple[int, ...] = Field(
        (1, 2, 3, 4, 5, 6), min_length=1, description="held-out lengths; may include untrained"
    )
    seed_per_length: int = Field(10, ge=1, description="worked rationales per trained length")
    problems_per_length: int = Field(400, ge=1, description="answer-only problems per length")
    eval_per_length: int = Field(200, ge=1)
    arms: tuple[ArmKind, ...] = Field(("star", "star_no_rationalization", "direct"), min_length=1)
    model: ModelShape = ModelShape()
    train: StarTrainConfig = StarTrainConfig()
    sample_batch: int = Field(512, ge=1, description="prompts sampled at once")
    target_accuracy: float = Field(
        0.9, gt=0, le=1, description="the claim's bar for held-out accuracy on trained lengths"
    )
    target_minutes: float = Field(
        30, gt=0, description="the claim's time limit to reach it (one core; wall time)"
    )


# --- data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One generated rationale and its verdicts."""

    problem: Problem
    completion: str
    rationalized: bool  # produced with the answer hint (stored without it)
    answer_ok: bool
    working_ok: bool


@dataclass(frozen=True)
class Kept:
    """What one generation trains on beside the seed set, and how it was obtained."""

    generation: int
    attempts: tuple[Attempt, ...]  # kept attempts (answer right)
    pool: int  # problems attempted
    first_try: int  # answered right without the hint


def _example(prompt: str, completion: str) -> Example:
    return text_example(TOKENIZER, prompt, completion)


def seed_examples(problems: Sequence[Problem], direct: bool) -> list[Example]:
    """Worked rationales, each without and with the hint (so the model learns to use it);
    for the direct baseline, answers only."""
    if direct:
        return [_example(p.prompt(), p.direct()) for p in problems]
    return [_example(p.prompt(hint), p.rationale()) for p in problems for hint in (False, True)]


def _complete(
    lm: LmModel, prompts: Sequence[str], max_new: int, batch: int, rng: np.random.Generator
) -> list[str]:
    """Greedy completions (STaR samples its rationales greedily)."""
    return complete(TOKENIZER, lm, prompts, SamplingConfig(max_new_tokens=max_new), batch, rng)


@dataclass(frozen=True)
class Data:
    """The fixed problem sets of a run, drawn from its seed."""

    seed: tuple[Problem, ...]
    pool: tuple[Problem, ...]
    held_out: dict[int, tuple[Problem, ...]]

    @classmethod
    def of(cls, config: StarConfig) -> Data:
        rng = stage_rng(config.seed, 0, "setup")
        seen: set[tuple[int, int]] = set()

        def fresh(digits: int, count: int) -> tuple[Problem, ...]:
            """Problems no other set has, while there are any left (1-digit sums run out)."""
            found: list[Problem] = []
            for _ in range(20):
                for p in random_problems(config.operation, digits, count, rng):
                    if (p.a, p.b) not in seen and len(found) < count:
                        seen.add((p.a, p.b))
                        found.append(p)
            extra = random_problems(config.operation, digits, count - len(found), rng)
            return (*found, *extra)

        held_out = {d: fresh(d, config.eval_per_length) for d in config.eval_digits}
        seed = sum((fresh(d, config.seed_per_length) for d in config.train_digits), ())
        pool = sum((fresh(d, config.problems_per_length) for d in config.train_digits), ())
        return cls(seed, pool, held_out)


# --- stages ----------------------------------------------------------------------------


def _matching_steps(steps: int, mean_tokens: float, examples: Sequence[Example]) -> int:
    """Steps on `examples` that cover `steps` batches of `mean_tokens`-token examples, with
    5% to spare for the luck of random minibatches."""
    return math.ceil(1.05 * steps * mean_tokens / _mean_tokens(examples))


def _mean_tokens(examples: Sequence[Example]) -> float:
    return sum(e.tokens for e in examples) / len(examples)


@dataclass(frozen=True)
class Initialize:
    base: LmModel
    seed: tuple[Example, ...]
    train: StarTrainConfig
    steps: int

    def __call__(self, rng: np.random.Generator) -> tuple[Trained, Kept]:
        trained = Trained.on_seed(self.base, self.seed, self.steps, self.train, rng)
        return trained, Kept(0, (), 0, 0)


@dataclass(frozen=True)
class GenerateRationales:
    pool: tuple[Problem, ...]
    rationalize: bool
    max_new: int
    batch: int

    def __call__(self, model: Trained, generation: int, rng: np.random.Generator) -> Kept:
        prompts = [p.prompt() for p in self.pool]
        completions = _complete(model.lm, prompts, self.max_new, self.batch, rng)
        attempts = [_attempt(p, c, False) for p, c in zip(self.pool, completions, strict=True)]
        first_try = sum(a.answer_ok for a in attempts)
        if self.rationalize:
            failed = [i for i, a in enumerate(attempts) if not a.answer_ok]
            hinted = [self.pool[i].prompt(hint=True) for i in failed]
            retried = _complete(model.lm, hinted, self.max_new, self.batch, rng)
            for i, completion in zip(failed, retried, strict=True):
                attempts[i] = _attempt(self.pool[i], completion, True)
        kept = tuple(a for a in attempts if a.answer_ok)
        return Kept(generation, kept, len(self.pool), first_try)


def _attempt(problem: Problem, completion: str, rationalized: bool) -> Attempt:
    return Attempt(
        problem,
        completion,
        rationalized,
        answer_correct(problem, completion),
        working_correct(problem, completion),
    )


def keep_newest(
    scored: Kept, history: Sequence[Kept], generation: int, rng: np.random.Generator
) -> Kept:
    """STaR trains on what this generation got right (not on earlier generations' sets)."""
    del history, generation, rng
    return scored


@dataclass(frozen=True)
class FineTune:
    base: LmModel
    seed: tuple[Example, ...]
    train: StarTrainConfig
    direct_steps: int | None = None
    """The direct baseline's fixed steps per generation (see `build_arms`); None: STaR's
    budget, which grows with the kept set."""

    def __call__(self, incumbent: Trained, kept: Kept, rng: np.random.Generator) -> Trained:
        examples = list(self.seed) + [
            _example(a.problem.prompt(), a.completion) for a in kept.attempts
        ]
        steps = self.train.steps_for(examples) if self.direct_steps is None else self.direct_steps
        return incumbent.fine_tuned(self.base, examples, steps, self.train, rng)


@dataclass(frozen=True)
class DirectAnswers:
    """The direct baseline's 'generation': the gold answers of the whole pool, no rationale."""

    pool: tuple[Problem, ...]

    def __call__(self, model: Trained, generation: int, rng: np.random.Generator) -> Kept:
        del model, rng
        attempts = tuple(Attempt(p, p.direct(), False, True, False) for p in self.pool)
        return Kept(generation, attempts, len(self.pool), len(self.pool))


@dataclass(frozen=True)
class Evaluate:
    held_out: dict[int, tuple[Problem, ...]]
    train_digits: tuple[int, ...]
    max_new: int
    batch: int

    def __call__(self, model: Trained, generation: int, rng: np.random.Generator) -> Metrics:
        del generation
        problems = [p for d in sorted(self.held_out) for p in self.held_out[d]]
        completions = _complete(
            model.lm, [p.prompt() for p in problems], self.max_new, self.batch, rng
        )
        metrics: Metrics = {
            "train/tokens": float(model.tokens),
            "train/tokens_total": float(model.total_tokens),
            "model/parameters": float(model.lm.num_parameters()),
        }
        right: dict[int, list[bool]] = {}
        working: dict[int, list[bool]] = {}
        for p, c in zip(problems, completions, strict=True):
            right.setdefault(p.digits, []).append(answer_correct(p, c))
            working.setdefault(p.digits, []).append(working_correct(p, c))
        for digits in sorted(right):
            metrics[f"eval/accuracy_{digits}_digits"] = float(np.mean(right[digits]))
            metrics[f"eval/working_correct_{digits}_digits"] = float(np.mean(working[digits]))
        trained = [metrics[f"eval/accuracy_{d}_digits"] for d in self.train_digits if d in right]
        metrics["eval/accuracy_trained_lengths"] = float(np.mean(trained))
        return metrics


def summarize(kept: Kept) -> Metrics:
    if not kept.pool:
        return {}
    attempts = kept.attempts
    rationalized = sum(a.rationalized for a in attempts)
    wrong_working = sum(not a.working_ok for a in attempts)
    return {
        "kept/fraction": len(attempts) / kept.pool,
        "kept/first_try_fraction": kept.first_try / kept.pool,
        "kept/rationalized_fraction": rationalized / kept.pool,
        "kept/wrong_working_fraction": wrong_working / max(len(attempts), 1),
    }


def describe(kept: Kept) -> tuple[ProvenanceCount, ...]:
    counts: dict[Provenance, int] = {}
    for a in kept.attempts:
        how = "answer right, with hint" if a.rationalized else "answer right"
        p = Provenance(
            "synthetic", kept.generation, f"generation-{kept.generation - 1}", Verdict(True, how)
        )
        counts[p] = counts.get(p, 0) + 1
    return tuple(ProvenanceCount(p, n) for p, n in counts.items())


def build_arms(config: StarConfig) -> list[Arm]:
    data = Data.of(config)
    spec = config.model.spec(TOKENIZER)
    base = initial_lm(spec, stage_rng(config.seed, 1, "setup"))
    longest = max(len(p.rationale()) for d in data.held_out.values() for p in d)
    max_new = min(longest + 8, spec.context)
    evaluate = Evaluate(data.held_out, config.train_digits, max_new, config.sample_batch)
    arms = []
    for kind in config.arms:
        direct = kind == "direct"
        seed = tuple(seed_examples(data.seed, direct))
        generate: GenerateRationales | DirectAnswers = (
            DirectAnswers(data.pool)
            if direct
            else GenerateRationales(data.pool, kind == "star", max_new, config.sample_batch)
        )
        seed_steps, direct_steps = config.train.seed_steps, None
        if direct:
            # At least STaR's tokens, in more (shorter) steps: STaR's budget if it kept every
            # problem, at the larger of the two mean lengths it can train on (seed set with
            # hints, or plain rationales).
            star_seed = seed_examples(data.seed, False)
            rationales = [_example(p.prompt(), p.rationale()) for p in data.pool]
            everything = [*star_seed, *rationales]
            star_steps = config.train.steps_for(everything)
            star_mean = max(_mean_tokens(star_seed), _mean_tokens(rationales))
            seed_steps = _matching_steps(seed_steps, _mean_tokens(star_seed), seed)
            every = [*seed, *(_example(p.prompt(), p.direct()) for p in data.pool)]
            direct_steps = _matching_steps(star_steps, star_mean, every)
        pipeline: Pipeline[Trained, Kept, Kept, Kept] = Pipeline(
            initialize=Initialize(base, seed, config.train, seed_steps),
            generate=generate,
            verify=no_verification,  # the verdicts are taken while generating (answer check)
            curate=keep_newest,
            train=FineTune(base, seed, config.train, direct_steps),
            evaluate=evaluate,
            history_window=1,
            describe=describe,
            summarize=no_summary if direct else summarize,
        )
        arms.append(Arm(kind, pipeline))
    return arms


def export_records(kept: Kept) -> list[dict[str, object]]:
    """Kept rationales as TRL prompt/completion records (prompt without the hint), with the
    verdicts as extra columns."""
    return [
        {
            "prompt": a.problem.prompt(),
            "completion": a.completion,
            "generation": kept.generation,
            "rationalized": a.rationalized,
            "working_correct": a.working_ok,
        }
        for a in kept.attempts
    ]
