"""STaR (Self-Taught Reasoner) on the generation loop, with a tiny GPT trained from scratch.

initialize  the base model (random weights) trained on a few worked rationales per digit
            length (the seed set), shown with and without the answer hint
generate    a greedy rationale for every answer-only training problem
verify      the answer check: a rationale passes when its final answer is right (swappable:
            `verifier: working` passes only rationales whose every line is right)
revise      rationalization: for each rationale that failed, generate again with the gold
            answer as a hint (`29+57 ?86`); verified the same way (revision 1)
curate      this generation's passing rationales, stored under the prompt WITHOUT the hint;
            how many of them have wrong working is measured (right answers with wrong
            working slip through an answer check)
train       fine-tune from the base model (or continue from the incumbent) on seed + kept,
            with a token budget that grows with the kept set
evaluate    greedy accuracy on held-out problems per digit length, lengths never trained on
            included
gate        no regression: a candidate whose accuracy on validation problems (trained
            lengths, never trained on, apart from the held-out test) falls by more than the
            tolerance is rejected and the incumbent carries on

Arms in one run: `star`, `star_no_rationalization`, and `direct` (the same problems with
answers only, no rationales; given at least STaR's training tokens every generation).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from selfimprove.core.config import GateConfig, LoopConfig
from selfimprove.core.engine import Arm, Pipeline, no_summary
from selfimprove.core.experiment import Experiment
from selfimprove.core.gates import build_gate
from selfimprove.core.provenance import provenance_columns
from selfimprove.core.records import Metrics, Provenance, Sample, Verdict
from selfimprove.core.review import ReviewHooks
from selfimprove.core.seeding import stage_rng
from selfimprove.models.shape import GptShape
from selfimprove.models.tiny_gpt import (
    CharTokenizer,
    Example,
    LmModel,
    initial_lm,
)
from selfimprove.reasoning.claims import star_claims
from selfimprove.reasoning.generation import (
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
Checker = Literal["answer", "working"]
TOKENIZER = CharTokenizer(ALPHABET)


class StarTrainConfig(SelfTrainConfig):
    seed_steps: int = Field(300, ge=1, description="steps on the seed set for generation 0")


Digits = Annotated[int, Field(ge=1, le=18)]  # operands stay within int64


class StarConfig(LoopConfig):
    """Verifier-filtered self-training on arithmetic with a per-digit scratchpad."""

    kind: Literal["reasoning.star"] = Field(
        "reasoning.star", description="which experiment this recipe runs"
    )
    operation: Operation = Field("add", description="add: n-digit addition; mul1: times a digit")
    train_digits: tuple[Digits, ...] = Field(
        (1, 2, 3, 4, 5), min_length=1, description="operand lengths trained on (1-18)"
    )
    eval_digits: tuple[Digits, ...] = Field(
        (1, 2, 3, 4, 5, 6), min_length=1, description="held-out lengths; may include untrained"
    )
    seed_per_length: int = Field(10, ge=1, description="worked rationales per trained length")
    problems_per_length: int = Field(400, ge=1, description="answer-only problems per length")
    eval_per_length: int = Field(200, ge=1, description="held-out test problems per length")
    validation_per_length: int = Field(
        50,
        ge=1,
        description="validation problems per trained length, for the gate: only problems no "
        "other set has (1-digit sums run out: fewer or none)",
    )
    verifier: Checker = Field(
        "answer",
        description="STaR arms keep a rationale when: answer: its final answer is right; "
        "working: every line of its working is right",
    )
    arms: tuple[ArmKind, ...] = Field(
        ("star", "star_no_rationalization", "direct"),
        min_length=1,
        description="star, star_no_rationalization, direct (answers only, no rationales)",
    )
    model: GptShape = Field(GptShape(), description="the tiny GPT (context in characters)")
    train: StarTrainConfig = Field(StarTrainConfig(), description="fine-tuning settings")
    sample_batch: int = Field(512, ge=1, description="prompts sampled at once")
    gate: GateConfig = Field(
        GateConfig(kind="no_regression", metric="val/accuracy", tolerance=0.05),
        description="keep a candidate unless its validation accuracy falls by more than 0.05",
    )
    target_accuracy: float = Field(
        0.9, gt=0, le=1, description="the claim's bar for held-out accuracy on trained lengths"
    )
    target_minutes: float = Field(
        30, gt=0, description="the claim's time limit to reach it (one core; wall time)"
    )

    @model_validator(mode="after")
    def _rationales_fit_the_context(self) -> StarConfig:
        # trained lengths only: their rationales are training data, cut silently otherwise
        # (an evaluated length that does not fit can only be answered wrong: it is allowed,
        # as star_quick's untrained 4 digits in 64 characters)
        longest = max(self.train_digits)
        biggest = Problem(
            10**longest - 1, 9 if self.operation == "mul1" else 10**longest - 1, self.operation
        )
        needed = len(biggest.prompt(hint=True)) + len(biggest.rationale())
        if needed > self.model.context:
            raise ValueError(
                f"a {longest}-digit problem with its rationale is {needed} characters; "
                f"model.context is {self.model.context}"
            )
        return self

    def memory_bytes(self) -> int:
        """Every problem set as Python objects with their prompts and rationales (about 2 KB
        each) and the samples of one round."""
        per_length = self.seed_per_length + self.problems_per_length + self.validation_per_length
        problems = per_length * len(self.train_digits) + self.eval_per_length * len(
            self.eval_digits
        )
        return 2048 * 2 * problems


# --- data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One rationale for one problem (its verdict is the verifier's, in its provenance)."""

    problem: Problem
    completion: str
    rationalized: bool  # produced with the answer hint (stored without it)


