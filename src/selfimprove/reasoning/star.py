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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from selfimprove.core.config import ExecutorConfig, GateConfig, LoopConfig
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
    Completions,
    SamplingConfig,
    SelfTrainConfig,
    Trained,
    complete,
    complete_sharded,
    text_example,
)
from selfimprove.reasoning.shapes import (
    ROBUSTNESS,
    SHAPES,
    Shape,
    balanced_problems,
    coverage,
    robustness_problems,
    shape_of,
    shaped_problems,
)
from selfimprove.reasoning.tasks import (
    ALPHABET,
    Operation,
    Problem,
    answer_correct,
    answer_from_working,
    consistent_correct,
    final_answer,
    random_problems,
    working_correct,
)

ArmKind = Literal["star", "star_no_rationalization", "direct"]
Checker = Literal["answer", "working", "consistent"]
TOKENIZER = CharTokenizer(ALPHABET)
CHECKS = {"answer": answer_correct, "working": working_correct, "consistent": consistent_correct}


class StarArm(BaseModel):
    """One arm: a method, the verifier its rationales pass, and how its problems are drawn."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="the arm's name")
    method: ArmKind = Field("star", description="star, star_no_rationalization, direct")
    verifier: Checker | None = Field(
        None,
        description="answer: the final answer is right; working: every working line is right; "
        "consistent: the right answer, read from the model's own last line; none: the recipe's",
    )
    unequal_share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="draw the seed set and the pool with this share of unequal-length sums "
        "(rare shapes generated on purpose); none: the task's own draw (about 10%)",
    )
    rare_share: float | None = Field(
        None,
        ge=0,
        le=4,
        description="keep the task's draw and add unequal-length sums to it: this share of "
        "seed_per_length and of problems_per_length for each trained length of 2 digits and up",
    )

    @model_validator(mode="after")
    def _direct_has_no_rationales(self) -> StarArm:
        if self.method == "direct" and self.verifier not in (None, "answer"):
            raise ValueError("direct trains on gold answers: it has no working to verify")
        if self.unequal_share is not None and self.rare_share is not None:
            raise ValueError("unequal_share redraws the sets, rare_share adds to them: pick one")
        return self

    @property
    def draw(self) -> str | None:
        """The name of the arm's training sets in `Data.draws`; None: the task's draw."""
        if self.unequal_share is not None:
            return f"balanced {self.unequal_share:g}"
        return None if self.rare_share is None else f"rare {self.rare_share:g}"


class StarTrainConfig(SelfTrainConfig):
    seed_steps: int = Field(300, ge=1, description="steps on the seed set for generation 0")


Digits = Annotated[int, Field(ge=1, le=18)]  # operands stay within int64


class StarConfig(LoopConfig):
    """Verifier-filtered self-training on arithmetic with a per-digit scratchpad."""

    kind: Literal["reasoning.star"] = Field(
        "reasoning.star", description="which experiment this recipe runs"
    )
    parallel: ClassVar[bool] = True  # the pool's rationales go to the executor
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
    arms: tuple[ArmKind | StarArm, ...] = Field(
        ("star", "star_no_rationalization", "direct"),
        min_length=1,
        description="star, star_no_rationalization, direct (answers only, no rationales), or "
        "{name, method, verifier, unequal_share, rare_share}",
    )
    shape_eval_per_length: int = Field(
        100,
        ge=0,
        description="held-out sums per trained length (2 digits and up) and shape (equal, "
        "unequal operand lengths), and per robustness set; 0: none (addition only)",
    )
    model: GptShape = Field(GptShape(), description="the tiny GPT (context in characters)")
    train: StarTrainConfig = Field(StarTrainConfig(), description="fine-tuning settings")
    sample_batch: int = Field(512, ge=1, description="prompts sampled at once")
    generation_shards: int = Field(
        1,
        ge=1,
        le=4096,
        description="pieces of complete batches the pool's rationales are split into for the "
        "executor (greedy: the same rationales for any number)",
    )
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
    target_unequal_accuracy: float = Field(
        0.85, gt=0, le=1, description="the shape claim's bar for unequal-length accuracy"
    )
    equal_tolerance: float = Field(
        0.02, ge=0, le=1, description="the shape claim: how far equal-length accuracy may fall"
    )
    target_wrong_working: float = Field(
        0.10,
        ge=0,
        le=1,
        description="the faithfulness claim's bar: right answers with wrong working at the "
        "longest trained length, as a share of right answers",
    )

    @property
    def arm_specs(self) -> tuple[StarArm, ...]:
        return tuple(
            StarArm(name=arm, method=arm) if isinstance(arm, str) else arm for arm in self.arms
        )

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(arm.name for arm in self.arm_specs)

    @property
    def shape_lengths(self) -> tuple[int, ...]:
        """Trained lengths split by shape (sums of 2 digits and up)."""
        if self.operation != "add" or not self.shape_eval_per_length:
            return ()
        return tuple(d for d in self.train_digits if d > 1)

    @model_validator(mode="after")
    def _shapes_are_sums(self) -> StarConfig:
        if self.operation != "add" and any(a.draw is not None for a in self.arm_specs):
            raise ValueError("unequal_share, rare_share: only sums have operands of unequal length")
        return self

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
        draws = len({a.draw for a in self.arm_specs})
        problems += (draws - 1) * (self.seed_per_length + self.problems_per_length) * len(
            self.train_digits
        ) + self.shape_eval_per_length * (2 * len(self.shape_lengths) + len(ROBUSTNESS))
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


Draw = Callable[[int, int, np.random.Generator], Sequence[Problem]]
"""(digits, count, rng) -> problems."""


def _shaped(shape: Shape, digits: int, count: int, rng: np.random.Generator) -> list[Problem]:
    return shaped_problems(digits, shape, count, rng)


def _balanced(share: float, digits: int, count: int, rng: np.random.Generator) -> list[Problem]:
    return balanced_problems(digits, count, share, rng)


def _per_length(
    draw: Draw,
    lengths: Sequence[int],
    count: int,
    seen: set[tuple[int, int]],
    rng: np.random.Generator,
) -> tuple[Problem, ...]:
    """`count` fresh problems of each length, one length after another."""
    return tuple(p for d in lengths for p in _fresh(draw, d, count, seen, rng))


def _robust(
    name: str, lengths: tuple[int, ...], digits: int, count: int, rng: np.random.Generator
) -> list[Problem]:
    del digits  # a robustness set spreads over every length split by shape
    return robustness_problems(name, lengths, count, rng)


def _fresh(
    draw: Draw,
    digits: int,
    count: int,
    seen: set[tuple[int, int]],
    rng: np.random.Generator,
    pad: bool = True,
) -> tuple[Problem, ...]:
    """Problems no earlier set has, while there are any left (1-digit sums run out); then,
    with `pad`, repeats to make up the count (repeats of problems other sets have)."""
    found: list[Problem] = []
    for _ in range(20):
        for p in draw(digits, count, rng):
            if (p.a, p.b) not in seen and len(found) < count:
                seen.add((p.a, p.b))
                found.append(p)
    extra = draw(digits, count - len(found), rng)  # drawn even unused: the stream as ever
    return (*found, *(extra if pad else ()))


def _keys(problems: Iterable[Problem]) -> set[tuple[int, int]]:
    return {(p.a, p.b) for p in problems}


@dataclass(frozen=True)
class Data:
    """The fixed problem sets of a run, drawn from its seed. Every evaluation set is drawn
    before the training sets that must avoid it; `held_out_lengths` are the evaluated lengths
    none of whose held-out problems any arm trains on (1-digit sums: only 100 exist, so none
    is held out and that length is reported apart)."""

    seed: tuple[Problem, ...]  # the task's own draw
    pool: tuple[Problem, ...]
    held_out: dict[int, tuple[Problem, ...]]
    validation: tuple[Problem, ...]  # trained lengths, for the gate
    shapes: dict[tuple[int, Shape], tuple[Problem, ...]]  # held out, by (length, shape)
    robust: dict[str, tuple[Problem, ...]]  # held out, by robustness set
    draws: dict[str, tuple[tuple[Problem, ...], tuple[Problem, ...]]]
    """`StarArm.draw` -> (seed, pool): `balanced S` drawn with a share S of unequal sums,
    `rare S` the task's draw with unequal sums added."""
    held_out_lengths: tuple[int, ...]

    def training(self, draw: str | None) -> tuple[tuple[Problem, ...], tuple[Problem, ...]]:
        """(seed, pool) of an arm."""
        return (self.seed, self.pool) if draw is None else self.draws[draw]

    @classmethod
    def of(cls, config: StarConfig) -> Data:
        # the first four sets are drawn as before the shape sets existed: same seed, same sets
        rng = stage_rng(config.seed, 0, "setup/problems")
        seen: set[tuple[int, int]] = set()

        def task(digits: int, count: int, rng: np.random.Generator) -> list[Problem]:
            return random_problems(config.operation, digits, count, rng)

        def fresh(digits: int, count: int, pad: bool = True) -> tuple[Problem, ...]:
            return _fresh(task, digits, count, seen, rng, pad)

        held_out = {d: fresh(d, config.eval_per_length) for d in config.eval_digits}
        seed = sum((fresh(d, config.seed_per_length) for d in config.train_digits), ())
        pool = sum((fresh(d, config.problems_per_length) for d in config.train_digits), ())
        # never padded: a length with no unseen problems left has no validation problems
        validation = sum(
            (fresh(d, config.validation_per_length, pad=False) for d in config.train_digits), ()
        )
        # held-out shape and robustness sets: their own stream, nothing any set above has
        rng = stage_rng(config.seed, 0, "setup/shape-problems")
        count = config.shape_eval_per_length
        shapes = {
            (d, shape): _fresh(partial(_shaped, shape), d, count, seen, rng)
            for d in config.shape_lengths
            for shape in SHAPES
        }
        robust = {
            name: _fresh(
                partial(_robust, name, config.shape_lengths),
                0,
                count,
                seen,
                rng,
            )
            for name in (ROBUSTNESS if config.shape_lengths else ())
        }
        # the balanced arms' training sets avoid every evaluation set (not each other's)
        evaluated = _keys(p for d in held_out.values() for p in d) | _keys(validation)
        evaluated |= _keys(p for s in (*shapes.values(), *robust.values()) for p in s)
        draws: dict[str, tuple[tuple[Problem, ...], tuple[Problem, ...]]] = {}
        for arm in config.arm_specs:
            if arm.draw is None or arm.draw in draws:
                continue
            avoid = set(evaluated)
            if arm.unequal_share is not None:
                share = arm.unequal_share
                rng = stage_rng(config.seed, 0, f"setup/balanced-problems-{share:g}")
                draw: Draw = partial(_balanced, share)
                draws[arm.draw] = (
                    _per_length(draw, config.train_digits, config.seed_per_length, avoid, rng),
                    _per_length(draw, config.train_digits, config.problems_per_length, avoid, rng),
                )
            else:
                assert arm.rare_share is not None
                rng = stage_rng(config.seed, 0, f"setup/rare-problems-{arm.rare_share:g}")
                longer = tuple(d for d in config.train_digits if d > 1)
                draw = partial(_shaped, "unequal")
                more = (
                    round(arm.rare_share * n)
                    for n in (config.seed_per_length, config.problems_per_length)
                )
                draws[arm.draw] = (
                    (*seed, *_per_length(draw, longer, next(more), avoid, rng)),
                    (*pool, *_per_length(draw, longer, next(more), avoid, rng)),
                )
        trained = _keys((*seed, *pool, *(p for s, q in draws.values() for p in (*s, *q))))
        held_out_lengths = tuple(d for d in held_out if not _keys(held_out[d]) & trained)
        return cls(seed, pool, held_out, validation, shapes, robust, draws, held_out_lengths)


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
    shards: int
    executor: ExecutorConfig

    def __call__(self, model: Trained, generation: int, rng: np.random.Generator) -> list[Attempt]:
        del generation
        greedy = Completions(
            TOKENIZER, model.lm, SamplingConfig(max_new_tokens=self.max_new), self.batch
        )
        prompts = [p.prompt() for p in self.pool]
        completions = complete_sharded(greedy, prompts, self.shards, rng, self.executor)
        return [Attempt(p, c, False) for p, c in zip(self.pool, completions, strict=True)]


