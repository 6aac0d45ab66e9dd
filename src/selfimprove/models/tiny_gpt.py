"""A small decoder-only transformer (GPT) for the text loops: STaR, distillation, collapse.

Pre-norm blocks, learned absolute positions, tied input/output embeddings, causal
self-attention through `scaled_dot_product_attention`. Sampling is batched over prompts of
different lengths (left-padded, positions counted from each prompt's first real token) and
uses a key/value cache, so each new token costs one position's work instead of the whole
sequence's. `sample_without_cache` recomputes the whole sequence every step: the slow
reference the cache is tested and benchmarked against.

The loop carries a frozen `LmModel` (spec + state dict). `train_lm` trains a copy and
returns a new `LmModel`; the incumbent is never changed.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.nn import functional

from selfimprove.core.config import ConfigModel

torch.set_num_threads(1)

PAD, EOS = 0, 1


class GptSpec(ConfigModel):
    vocab_size: int = Field(ge=3, description="token ids 0 (pad) and 1 (end) included")
    context: int = Field(128, ge=2, description="longest sequence, prompt + completion")
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    width: int = Field(128, ge=8, description="model width; a multiple of heads")
    mlp_ratio: int = Field(4, ge=1)
    positions: Literal["rotary", "learned"] = Field(
        "rotary", description="rotary (relative offsets; helps digit alignment) or learned"
    )


class Tokenizer(Protocol):
    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class _Vocabulary:
    """Ids from 2 on for a fixed, ordered list of units; 0 pads, 1 ends a completion."""

    def __init__(self, units: Sequence[str], unit: str, collection: str) -> None:
        self.units = tuple(units)
        self._ids = {u: i + 2 for i, u in enumerate(self.units)}
        self._names = unit, collection  # for errors: "character 'x' is not in the alphabet"

    @property
    def vocab_size(self) -> int:
        return len(self.units) + 2

    def _lookup(self, units: Sequence[str]) -> list[int]:
        try:
            return [self._ids[unit] for unit in units]
        except KeyError as error:
            unit, collection = self._names
            raise ValueError(f"{unit} {error.args[0]!r} is not in the {collection}") from None

    def decode(self, ids: Sequence[int]) -> str:
        """Text up to the first end token; pads are dropped."""
        out = []
        for i in ids:
            if i == EOS:
                break
            if i >= 2:
                out.append(self.units[i - 2])
        return "".join(out)


class PieceTokenizer(_Vocabulary):
    """A fixed vocabulary of pieces (words, symbols, newline, an indent, a space), split by a
    regular expression: code-shaped text in few tokens."""

    PATTERN = re.compile(r"\n|    | |\w+|[^\w\s]")

    def __init__(self, pieces: Sequence[str]) -> None:
        super().__init__(sorted(set(pieces)), "piece", "vocabulary")

    @classmethod
    def covering(cls, texts: Sequence[str]) -> PieceTokenizer:
        return cls([piece for text in texts for piece in cls.PATTERN.findall(text)])

    def encode(self, text: str) -> list[int]:
        pieces = self.PATTERN.findall(text)
        if "".join(pieces) != text:
            raise ValueError("the text has characters the tokenizer cannot split")
        return self._lookup(pieces)


class CharTokenizer(_Vocabulary):
    """Characters of a fixed alphabet, one id each."""

    def __init__(self, alphabet: str) -> None:
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("the alphabet repeats a character")
        super().__init__(alphabet, "character", "alphabet")

    def encode(self, text: str) -> list[int]:
        return self._lookup(text)


class KvCache:
    """Keys and values of every layer for `B` sequences of up to `capacity` positions."""

    def __init__(self, spec: GptSpec, batch: int, capacity: int) -> None:
        head = spec.width // spec.heads
        shape = (spec.layers, batch, spec.heads, capacity, head)
        self.keys = torch.zeros(shape)
        self.values = torch.zeros(shape)
        self.length = 0


class _Block(nn.Module):
    def __init__(self, spec: GptSpec) -> None:
        super().__init__()
        self.heads = spec.heads
        self.norm1 = nn.LayerNorm(spec.width)
        self.qkv = nn.Linear(spec.width, 3 * spec.width)
        self.proj = nn.Linear(spec.width, spec.width)
        self.norm2 = nn.LayerNorm(spec.width)
        self.mlp = nn.Sequential(
            nn.Linear(spec.width, spec.mlp_ratio * spec.width),
            nn.GELU(),
            nn.Linear(spec.mlp_ratio * spec.width, spec.width),
        )

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        rotation: tuple[torch.Tensor, torch.Tensor] | None,
        cache: KvCache | None,
        layer: int,
    ) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = (
            self.qkv(self.norm1(x))
            .view(b, t, 3, self.heads, w // self.heads)
            .permute(2, 0, 3, 1, 4)
        )
        if rotation is not None:
            q, k = _rotate(q, *rotation), _rotate(k, *rotation)
        if cache is not None:
            start = cache.length
            cache.keys[layer, :, :, start : start + t] = k
            cache.values[layer, :, :, start : start + t] = v
            k = cache.keys[layer, :, :, : start + t]
            v = cache.values[layer, :, :, : start + t]
        attended = functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(attended.transpose(1, 2).reshape(b, t, w))
        return x + self.mlp(self.norm2(x))


def _rotation(positions: torch.Tensor, head: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary embedding angles for `positions` `[B, T]` -> cos, sin `[B, 1, T, head / 2]`."""
    half = head // 2
    frequencies = 10000.0 ** (-torch.arange(half, dtype=torch.float32) / half)
    angles = positions[..., None].float() * frequencies
    return angles.cos()[:, None], angles.sin()[:, None]


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half : 2 * half]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, x[..., 2 * half :]], dim=-1)


