"""E8: a tiny GPT trained from scratch, generation after generation, on its own Shakespeare.

Generation 0 trains a character-level tiny GPT (`models.tiny_gpt`) on real documents of
the training plays; each later generation samples a synthetic corpus the size of the
training set from the incumbent (from a start token, at the arm's temperature and top-p,
with the key/value cache), the data policy decides what the next model sees, and the next
model is trained from fresh random weights for the same number of steps (Shumailov et al.;
Gerstgrasser et al. for accumulate).

Metric keys: `eval/test_nll` (nats per character on the held-out plays), `eval/train_nll`
(on real training documents), `monitor/*` (the generated corpus, see `collapse.text`), and
`monitor/gen0_nll_*` (quantiles of each generated document's nats per character under the
generation-0 model: the perplexity histogram, whose values are kept as an exhibit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from selfimprove.collapse.study import PolicyArm, draw_from_pool, policy_pipeline, study_gate
from selfimprove.collapse.text import RealText, TextSplit, spread_windows, text_claims
from selfimprove.core.config import LoopConfig
from selfimprove.core.engine import Arm
from selfimprove.core.experiment import Experiment, Measured
from selfimprove.core.memo import SharedDraw
from selfimprove.core.records import Batch, Claim, Evaluation
from selfimprove.core.text_monitors import words
from selfimprove.data import shakespeare
from selfimprove.data.shakespeare import ALPHABET
from selfimprove.models.shape import GptShape
from selfimprove.models.tiny_gpt import (
    EOS,
    CharTokenizer,
    Example,
    LmModel,
    LmTrainConfig,
    SamplingConfig,
    document_nll,
    initial_lm,
    sample,
    sample_without_cache,
    train_lm,
)

START = EOS  # each document is generated from the end-of-text token, as GPT-2 does

_GENERATION_ZERO: SharedDraw[tuple[bytes, str], LmModel] = SharedDraw()
"""The newest generation-0 model, keyed by its data, random state and settings: every arm
of a run starts from the same real data and seed, so the first arm's model serves them all
(a pure function's memo; a resumed run recomputes it)."""


class GptCollapseConfig(LoopConfig):
    """E8: a tiny GPT trained from scratch on its own samples under data policies."""

    kind: Literal["collapse.tiny_gpt"] = Field(
        "collapse.tiny_gpt", description="which experiment this recipe runs"
    )
    arms: tuple[PolicyArm, ...] = Field(
        (PolicyArm(),), min_length=1, description="data policies run side by side"
    )
    text: TextSplit = Field(TextSplit(), description="plays trained on and held out")
    model: GptShape = Field(
        GptShape(layers=4),
        description="the network, the same every generation (context: start token + characters)",
    )
    train_documents: int = Field(800, ge=2, description="documents in the training set")
    test_documents: int = Field(400, ge=1, description="held-out documents scored")
    steps: int = Field(600, ge=1, description="optimizer steps per generation (from scratch)")
    training: LmTrainConfig = Field(
        LmTrainConfig(batch_size=16, learning_rate=2e-3, warmup_steps=30),
        description="optimizer settings",
    )
    sample_batch: int = Field(400, ge=1, description="documents sampled in one batch")
    kv_cache: bool = Field(True, description="sample with the key/value cache (False: benchmarks)")
    checkpoint_every: int = Field(1, ge=0, description="snapshot every N generations")

    def memory_bytes(self) -> int:
        """The GPT training or sampling its largest batch, and the documents (int64); an
        accumulating arm keeps every generation's documents."""
        batch = max(self.training.batch_size, self.sample_batch)
        accumulates = any(arm.policy.keeps_every_generation for arm in self.arms)
        kept = 1 + (self.generations if accumulates else 0)
        documents = (self.train_documents * kept + self.test_documents) * self.model.context
        return self.model.memory_bytes(batch) + 8 * 2 * documents


@dataclass(frozen=True)
class GptModel:
    """A generation's network and the generation-0 network its samples are scored under."""

    lm: LmModel
    reference: LmModel


@dataclass(frozen=True)
class ShakespeareChars:
    """Real documents as character ids `[N, L]`, and the family's fit and sample (S = 1)."""

    train: np.ndarray
    test: np.ndarray
    real: RealText
    config: GptCollapseConfig
    top_p: float

    @property
    def tokenizer(self) -> CharTokenizer:
        return CharTokenizer(ALPHABET)

    def draw_real(self, num_seeds: int, num: int, rng: np.random.Generator) -> np.ndarray:
        return draw_from_pool(self.train, num_seeds, num, rng)

    def sample(
        self, model: GptModel, num: int, temperature: float, rng: np.random.Generator
    ) -> np.ndarray:
        """`[1, num, L]` documents; the rare pad / end token a model may emit becomes a space
        (no document ever contains one, so a model learns to give them almost no mass)."""
        draw = sample if self.config.kv_cache else sample_without_cache
        length = self.train.shape[1]
        settings = SamplingConfig(length, temperature, self.top_p, stop_at_end=False)
        net = model.lm.module()
        rows: list[list[int]] = []
        for start in range(0, num, self.config.sample_batch):
            count = min(self.config.sample_batch, num - start)
            rows.extend(draw(net, [[START]] * count, settings, rng))
        docs = np.array(rows, dtype=np.int64)
        docs[docs < 2] = self.tokenizer.encode(" ")[0]
        return docs[None]

    def fit(
        self, batches: Sequence[Batch], incumbent: GptModel | None, rng: np.random.Generator
    ) -> GptModel:
        documents = np.concatenate([b.data[0] for b in batches], axis=0)
        if incumbent is None:  # generation 0: the same for every arm of a run, trained once
            key = (documents.tobytes(), self.config.model_dump_json(exclude={"arms"}))
            lm = _GENERATION_ZERO.get(key, rng, lambda: self._train(documents, rng))
            return GptModel(lm, lm)
        return GptModel(self._train(documents, rng), incumbent.reference)

    def _train(self, documents: np.ndarray, rng: np.random.Generator) -> LmModel:
        examples = [Example((START,), tuple(doc.tolist())) for doc in documents]
        fresh = initial_lm(self.config.model.spec(len(ALPHABET) + 2), rng)
        lm, _ = train_lm(fresh, examples, self.config.steps, self.config.training, rng)
        return lm

    def text(self, document: np.ndarray) -> str:
        return self.tokenizer.decode(document.tolist())


@dataclass(frozen=True)
class EvaluateGpt:
    family: ShakespeareChars
    temperature: float
    budget: int

    def __call__(self, model: GptModel, generation: int, rng: np.random.Generator) -> Evaluation:
        del generation
        docs = self.family.sample(model, self.budget, self.temperature, rng)[0]
        texts = [self.family.text(doc) for doc in docs]
        under_gen0 = document_nll(model.reference, docs)
        q10, q50, q90 = np.percentile(under_gen0, [10, 50, 90])
        real_docs = self.family.train[:: max(1, self.family.train.shape[0] // 200)]
        metrics = {
            "eval/test_nll": float(document_nll(model.lm, self.family.test).mean()),
            "eval/train_nll": float(document_nll(model.lm, real_docs).mean()),
            "monitor/gen0_nll_q10": float(q10),
            "monitor/gen0_nll_median": float(q50),
            "monitor/gen0_nll_q90": float(q90),
        } | self.family.real.metrics([words(t) for t in texts], "\n".join(texts))
        exhibits = {
            "samples": texts[:4],
            "gen0_nll": [round(float(v), 4) for v in under_gen0],
        }
        return Evaluation(metrics, exhibits)


def shakespeare_chars(config: GptCollapseConfig, top_p: float) -> ShakespeareChars:
    """Training documents spread evenly over the training plays; test documents likewise."""
    tokenizer = CharTokenizer(ALPHABET)
    length = config.model.context - 1

    def documents(plays: Sequence[str], count: int) -> np.ndarray:
        ids = np.array(tokenizer.encode(shakespeare.corpus(list(plays))), dtype=np.int64)
        return spread_windows(ids, length, count)

    train = documents(config.text.training_plays(), config.train_documents)
    test = documents(config.text.test_plays, config.test_documents)
    texts = [tokenizer.decode(doc.tolist()) for doc in train]
    real = RealText.of([words(t) for t in texts], config.text)
    return ShakespeareChars(train, test, real, config, top_p)


def build_arms(config: GptCollapseConfig) -> list[Arm]:
    shared = shakespeare_chars(config, 1.0)  # read and index the plays once per run
    arms = []
    for arm in config.arms:
        family = dataclasses.replace(shared, top_p=arm.policy.top_p)
        budget = family.train.shape[0]
        evaluate = EvaluateGpt(family, arm.policy.temperature, budget)
        pipeline = policy_pipeline(family, arm.policy, 1, budget, evaluate, study_gate(config))
        arms.append(Arm(arm.label(), pipeline))
    return arms


def gpt_claims(config: GptCollapseConfig, measured: Measured) -> list[Claim]:
    return text_claims(config.arms, measured.metrics, "nats per character")


EXPERIMENT = Experiment(GptCollapseConfig, build_arms, gpt_claims)
