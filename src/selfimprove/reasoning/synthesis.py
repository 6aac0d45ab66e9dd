"""Execution-filtered program synthesis (AlphaCode / ReST-EM style) on the generation loop.

initialize  the base model (random weights) trained on a few worked programs: every single
            step, and a handful of two-step pipelines
generate    `samples_per_spec` programs sampled for every specification of the pool (words
            and tests only, no program)
verify      each distinct program runs in the sandbox on the specification's tests; the
            verdict records the isolation level it ran under
curate      keep one passing program per specification, newest first, merged with what
            earlier generations kept (each with its provenance: the generation and model
            that wrote it, the sandbox's verdict)
train       fine-tune from the base model on seed + kept (token budget grows with the kept set)
evaluate    greedy pass rate on held-out specifications (compositions never trained on),
            per pipeline length, run in the sandbox
gate        no regression: a candidate whose pass rate on validation specifications (three
            steps, never trained on, apart from the held-out test) falls by more than the
            tolerance is rejected
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from selfimprove.core.config import ConfigError, ExecutorConfig, GateConfig, LoopConfig
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.executors import executor_of
from selfimprove.core.experiment import Experiment
from selfimprove.core.gates import build_gate
from selfimprove.core.provenance import provenance_columns
from selfimprove.core.records import Metrics, Sample, Verdict
from selfimprove.core.review import ReviewHooks
from selfimprove.core.seeding import stage_rng
from selfimprove.models.shape import GptShape
from selfimprove.models.tiny_gpt import (
    Example,
    LmModel,
    PieceTokenizer,
    initial_lm,
)
from selfimprove.reasoning.claims import synthesis_claims
from selfimprove.reasoning.generation import (
    Completions,
    SamplingConfig,
    SelfTrainConfig,
    Trained,
    complete,
    complete_sharded,
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

    kind: Literal["reasoning.synthesis"] = Field(
        "reasoning.synthesis", description="which experiment this recipe runs"
    )
    parallel: ClassVar[bool] = True  # sandbox runs go to the executor
    seed_pairs: int = Field(8, ge=0, description="worked two-step programs (all one-step ones too)")
    seed_triples: int = Field(0, ge=0, description="worked three-step programs")
    pool_pairs: int = Field(40, ge=1, description="two-step specifications without programs")
    pool_triples: int = Field(40, ge=0, description="three-step specifications without programs")
    held_out_pairs: int = Field(30, ge=1, description="two-step test specifications")
    held_out_triples: int = Field(30, ge=0, description="three-step test specifications")
    validation_triples: int = Field(
        20, ge=1, description="three-step specifications for the gate (never trained on)"
    )
    tests_per_spec: int = Field(5, ge=1, description="test inputs per specification")
    samples_per_spec: int = Field(4, ge=1, description="programs sampled per specification")
    temperature: float = Field(0.8, ge=0, allow_inf_nan=False, description="sampling temperature")
    require_isolation: Isolation = Field(
        "bwrap",
        description="the weakest sandbox accepted (bwrap > namespaces > rlimits); below bwrap "
        "only with unsafe_sandbox",
    )
    unsafe_sandbox: bool = Field(
        False,
        description="run generated code without OS isolation where bubblewrap or a binding "
        "process limit is missing (recorded in every verdict as UNSAFE)",
    )
    model: GptShape = Field(GptShape(), description="the tiny GPT (context in tokens)")
    train: SynthesisTrainConfig = Field(SynthesisTrainConfig(), description="fine-tuning")
    sample_batch: int = Field(256, ge=1, description="prompts sampled at once")
    generation_shards: int = Field(
        1,
        ge=1,
        le=4096,
        description="pieces of complete batches a generation's sampling is split into, each "
        "seeded from the stage's stream, for the executor; results depend on this number, "
        "never on the executor",
    )
    gate: GateConfig = Field(
        GateConfig(kind="no_regression", metric="val/pass_rate", tolerance=0.1),
        description="keep a candidate unless its validation pass rate falls by more than 0.1",
    )

    def memory_bytes(self) -> int:
        """The GPT training or sampling its largest batch."""
        return self.model.memory_bytes(max(self.train.batch_size, self.sample_batch))


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
class Kept:
    generation: int
    programs: dict[str, Sample[Candidate]]  # spec prompt -> a passing program, all generations
    judged: tuple[Sample[Candidate], ...]  # this generation's programs with their verdicts
    pool: int

    @property
    def samples(self) -> tuple[Sample[Candidate], ...]:
        """What the next model trains on, with provenance (for the store's counts)."""
        return tuple(self.programs.values())


@dataclass(frozen=True)
class Tasks:
    seed: tuple[Spec, ...]
    pool: tuple[Task, ...]
    held_out: tuple[Task, ...]
    validation: tuple[Task, ...]

    @classmethod
    def of(cls, config: SynthesisConfig) -> Tasks:
        rng = stage_rng(config.seed, 0, "setup/specifications")
        singles = all_specs([1])
        pairs = [all_specs([2])[i] for i in rng.permutation(len(all_specs([2])))]
        triples = [all_specs([3])[i] for i in rng.permutation(len(all_specs([3])))]
        n_seed, n_pool, n_held = config.seed_pairs, config.pool_pairs, config.held_out_pairs
        if n_seed + n_pool + n_held > len(pairs):
            raise ConfigError(
                f"seed_pairs + pool_pairs + held_out_pairs: asked for {n_seed + n_pool + n_held} "
                f"two-step specifications; {len(pairs)} exist"
            )
        wanted = (
            config.seed_triples
            + config.pool_triples
            + config.held_out_triples
            + config.validation_triples
        )
        if wanted > len(triples):
            raise ConfigError(
                f"seed, pool, held-out and validation triples: asked for {wanted} three-step "
                f"specifications; {len(triples)} exist"
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
        start += config.held_out_triples
        validation = triples[start : start + config.validation_triples]
        return cls(
            seed,
            tuple(task(s) for s in pool),
            tuple(task(s) for s in held),
            tuple(task(s) for s in validation),
        )


def _judge(
    sandbox: Sandbox, candidates: Sequence[Candidate], executor: ExecutorConfig
) -> list[RunVerdict]:
    """Each distinct (spec, program) runs once. Locally two sandboxes at a time (the work is
    waiting on child processes); with another executor the distinct programs are split into
    one piece per worker, each run the same way there. A verdict depends only on its program,
    so where it ran never changes it."""
    distinct = {(c.task.spec, c.program): c for c in candidates}
    runs = [(c.program, c.task.inputs, c.task.expected) for c in distinct.values()]
    judge = Judge(sandbox)
    if executor.kind == "local":
        judged = judge(runs)
    else:
        cuts = np.linspace(0, len(runs), executor.num_workers + 1).astype(int)
        pieces = [runs[a:b] for a, b in itertools.pairwise(cuts) if b > a]
        judged = [v for piece in executor_of(executor).map(judge, pieces) for v in piece]
    verdicts = dict(zip(distinct, judged, strict=True))
    return [verdicts[(c.task.spec, c.program)] for c in candidates]


Run = tuple[str, tuple[Any, ...], tuple[Any, ...]]  # program, inputs, expected outputs


@dataclass(frozen=True)
class Judge:
    """Programs run on their tests, two sandboxes at a time (pickles to a worker)."""

    sandbox: Sandbox

    def __call__(self, runs: Sequence[Run]) -> list[RunVerdict]:
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(lambda r: self.sandbox.run(r[0], "f", r[1], r[2]), runs))


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
    shards: int
    executor: ExecutorConfig

    def __call__(
        self, model: Trained, generation: int, rng: np.random.Generator
    ) -> list[Candidate]:
        del generation
        tasks = [t for t in self.pool for _ in range(self.samples)]
        completions = Completions(TOKENIZER, model.lm, self.sampling, self.batch)
        prompts = [t.spec.prompt for t in tasks]
        texts = complete_sharded(completions, prompts, self.shards, rng, self.executor)
        return [Candidate(t, extract_program(x)) for t, x in zip(tasks, texts, strict=True)]


@dataclass(frozen=True)
class RunTests:
    """Verify: run each program on its specification's tests in the sandbox."""

    sandbox: Sandbox
    executor: ExecutorConfig

    def __call__(self, samples: list[Candidate], rng: np.random.Generator) -> list[Verdict]:
        del rng
        return [_verdict(v) for v in _judge(self.sandbox, samples, self.executor)]


def _verdict(run: RunVerdict) -> Verdict:
    return Verdict(run.passed, f"tests in sandbox [{run.isolation}]", float(run.passed), run.reason)


def _passed(sample: Sample[Candidate]) -> bool:
    verdict = sample.provenance.verdict
    return verdict is not None and verdict.passed is True


def keep_passing(
    scored: tuple[Sample[Candidate], ...],
    history: Sequence[Kept],
    generation: int,
    rng: np.random.Generator,
) -> Kept:
    del rng
    programs = dict(history[-1].programs) if history else {}
    for sample in scored:
        if _passed(sample):
            programs[sample.content.task.spec.prompt] = sample
    pool = len({s.content.task.spec for s in scored})
    return Kept(generation, programs, scored, pool)


@dataclass(frozen=True)
class FineTune:
    base: LmModel
    seed: tuple[Example, ...]
    train: SynthesisTrainConfig

    def __call__(self, incumbent: Trained, kept: Kept, rng: np.random.Generator) -> Trained:
        examples = list(self.seed) + [
            text_example(TOKENIZER, p, s.content.program) for p, s in kept.programs.items()
        ]
        steps = self.train.steps_for(examples)
        return incumbent.fine_tuned(self.base, examples, steps, self.train, rng)


@dataclass(frozen=True)
class EvaluateHeldOut:
    held_out: tuple[Task, ...]
    validation: tuple[Task, ...]
    sandbox: Sandbox
    batch: int
    executor: ExecutorConfig

    def __call__(self, model: Trained, generation: int, rng: np.random.Generator) -> Metrics:
        del generation
        verdicts = self._passes(model, self.held_out, rng)
        metrics: Metrics = {
            "val/pass_rate": float(np.mean(self._passes(model, self.validation, rng))),
            "train/tokens_total": float(model.total_tokens),
            "eval/pass_rate": float(np.mean(verdicts)),
        }
        for steps in sorted({len(t.spec.steps) for t in self.held_out}):
            chosen = [
                passed
                for t, passed in zip(self.held_out, verdicts, strict=True)
                if len(t.spec.steps) == steps
            ]
            metrics[f"eval/pass_rate_{steps}_steps"] = float(np.mean(chosen))
        return metrics

    def _passes(
        self, model: Trained, tasks: tuple[Task, ...], rng: np.random.Generator
    ) -> list[bool]:
        """Greedy programs for `tasks`, run in the sandbox: which pass."""
        config = SamplingConfig(max_new_tokens=model.lm.spec.context)
        texts = complete(
            TOKENIZER, model.lm, [t.spec.prompt for t in tasks], config, self.batch, rng
        )
        candidates = [Candidate(t, extract_program(x)) for t, x in zip(tasks, texts, strict=True)]
        return [v.passed for v in _judge(self.sandbox, candidates, self.executor)]


def summarize(kept: Kept) -> Metrics:
    if not kept.pool:
        return {}
    judged = kept.judged
    passed_specs = {s.content.task.spec for s in judged if _passed(s)}
    reasons = [s.provenance.verdict.reason if s.provenance.verdict else "" for s in judged]
    return {
        "kept/specs_solved_fraction": len(passed_specs) / kept.pool,
        "kept/samples_passing_fraction": float(np.mean([_passed(s) for s in judged])),
        "kept/programs": float(len(kept.programs)),
        "kept/sandbox_limit_fraction": float(np.mean(["limit" in r for r in reasons])),
    }


def build_arms(config: SynthesisConfig) -> list[Arm]:
    tasks = Tasks.of(config)
    spec = config.model.spec(TOKENIZER.vocab_size)
    base = initial_lm(spec, stage_rng(config.seed, 0, "setup/base-weights"))
    sandbox = Sandbox(
        Limits(cpu_seconds=1, wall_seconds=10, memory_mb=256),
        config.require_isolation,
        unsafe=config.unsafe_sandbox,
    )
    if sandbox.refusal is not None:
        raise ConfigError(f"{sandbox.refusal} (unsafe_sandbox: true)")
    if sandbox.isolation.startswith("UNSAFE"):  # logged loudly; every verdict records it
        logging.getLogger(__name__).warning(
            "generated code runs without OS isolation [%s]: unsafe_sandbox is set",
            sandbox.isolation,
        )
    seed = tuple(text_example(TOKENIZER, s.prompt, s.program()) for s in tasks.seed)
    sampling = SamplingConfig(max_new_tokens=spec.context, temperature=config.temperature)
    pipeline: Pipeline[Trained, list[Candidate], Kept] = Pipeline(
        initialize=Initialize(base, seed, config.train),
        generate=SamplePrograms(
            tasks.pool,
            config.samples_per_spec,
            sampling,
            config.sample_batch,
            config.generation_shards,
            config.executor,
        ),
        verify=RunTests(sandbox, config.executor),
        curate=keep_passing,
        train=FineTune(base, seed, config.train),
        evaluate=EvaluateHeldOut(
            tasks.held_out, tasks.validation, sandbox, config.sample_batch, config.executor
        ),
        gate=build_gate(config.gate),
        history_window=1,
        summarize=summarize,
    )
    return [Arm("execution-filtered", pipeline)]


def export_records(kept: Kept) -> list[dict[str, object]]:
    """Kept programs as TRL prompt/completion records, with their provenance as columns."""
    records: list[dict[str, object]] = []
    for prompt, sample in kept.programs.items():
        columns = provenance_columns(sample.provenance)
        records.append({"prompt": prompt, "completion": sample.content.program, **columns})
    return records


def _view(candidate: Candidate) -> dict[str, str]:
    task = candidate.task
    tests = "\n".join(
        f"f({args[0]}) == {expected}"
        for args, expected in zip(task.inputs, task.expected, strict=True)
    )
    return {"specification": task.spec.prompt, "program": candidate.program, "tests": tests}


def _edited(candidate: Candidate, fields: Mapping[str, str]) -> Candidate:
    return replace(candidate, program=fields.get("program", candidate.program))


REVIEW = ReviewHooks("program", _view, _edited, ("program",), truth=None)
"""A reviewer reads the specification, the program and its tests (the sandbox's verdict is
among the signals) and may fix the program. No check beyond the tests exists, so simulated
reviewers are refused: people review programs."""

EXPERIMENT = Experiment(SynthesisConfig, build_arms, synthesis_claims, export_records, REVIEW)