class TinyGpt(nn.Module):
    def __init__(self, spec: GptSpec) -> None:
        super().__init__()
        if spec.width % spec.heads:
            raise ValueError(f"width {spec.width} is not a multiple of heads {spec.heads}")
        self.spec = spec
        self.tokens = nn.Embedding(spec.vocab_size, spec.width)
        self.positions = (
            nn.Embedding(spec.context, spec.width) if spec.positions == "learned" else None
        )
        self.blocks = nn.ModuleList(_Block(spec) for _ in range(spec.layers))
        self.norm = nn.LayerNorm(spec.width)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        cache: KvCache | None = None,
    ) -> torch.Tensor:
        """`tokens` `[B, T]` -> logits `[B, T, V]`. Without `mask`, plain causal attention;
        a boolean `mask` `[B, 1, T, keys]` says which keys each query may see."""
        b, t = tokens.shape
        if positions is None:
            positions = torch.arange(t).expand(b, t)
        if mask is None:
            mask = torch.ones(t, t, dtype=torch.bool).tril()
        x = self.tokens(tokens)
        rotation = None
        if self.positions is not None:
            x = x + self.positions(positions)
        else:
            rotation = _rotation(positions, self.spec.width // self.spec.heads)
        for layer, block in enumerate(self.blocks):
            x = block(x, mask, rotation, cache, layer)
        if cache is not None:
            cache.length += t
        return self.norm(x) @ self.tokens.weight.T


class LanguageModel(Protocol):
    """What the loops need of a generator: batched sampling and training on a copy (the
    tiny GPT here; `models.hf.HfModel` for Hugging Face models)."""

    def sample(
        self, prompts: Sequence[Sequence[int]], config: SamplingConfig, rng: np.random.Generator
    ) -> list[list[int]]: ...

    def train(
        self,
        examples: Sequence[Example],
        steps: int,
        config: LmTrainConfig,
        rng: np.random.Generator,
    ) -> tuple[LanguageModel, int]: ...

    def num_parameters(self) -> int: ...


@dataclass(frozen=True)
class LmModel:
    """What the loop carries: the spec and a state dict (tensors never changed in place)."""

    spec: GptSpec
    state: dict[str, torch.Tensor]

    def module(self) -> TinyGpt:
        net = TinyGpt(self.spec)
        net.load_state_dict(self.state)
        return net.eval()

    def num_parameters(self) -> int:
        # the output layer is the token embedding (tied), counted once
        return sum(v.numel() for v in self.state.values())

    def sample(
        self,
        prompts: Sequence[Sequence[int]],
        config: SamplingConfig,
        rng: np.random.Generator,
    ) -> list[list[int]]:
        return sample(self, prompts, config, rng)

    def train(
        self,
        examples: Sequence[Example],
        steps: int,
        config: LmTrainConfig,
        rng: np.random.Generator,
    ) -> tuple[LmModel, int]:
        return train_lm(self, examples, steps, config, rng)

    def save(self, path: Path) -> None:
        """A checkpoint `torch.load(weights_only=True)` can read back exactly."""
        buffer = io.BytesIO()
        torch.save({"spec": self.spec.model_dump_json(), "state": self.state}, buffer)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LmModel:
        data = torch.load(path, weights_only=True)
        return cls(GptSpec(**json.loads(data["spec"])), data["state"])


def initial_lm(spec: GptSpec, rng: np.random.Generator) -> LmModel:
    """Random weights drawn from `rng` only (the global torch generator is left as it was)."""
    with torch.random.fork_rng():
        torch.manual_seed(int(rng.integers(2**62)))
        net = TinyGpt(spec)
    return LmModel(spec, {k: v.detach().clone() for k, v in net.state_dict().items()})


# --- sampling ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    stop_at_end: bool = True  # False: every row gets max_new_tokens (benchmarks)


def _left_pad(prompts: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts -> tokens `[B, L]` padded on the left, and which entries are real `[B, L]`."""
    longest = max(len(p) for p in prompts)
    tokens = torch.full((len(prompts), longest), PAD, dtype=torch.long)
    real = torch.zeros((len(prompts), longest), dtype=torch.bool)
    for row, prompt in enumerate(prompts):
        if prompt:
            tokens[row, longest - len(prompt) :] = torch.tensor(prompt)
            real[row, longest - len(prompt) :] = True
    return tokens, real


def _attention_mask(real: torch.Tensor, queries: int) -> torch.Tensor:
    """Keys a query may see: real keys at or before it, and always itself (so a pad query
    never has an empty row). `real` `[B, K]` -> `[B, 1, queries, K]`."""
    keys = real.shape[1]
    query_at = torch.arange(keys - queries, keys)[:, None]
    key_at = torch.arange(keys)[None, :]
    causal = key_at <= query_at
    return ((causal & real[:, None, :]) | (key_at == query_at))[:, None]


def _choose(logits: torch.Tensor, config: SamplingConfig, gen: torch.Generator) -> torch.Tensor:
    """One token per row from last-position logits `[B, V]`."""
    if config.temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / config.temperature, dim=-1)
    if config.top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs
        sorted_probs = torch.where(before < config.top_p, sorted_probs, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


def _generator(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(2**62)))


def finish_rows(rows: list[list[int]], stop_at_end: bool) -> list[list[int]]:
    """Per row, the new tokens (up to and including the first end token when stopping)."""
    if not stop_at_end:
        return rows
    return [row[: row.index(EOS) + 1] if EOS in row else row for row in rows]


@torch.inference_mode()
def sample(
    model: LmModel | TinyGpt,
    prompts: Sequence[Sequence[int]],
    config: SamplingConfig,
    rng: np.random.Generator,
) -> list[list[int]]:
    """Completions (token ids, ending with `EOS` when the model ended them) for a batch of
    prompts, with the key/value cache."""
    net = model.module() if isinstance(model, LmModel) else model
    tokens, real = _left_pad(prompts)
    steps = min(config.max_new_tokens, net.spec.context - tokens.shape[1])
    if steps <= 0:
        return [[] for _ in prompts]
    gen = _generator(rng)
    batch = len(prompts)
    cache = KvCache(net.spec, batch, tokens.shape[1] + steps)
    offsets = (~real).sum(dim=1, keepdim=True)  # left pads per row
    positions = (torch.arange(tokens.shape[1])[None, :] - offsets).clamp(min=0)
    logits = net(tokens, positions, _attention_mask(real, tokens.shape[1]), cache)[:, -1]
    done = torch.zeros(batch, dtype=torch.bool)
    chosen: list[torch.Tensor] = []
    for step in range(steps):
        token = torch.where(done, PAD, _choose(logits, config, gen))
        chosen.append(token)
        done |= (token == EOS) & config.stop_at_end
        if done.all() or step == steps - 1:
            break
        real = torch.cat([real, torch.ones(batch, 1, dtype=torch.bool)], dim=1)
        position = positions[:, -1:] + 1 + step
        logits = net(token[:, None], position, _attention_mask(real, 1), cache)[:, -1]
    return finish_rows(torch.stack(chosen, dim=1).tolist(), config.stop_at_end)


@torch.inference_mode()
def sample_without_cache(
    model: LmModel | TinyGpt,
    prompts: Sequence[Sequence[int]],
    config: SamplingConfig,
    rng: np.random.Generator,
) -> list[list[int]]:
    """The same completions as `sample`, recomputing the whole sequence for every token."""
    net = model.module() if isinstance(model, LmModel) else model
    tokens, real = _left_pad(prompts)
    steps = min(config.max_new_tokens, net.spec.context - tokens.shape[1])
    if steps <= 0:
        return [[] for _ in prompts]
    gen = _generator(rng)
    batch = len(prompts)
    offsets = (~real).sum(dim=1, keepdim=True)
    done = torch.zeros(batch, dtype=torch.bool)
    chosen: list[torch.Tensor] = []
    for step in range(steps):
        positions = (torch.arange(tokens.shape[1])[None, :] - offsets).clamp(min=0)
        logits = net(tokens, positions, _attention_mask(real, tokens.shape[1]))[:, -1]
        token = torch.where(done, PAD, _choose(logits, config, gen))
        chosen.append(token)
        done |= (token == EOS) & config.stop_at_end
        if done.all() or step == steps - 1:
            break
        tokens = torch.cat([tokens, token[:, None]], dim=1)
        real = torch.cat([real, torch.ones(batch, 1, dtype=torch.bool)], dim=1)
    return finish_rows(torch.stack(chosen, dim=1).tolist(), config.stop_at_end)


def with_start(documents: torch.Tensor, start: int = EOS) -> torch.Tensor:
    """Inputs for scoring whole documents `[N, L]`: a start token, then all but the last."""
    return torch.cat([torch.full((documents.shape[0], 1), start), documents[:, :-1]], dim=1)


@torch.inference_mode()
def document_nll(model: LmModel, documents: np.ndarray, batch: int = 200) -> np.ndarray:
    """Each document's mean negative log-likelihood per token (nats), every token scored
    given the start token and the tokens before it. `[N, L] -> [N]`."""
    net = model.module()
    out = []
    for begin in range(0, documents.shape[0], batch):
        chunk = torch.as_tensor(documents[begin : begin + batch], dtype=torch.long)
        logp = torch.log_softmax(net(with_start(chunk)), dim=-1)
        out.append(-logp.gather(-1, chunk[..., None])[..., 0].mean(dim=1))
    return torch.cat(out).numpy().astype(np.float64)


# --- training ---------------------------------------------------------------------------


class LmTrainConfig(ConfigModel):
    batch_size: int = Field(64, ge=1, description="sequences per optimizer step")
    learning_rate: float = Field(1e-3, gt=0, description="peak AdamW learning rate")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    warmup_steps: int = Field(
        20, ge=0, description="linear warm-up steps, then cosine decay to a tenth of the rate"
    )


@dataclass(frozen=True)
class Example:
    """One training sequence: the loss covers `completion` only (completion-only loss)."""

    prompt: tuple[int, ...]
    completion: tuple[int, ...]

    @property
    def tokens(self) -> int:
        return len(self.prompt) + len(self.completion)


def completion_batch(
    examples: Sequence[Example], context: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded inputs `[B, T]` and next-token targets `[B, T]` (-100 = no loss)."""
    longest = min(max(e.tokens for e in examples), context + 1)
    inputs = torch.full((len(examples), longest - 1), PAD, dtype=torch.long)
    targets = torch.full((len(examples), longest - 1), -100, dtype=torch.long)
    for row, e in enumerate(examples):
        seq = torch.tensor((e.prompt + e.completion)[:longest])
        n = len(seq) - 1
        inputs[row, :n] = seq[:-1]
        first = len(e.prompt) - 1  # the position whose next token is the completion's first
        targets[row, first:n] = seq[first + 1 :]
    return inputs, targets


def completion_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the positions `targets` marks (nats per completion token)."""
    return functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def lr_schedule(steps: int, config: LmTrainConfig) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to a tenth of the learning rate."""

    def rate(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(steps - config.warmup_steps, 1)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return rate


def fit(
    net: nn.Module,
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    context: int,
    examples: Sequence[Example],
    steps: int,
    config: LmTrainConfig,
    rng: np.random.Generator,
) -> tuple[dict[str, torch.Tensor], int]:
    """`steps` AdamW steps of completion-only loss on random minibatches (cosine decay after
    a linear warm-up), changing `net` in place; `logits_of` maps input ids to logits. Returns
    a copy of the trained state and the number of tokens trained on. Any causal LM: the tiny
    GPT here, `transformers` models in `models.hf`."""
    if not examples:
        raise ValueError("nothing to train on")
    net.train()
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(steps, config))
    tokens = 0
    for _ in range(steps):
        chosen = rng.integers(0, len(examples), size=config.batch_size)
        batch = [examples[i] for i in chosen]
        tokens += sum(e.tokens for e in batch)
        inputs, targets = completion_batch(batch, context)
        loss = completion_loss(logits_of(inputs), targets)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    return {k: v.detach().clone() for k, v in net.state_dict().items()}, tokens


def train_lm(
    model: LmModel,
    examples: Sequence[Example],
    steps: int,
    config: LmTrainConfig,
    rng: np.random.Generator,
) -> tuple[LmModel, int]:
    """`fit` on a copy of `model`: returns the new model and the tokens it trained on."""
    net = model.module()
    state, tokens = fit(net, net, model.spec.context, examples, steps, config, rng)
    return LmModel(model.spec, state), tokens