@dataclass(frozen=True)
class Kept:
    """What one generation trains on beside the seed set, and how it was obtained."""

    generation: int
    samples: tuple[Sample[Attempt], ...]  # the rationales that passed, stamped
    pool: int  # problems attempted
    first_try: int  # passed without the hint

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        return tuple(sample.content for sample in self.samples)


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
    validation: tuple[Problem, ...]  # trained lengths, for the gate

    @classmethod
    def of(cls, config: StarConfig) -> Data:
        rng = stage_rng(config.seed, 0, "setup/problems")
        seen: set[tuple[int, int]] = set()

        def fresh(digits: int, count: int, pad: bool = True) -> tuple[Problem, ...]:
            """Problems no other set has, while there are any left (1-digit sums run out);
            then, with `pad`, repeats to make up the count."""
            found: list[Problem] = []
            for _ in range(20):
                for p in random_problems(config.operation, digits, count, rng):
                    if (p.a, p.b) not in seen and len(found) < count:
                        seen.add((p.a, p.b))
                        found.append(p)
            extra = random_problems(config.operation, digits, count - len(found), rng)
            return (*found, *(extra if pad else ()))

        held_out = {d: fresh(d, config.eval_per_length) for d in config.eval_digits}
        seed = sum((fresh(d, config.seed_per_length) for d in config.train_digits), ())
        pool = sum((fresh(d, config.problems_per_length) for d in config.train_digits), ())
        # never padded: a length with no unseen problems left has no validation problems
        validation = sum(
            (fresh(d, config.validation_per_length, pad=False) for d in config.train_digits), ()
        )
        return cls(seed, pool, held_out, validation)


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
    """Generate: a greedy rationale for every problem of the pool (no judging here)."""

    pool: tuple[Problem, ...]
    max_new: int
    batch: int

    def __call__(self, model: Trained, generation: int, rng: np.random.Generator) -> list[Attempt]:
        del generation
        completions = _complete(
            model.lm, [p.prompt() for p in self.pool], self.max_new, self.batch, rng
        )
        return [Attempt(p, c, False) for p, c in zip(self.pool, completions, strict=True)]