@dataclass(frozen=True)
class CheckRationales:
    """Verify: `answer` reads the final answer line; `working` checks every line of the
    working (and the answer), so a right answer reached by wrong working fails;
    `consistent` asks for the right answer read from the model's own last working line."""

    checker: Checker

    def __call__(
        self, samples: Sequence[Attempt | Sample[Attempt]], rng: np.random.Generator
    ) -> list[Verdict]:
        del rng
        check = CHECKS[self.checker]
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
    """Greedy answers on every held-out set. `eval/accuracy_held_out` is the headline: the
    mean over trained lengths whose held-out problems no arm trains on
    (`eval/accuracy_trained_lengths` also counts a length that has none to hold out, as the
    first runs reported). Per trained length: accuracy by shape (`eval/equal_3_digits`,
    `eval/unequal_3_digits`, means `eval/accuracy_equal` / `_unequal`), and the share of
    right answers reached by wrong working (`eval/right_wrong_working_3_digits`); per
    robustness set, `eval/robust_NAME`."""

    data: Data
    train_digits: tuple[int, ...]
    max_new: int
    batch: int

    @property
    def held_out(self) -> dict[int, tuple[Problem, ...]]:
        return self.data.held_out

    @property
    def validation(self) -> tuple[Problem, ...]:
        return self.data.validation

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
        held = [d for d in self.train_digits if d in self.data.held_out_lengths]
        metrics["eval/accuracy_held_out"] = (
            float(np.mean([metrics[f"eval/accuracy_{d}_digits"] for d in held]))
            if held
            else float("nan")
        )
        for d in self.train_digits:
            faithful = [w for r, w in zip(right.get(d, []), working.get(d, []), strict=True) if r]
            metrics[f"eval/right_wrong_working_{d}_digits"] = (
                1 - float(np.mean(faithful)) if faithful else float("nan")
            )
        metrics.update(self._shapes(model, rng))
        return metrics

    def _shapes(self, model: Trained, rng: np.random.Generator) -> Metrics:
        sets = {
            **{f"{shape}_{d}_digits": ps for (d, shape), ps in self.data.shapes.items()},
            **{f"robust_{name}": ps for name, ps in self.data.robust.items()},
        }
        problems = [p for ps in sets.values() for p in ps]
        if not problems:
            return {}
        completions = iter(
            _complete(model.lm, [p.prompt() for p in problems], self.max_new, self.batch, rng)
        )
        metrics: Metrics = {}
        for key, ps in sets.items():
            right = [answer_correct(p, next(completions)) for p in ps]
            metrics[f"eval/{key}"] = float(np.mean(right))
        for shape in SHAPES:
            lengths = sorted({d for d, s in self.data.shapes if s == shape})
            metrics[f"eval/accuracy_{shape}"] = float(
                np.mean([metrics[f"eval/{shape}_{d}_digits"] for d in lengths])
            )
        return metrics


