"""Execution-filtered program synthesis (AlphaCode / ReST-EM style) on the generation loop.

initialize  the base model (random weights) trained on a few worked programs: every single
            step, and a handful of two-step pipelines
generate    `samples_per_spec` programs sampled for every specification of the pool (words
            and tests only, no program)
verify      each distinct program runs in the sandbox on the specification's tests; the
            verdict records the isolation level it ran under
curate      keep one passing program per specification, newest first, merged with what
            earlier generations kept
train       fine-tune from the base model on seed + kept (token budget grows with the kept set)
evaluate    greedy pass rate on held-out specifications (compositions never trained on),
            per pipeline length, run in the sandbox
gate        continue
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from selfimprove.core.config import LoopConfig
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.records import Metrics, Provenance, ProvenanceCount, Verdict
from selfimprove.core.seeding import stage_rng
from selfimprove.models.tiny_gpt import (
    Example,
    LmModel,
    PieceTokenizer,
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
from selfimprove.reasoning.programs import Spec, all_specs, extract_program, test_inputs
from selfimprove.reasoning.sandbox import Isolation, Limits, RunVerdict, Sandbox

# programs are tokenized in pieces (words, symbols, indents): a step is a few tokens
TOKENIZER = PieceTokenizer.covering(
    [s.prompt + s.program() for s in all_specs([1])] + [" then ", "return", "\n"]
)


class SynthesisTrainConfig(SelfTrainConfig):
    epochs: float = Field(6.0, gt=0, description="token budget = epochs x tokens of the train set")


class SynthesisConfig(LoopConfig):
    """Programs for list transformations, kept when they pass their tests in the sandbox."""

    kind: Literal["reasoning.synthesis"] = "reasoning.synthesis"
    seed_pairs: int = Field(8, ge=0, description="worked two-step programs (all one-step ones too)")
    seed_triples: int = Field(0, ge=0, description="worked three-step programs")
    pool_pairs: int = Field(40, ge=1, description="two-step specifications without programs")
    pool_triples: int = Field(40, ge=0, description="three-step specifications without programs")
    held_out_pairs: int = Field(30, ge=1)
    held_out_triples: int = Field(30, ge=0)
    tests_per_spec: int = Field(5, ge=1)
    samples_per_spec: int = Field(4, ge=1)
    temperature: float = Field(0.8, ge=0)
    require_isolation: Isolation = Field(
        "rlimits", description="the weakest sandbox accepted (bwrap > namespaces > rlimits)"
    )
    model: ModelShape = ModelShape(context=128, layers=2, heads=4, width=128)
    train: SynthesisTrainConfig = SynthesisTrainConfig()
    sample_batch: int = Field(256, ge=1)


@dataclass(frozen=True)
class Task:
    spec: Spec
    inputs: tuple[tuple[list[int]], ...]
    expected: tuple[list[int], ...]


@dataclass(frozen=True)
class Candidate:
    task: Task
    program: str


@dataclass(frozen=True)
class Judged:
    candidate: Candidate
    verdict: RunVerdict


@dataclass(frozen=True)
class Kept:
    generation: int
    programs: dict[str, str]  # spec prompt -> a passing program (all generations so far)
    verdicts: tuple[Judged, ...]  # this generation's
    pool: int


@dataclass(frozen=True)
class Tasks:
    seed: tuple[Spec, ...]
    pool: tuple[Task, ...]
    held_out: tuple[Task, ...]

    @classmethod
    def of(cls, config: SynthesisConfig) -> Tasks:
        rng = stage_rng(config.seed, 0, "setup")
        singles = all_specs([1])
        pairs = [all_specs([2])[i] for i in rng.permutation(len(all_specs([2])))]
        triples = [all_specs([3])[i] for i in rng.permutation(len(all_specs([3])))]
        n_seed, n_pool, n_held = config.seed_pairs, config.pool_pairs, config.held_out_pairs
        if n_seed + n_pool + n_held > len(pairs):
            raise ValueError(
                f"asked for {n_seed + n_pool + n_held} two-step specs; {len(pairs)} exist"
            )

        def task(spec: Spec) -> Task:
            inputs = test_inputs(config.tests_per_spec, rng)
            return Task(spec, tuple((x,) for x in inputs), tuple(spec(x) for x in inputs))

        n_tri = config.seed_triples
        seed = (*singles, *pairs[:n_seed], *triples[:n_tri])
        pool = [*pairs[n_seed : n_seed + n_pool], *triples[n_tri : n_tri + config.pool_triples]]
        held = [*pairs[n_seed + n_pool : n_seed + n_pool + n_held]]
        start = n_tri + config.pool_triples
        held += triples[start : start + config.held_out_triples]
        return cls(seed, tuple(task(s) for s in pool), tuple(task(s) for s in held))


def _judge(sandbox: Sandbox, candidates: Sequence[Candidate]) -> list[RunVerdict]:
    """Each distinct (spec, program) runs once; two sandboxes at a time (the work is waiting
    on child processes)."""
    distinct = {(c.task.spec, c.program): c for c in candidates}

    def run(c: Candidate) -> RunVerdict:
        return sandbox.run(c.program, "f", c.task.inputs, c.task.expected)

    with ThreadPoolExecutor(max_workers=2) as pool:
        verdicts = dict(zip(distinct, pool.map(run, distinct.values()), strict=True))
    return [verdicts[(c.task.spec, c.program)] for c in candidates]


@dataclass(frozen=True)
class Initialize:
    base: LmModel
    seed: tuple[Example, ...]
    train: SynthesisTrainConfig

    def __call__(self, rng: np.random.Generator) -> tuple[Trained, Kept]:
        trained = Trained.on_seed(self.base, self.seed, self.train.seed_steps, self.train, rng)
        return trained, Kept(0, {}, (), 0)


@dataclass(frozen=True)
class SamplePrograms:
    pool: tuple[Task, ...]
    samples: int
    sampling: SamplingConfig
    batch: int

    def __call__(
        self, model: Trained, generation: int, rng: np.random.Generator
    ) -> list[Candidate]:
        del generation
        tasks = [t for t in self.pool for _ in range(self.samples)]
        texts = complete(
            TOKENIZER, model.lm, [t.spec.prompt for t in tasks], self.sampling, self.batch, rng
        )
        return [Candidate(t, extract_program(x)) for t, x in zip(tasks, texts, strict=True)]


@dataclass(frozen=True)
class RunTests:
    sandbox: Sandbox

    def __call__(self, samples: list[Candidate], rng: np.random.Generator) -> list[Judged]:
        del rng
        return [Judged(c, v) for c, v in zip(samples, _judge(self.sandbox, samples), strict=True)]


def keep_passing(
    scored: list[Judged], history: Sequence[Kept], generation: int, rng: np.random.Generator
) -> Kept:
    del rng
    programs = dict(history[-1].programs) if history else {}
    for judged in scored:
        if judged.verdict.passed:
            programs[judged.candidate.task.spec.prompt] = judged.candidate.program
    pool = len({j.candidate.task.spec for j in scored})
    return Kept(generation, programs, tuple(scored), pool)


@dataclass(frozen=True)
class FineTune:
    base: LmModel
    seed: tuple[Example, ...]
    train: SynthesisTrainConfig

    def __call__(self, incumbent: Trained, kept: Kept, rng: np.random.Generator) -> Trained:
        examples = list(self.seed) + [
            text_example(TOKENIZER, p, s) for p, s in kept.programs.items()
        ]
        steps = self.train.steps_for(examples)
        return incumbent.fine_tuned(self.base, examples, steps, self.train, rng)


@dataclass(frozen=True)
class EvaluateHeldOut:
    held_out: tuple[Task, ...]
    sandbox: Sandbox
    batch: int

    def __call__(self, model: Trained, generation: int, rng: np.random.Generator) -> Metrics:
        del generation
        config = SamplingConfig(max_new_tokens=model.lm.spec.context)
        texts = complete(
            TOKENIZER, model.lm, [t.spec.prompt for t in self.held_out], config, self.batch, rng
        )
        candidates = [
            Candidate(t, extract_program(x)) for t, x in zip(self.held_out, texts, strict=True)
        ]
        verdicts = _judge(self.sandbox, candidates)
        metrics: Metrics = {
            "train/tokens_total": float(model.total_tokens),
            "eval/pass_rate": float(np.mean([v.passed for v in verdicts])),
        }
        for steps in sorted({len(t.spec.steps) for t in self.held_out}):
            chosen = [
                v.passed
                for t, v in zip(self.held_out, verdicts, strict=True)
                if len(t.spec.steps) == steps
            ]
            metrics[f"eval/pass_rate_{steps}_steps"] = float(np.mean(chosen))
        return metrics


def summarize(kept: Kept) -> Metrics:
    if not kept.pool:
        return {}
    judged = kept.verdicts
    passed_specs = {j.candidate.task.spec for j in judged if j.verdict.passed}
    return {
        "kept/specs_solved_fraction": len(passed_specs) / kept.pool,
        "kept/samples_passing_fraction": float(np.mean([j.verdict.passed for j in judged])),
        "kept/programs": float(len(kept.programs)),
        "kept/sandbox_limit_fraction": float(
            np.mean(["limit" in j.verdict.reason for j in judged])
        ),
    }


def describe(kept: Kept) -> tuple[ProvenanceCount, ...]:
    counts: dict[Provenance, int] = {}
    for j in kept.verdicts:
        if j.verdict.passed:
            verdict = Verdict(
                True, f"tests in sandbox [{j.verdict.isolation}]", 1.0, j.verdict.reason
            )
            p = Provenance(
                "synthetic", kept.generation, f"generation-{kept.generation - 1}", verdict
            )
            counts[p] = counts.get(p, 0) + 1
    return tuple(ProvenanceCount(p, n) for p, n in counts.items())


def build_arms(config: SynthesisConfig) -> list[Arm]:
    tasks = Tasks.of(config)
    spec = config.model.spec(TOKENIZER)
    base = initial_lm(spec, stage_rng(config.seed, 1, "setup"))
    sandbox = Sandbox(
        Limits(cpu_seconds=1, wall_seconds=10, memory_mb=256), config.require_isolation
    )
    seed = tuple(text_example(TOKENIZER, s.prompt, s.program()) for s in tasks.seed)
    sampling = SamplingConfig(max_new_tokens=spec.context, temperature=config.temperature)
    pipeline: Pipeline[Trained, list[Candidate], list[Judged], Kept] = Pipeline(
        initialize=Initialize(base, seed, config.train),
        generate=SamplePrograms(tasks.pool, config.samples_per_spec, sampling, config.sample_batch),
        verify=RunTests(sandbox),
        curate=keep_passing,
        train=FineTune(base, seed, config.train),
        evaluate=EvaluateHeldOut(tasks.held_out, sandbox, config.sample_batch),
        history_window=1,
        describe=describe,
        summarize=summarize,
    )
    return [Arm("execution-filtered", pipeline)]


def export_records(kept: Kept) -> list[dict[str, object]]:
    """Kept programs as TRL prompt/completion records."""
    return [{"prompt": prompt, "completion": program} for prompt, program in kept.programs.items()]