@dataclass(frozen=True)
class CheckRationales:
    """Verify: `answer` reads the final answer line; `working` checks every line of the
    working (and the answer), so a right answer reached by wrong working fails."""

    checker: Checker

    def __call__(
        self, samples: Sequence[Attempt | Sample[Attempt]], rng: np.random.Generator
    ) -> list[Verdict]:
        del rng
        check = answer_correct if self.checker == "answer" else working_correct
        verdicts = []
        for item in samples:
            attempt = item.content if isinstance(item, Sample) else item
            verdicts.append(
                Verdict(check(attempt.problem, attempt.completion), f"{self.checker} check")
            )
        return verdicts


@dataclass(frozen=True)
class Rationalize:
    """Revise: for every attempt of the newest round that failed, a rationale generated with
    the gold answer as a hint; stored as the attempt for the plain prompt (the hint is not
    kept). STaR runs one round (its first tries' failures)."""

    max_new: int
    batch: int

    def __call__(
        self,
        model: Trained,
        scored: Sequence[Sample[Attempt]],
        generation: int,
        rng: np.random.Generator,
    ) -> list[Attempt]:
        del generation
        latest = max((s.provenance.revision for s in scored), default=0)  # the newest round
        failed = [
            s.content.problem for s in scored if s.provenance.revision == latest and not _passed(s)
        ]
        hinted = _complete(
            model.lm, [p.prompt(hint=True) for p in failed], self.max_new, self.batch, rng
        )
        return [Attempt(p, c, True) for p, c in zip(failed, hinted, strict=True)]


def _passed(sample: Sample[Attempt]) -> bool:
    verdict = sample.provenance.verdict
    return verdict is not None and verdict.passed is True


def keep_passed(
    scored: Sequence[Sample[Attempt]],
    history: Sequence[Kept],
    generation: int,
    rng: np.random.Generator,
) -> Kept:
    """Curate: this generation's passing rationales (STaR does not replay earlier sets)."""
    del history, rng
    first_tries = [s for s in scored if s.provenance.revision == 0]
    kept = tuple(s for s in scored if _passed(s))
    return Kept(generation, kept, len(first_tries), sum(_passed(s) for s in first_tries))


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
    """The direct baseline's 'generation': the gold answers of the whole pool, no rationale
    (real data, named as such: no model made it)."""

    pool: tuple[Problem, ...]

    def __call__(
        self, model: Trained, generation: int, rng: np.random.Generator
    ) -> list[Sample[Attempt]]:
        del model, rng
        gold = Provenance("real", generation, "gold answers")
        return [Sample(Attempt(p, p.direct(), False), gold) for p in self.pool]