@dataclass(frozen=True)
class Summarize:
    """What a generation kept, and (for sums) the diversity monitor: the share of the pool's
    equal- and unequal-length problems whose rationale was kept (`kept/coverage_equal`,
    `kept/coverage_unequal`), and the share of unequal sums in the kept set. It reads the
    verifier's verdicts only, so a user can watch it without held-out answers."""

    pool: tuple[Problem, ...]
    shapes: bool

    def __call__(self, kept: Kept) -> Metrics:
        if not kept.pool:
            return {}
        attempts = kept.attempts
        rationalized = sum(a.rationalized for a in attempts)
        # measured, not filtered: how many kept rationales reach the answer by wrong working
        wrong_working = sum(not working_correct(a.problem, a.completion) for a in attempts)
        metrics = {
            "kept/size": float(len(attempts)),
            "kept/fraction": len(attempts) / kept.pool,
            "kept/first_try_fraction": kept.first_try / kept.pool,
            "kept/rationalized_fraction": rationalized / kept.pool,
            "kept/wrong_working_fraction": wrong_working / max(len(attempts), 1),
        }
        if self.shapes:
            problems = [a.problem for a in attempts]
            for shape, share in coverage(self.pool, problems).items():
                metrics[f"kept/coverage_{shape}"] = share
            long = [p for p in problems if p.digits > 1]
            metrics["kept/unequal_share"] = (
                sum(shape_of(p) == "unequal" for p in long) / len(long) if long else float("nan")
            )
        return metrics