@dataclass(frozen=True)
class Evaluate:
    held_out: dict[int, tuple[Problem, ...]]
    validation: tuple[Problem, ...]
    train_digits: tuple[int, ...]
    max_new: int
    batch: int

    def __call__(self, model: Trained, generation: int, rng: np.random.Generator) -> Metrics:
        del generation
        problems = [p for d in sorted(self.held_out) for p in self.held_out[d]]
        completions = _complete(
            model.lm, [p.prompt() for p in problems], self.max_new, self.batch, rng
        )
        checked = _complete(
            model.lm, [p.prompt() for p in self.validation], self.max_new, self.batch, rng
        )
        validated = [answer_correct(p, c) for p, c in zip(self.validation, checked, strict=True)]
        metrics: Metrics = {
            # nan when no unseen problem is left: the engine then refuses the gate at gen 0
            "val/accuracy": float(np.mean(validated)) if validated else float("nan"),
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
    # measured, not filtered: how many kept rationales reach the answer by wrong working
    wrong_working = sum(not working_correct(a.problem, a.completion) for a in attempts)
    return {
        "kept/fraction": len(attempts) / kept.pool,
        "kept/first_try_fraction": kept.first_try / kept.pool,
        "kept/rationalized_fraction": rationalized / kept.pool,
        "kept/wrong_working_fraction": wrong_working / max(len(attempts), 1),
    }


def build_arms(config: StarConfig) -> list[Arm]:
    data = Data.of(config)
    spec = config.model.spec(TOKENIZER.vocab_size)
    base = initial_lm(spec, stage_rng(config.seed, 0, "setup/base-weights"))
    longest = max(len(p.rationale()) for d in data.held_out.values() for p in d)
    max_new = min(longest + 8, spec.context)
    evaluate = Evaluate(
        data.held_out, data.validation, config.train_digits, max_new, config.sample_batch
    )
    gate = build_gate(config.gate)
    arms = []
    for kind in config.arms:
        direct = kind == "direct"
        seed = tuple(seed_examples(data.seed, direct))
        generate: GenerateRationales | DirectAnswers = (
            DirectAnswers(data.pool)
            if direct
            else GenerateRationales(data.pool, max_new, config.sample_batch)
        )
        rationalize = Rationalize(max_new, config.sample_batch) if kind == "star" else None
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
        pipeline: Pipeline[Trained, list[Attempt] | list[Sample[Attempt]], Kept] = Pipeline(
            initialize=Initialize(base, seed, config.train, seed_steps),
            generate=generate,
            # gold answers have no working to check: the direct arm's check is the answer's
            verify=CheckRationales("answer" if direct else config.verifier),
            revise=rationalize,
            curate=keep_passed,
            train=FineTune(base, seed, config.train, direct_steps),
            evaluate=evaluate,
            gate=gate,
            history_window=1,
            summarize=no_summary if direct else summarize,
        )
        arms.append(Arm(kind, pipeline))
    return arms


def export_records(kept: Kept) -> list[dict[str, object]]:
    """Kept rationales as TRL prompt/completion records (prompt without the hint), with their
    provenance and verdict as extra columns."""
    records: list[dict[str, object]] = []
    for sample in kept.samples:
        attempt = sample.content
        records.append(
            {
                "prompt": attempt.problem.prompt(),
                "completion": attempt.completion,
                **provenance_columns(sample.provenance),
                "rationalized": attempt.rationalized,
                "working_correct": working_correct(attempt.problem, attempt.completion),
            }
        )
    return records


def _view(attempt: Attempt) -> dict[str, str]:
    return {"prompt": attempt.problem.prompt(), "completion": attempt.completion}


def _edited(attempt: Attempt, fields: Mapping[str, str]) -> Attempt:
    return replace(attempt, completion=fields.get("completion", attempt.completion))


def _faithful(attempt: Attempt) -> bool:
    return working_correct(attempt.problem, attempt.completion)


_LINE = re.compile(r"(\d)([+*])(\d)\+(\d)=(\d\d) (\d+)")


def _suspect(attempt: Attempt) -> str | None:
    """A monitor cheaper than the truth: each working line's own arithmetic, and the answer
    read from the last line (its carry and running total). It cannot see digits read from
    the wrong operand, which the whole-working check (the truth) does."""
    *working, answer = attempt.completion.rstrip("\n").split("\n")
    last = None
    for number, line in enumerate(working, start=1):
        last = _LINE.fullmatch(line)
        if last is None:
            return f"line {number} is not a working line"
        x, op, y, carry, total = (last[1], last[2], last[3], last[4], last[5])
        value = int(x) + int(y) if op == "+" else int(x) * int(y)
        if value + int(carry) != int(total):
            return f"line {number}: {x}{op}{y}+{carry} is not {int(total)}"
    if last is None:
        return "no working"
    expected = int(f"{int(last[5]) // 10}{last[6]}")  # the last carry, then the running total
    if answer != f">{expected}":
        return "the answer is not read from the working"
    return None


REVIEW = ReviewHooks("rationale", _view, _edited, ("completion",), _faithful, _suspect)
"""A reviewer reads the prompt and the rationale, may fix the rationale; the truth a
simulated reviewer knows is the whole-working check (every line right)."""

EXPERIMENT = Experiment(StarConfig, build_arms, star_claims, export_records, REVIEW)