def build_arms(config: StarConfig) -> list[Arm]:
    data = Data.of(config)
    spec = config.model.spec(TOKENIZER.vocab_size)
    base = initial_lm(spec, stage_rng(config.seed, 0, "setup/base-weights"))
    longest = max(len(p.rationale()) for d in data.held_out.values() for p in d)
    max_new = min(longest + 8, spec.context)
    evaluate = Evaluate(data, config.train_digits, max_new, config.sample_batch)
    gate = build_gate(config.gate)
    arms = []
    for arm in config.arm_specs:
        direct = arm.method == "direct"
        seed_set, pool = data.training(arm.draw)
        seed = tuple(seed_examples(seed_set, direct))
        generate: GenerateRationales | DirectAnswers = (
            DirectAnswers(pool)
            if direct
            else GenerateRationales(
                pool, max_new, config.sample_batch, config.generation_shards, config.executor
            )
        )
        rationalize = Rationalize(max_new, config.sample_batch) if arm.method == "star" else None
        seed_steps, direct_steps = config.train.seed_steps, None
        if direct:
            # At least STaR's tokens, in more (shorter) steps: STaR's budget if it kept every
            # problem, at the larger of the two mean lengths it can train on (seed set with
            # hints, or plain rationales).
            star_seed = seed_examples(seed_set, False)
            rationales = [_example(p.prompt(), p.rationale()) for p in pool]
            everything = [*star_seed, *rationales]
            star_steps = config.train.steps_for(everything)
            star_mean = max(_mean_tokens(star_seed), _mean_tokens(rationales))
            seed_steps = _matching_steps(seed_steps, _mean_tokens(star_seed), seed)
            every = [*seed, *(_example(p.prompt(), p.direct()) for p in pool)]
            direct_steps = _matching_steps(star_steps, star_mean, every)
        pipeline: Pipeline[Trained, list[Attempt] | list[Sample[Attempt]], Kept] = Pipeline(
            initialize=Initialize(base, seed, config.train, seed_steps),
            generate=generate,
            # gold answers have no working to check: the direct arm's check is the answer's
            verify=CheckRationales("answer" if direct else arm.verifier or config.verifier),
            revise=rationalize,
            curate=keep_passed,
            train=FineTune(base, seed, config.train, direct_steps),
            evaluate=evaluate,
            gate=gate,
            history_window=1,
            summarize=no_summary if direct else Summarize(pool, bool(config.shape_lengths)),
        )
        arms.append(Arm(arm.name, pipeline))
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
    *working, _ = attempt.completion.rstrip("\n").split("\n")
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
    if final_answer(attempt.completion) != answer_from_working(attempt.completion):
        return "the answer is not read from the working"
    return None


REVIEW = ReviewHooks("rationale", _view, _edited, ("completion",), _faithful, _suspect)
"""A reviewer reads the prompt and the rationale, may fix the rationale; the truth a
simulated reviewer knows is the whole-working check (every line right)."""

EXPERIMENT = Experiment(StarConfig, build_arms, star_claims, export_records, REVIEW)
