"""LoRA adapters on a frozen pretrained causal LM (`peft`, optional extra `lm`).

The loop never carries the base network: the caller loads it once per process (e.g.
`models.packaged.load_packaged`) and `AdapterHost` wraps it once with LoRA layers. What a
generation owns is an `Adapter`, the LoRA tensors alone (~4.9M numbers for SmolLM2-135M at
rank 16), which snapshots hold as plain tensors. Every fine-tune starts from a fresh adapter
on the frozen base, so the base weights never change (a test holds them bit-equal); the host
refuses an adapter whose keys are not its LoRA layers'.

Documents are token ids `[N, T]`; a start token is put before each one, and the loss, the
scores and the sampler all work on the T tokens after it. Randomness comes from the caller's
`np.random.Generator` (adapter initialization, minibatches, and a seed for the sampler).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch.nn import functional

from selfimprove.core.config import ConfigModel
from selfimprove.models.tiny_gpt import LmTrainConfig, lr_schedule

torch.set_num_threads(1)


def _peft() -> Any:
    """`peft`, imported on first use (the records here are read without the extra)."""
    try:
        import peft
    except ImportError as error:  # pragma: no cover - the extra is missing
        raise ImportError("LoRA fine-tuning needs `pip install selfimprove[lm]`") from error
    return peft


Device = Literal["cpu", "cuda"]


class LoraSettings(ConfigModel):
    """Where the low-rank adapters go and how large they are."""

    rank: int = Field(16, ge=1, description="rank r of each adapter (its A is r x in, B out x r)")
    alpha: float = Field(32.0, gt=0, description="scaling: the update is (alpha / r) B A")
    targets: tuple[str, ...] = Field(
        ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
        min_length=1,
        description="names of the linear layers that get an adapter (Llama's)",
    )


@dataclass(frozen=True)
class Adapter:
    """One fine-tune's LoRA tensors, keyed as `peft.get_peft_model_state_dict` keys them
    (on the CPU; never changed in place)."""

    tensors: dict[str, torch.Tensor]


class AdapterHost:
    """A frozen base network wrapped with LoRA layers, into which adapters are loaded in turn.

    A runtime resource, like a device: it holds the network so it is built once per process,
    but no result depends on which adapter it held before a call.
    """

    def __init__(self, base: Any, settings: LoraSettings) -> None:
        peft = _peft()
        for parameter in base.parameters():
            parameter.requires_grad_(False)
        lora = peft.LoraConfig(
            r=settings.rank,
            lora_alpha=settings.alpha,
            target_modules=list(settings.targets),
            lora_dropout=0.0,
        )
        with warnings.catch_warnings():  # peft 0.21 calls a property transformers 5 deprecates
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            self.net = peft.get_peft_model(base, lora)
        self._peft = peft
        self.device = next(base.parameters()).device
        self._keys = sorted(peft.get_peft_model_state_dict(self.net))

    def fresh(self, rng: np.random.Generator) -> Adapter:
        """A new adapter that leaves the base unchanged: A uniform in +-1/sqrt(in) (peft's
        Kaiming default), B zero, drawn from `rng` so runs repeat."""
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        tensors = {}
        for key, value in sorted(self._peft.get_peft_model_state_dict(self.net).items()):
            if "lora_A" in key:
                bound = 1.0 / math.sqrt(value.shape[1])
                tensors[key] = torch.empty(value.shape).uniform_(-bound, bound, generator=generator)
            else:
                tensors[key] = torch.zeros(value.shape)
        return Adapter(tensors)

    def load(self, adapter: Adapter) -> None:
        if sorted(adapter.tensors) != self._keys:
            raise ValueError("the adapter does not fit this network's LoRA layers")
        on_device = {k: v.to(self.device) for k, v in adapter.tensors.items()}
        self._peft.set_peft_model_state_dict(self.net, on_device)

    def current(self) -> Adapter:
        state = self._peft.get_peft_model_state_dict(self.net)
        return Adapter({k: v.detach().to("cpu", copy=True) for k, v in sorted(state.items())})

    def train(
        self,
        adapter: Adapter,
        documents: np.ndarray,
        start: int,
        steps: int,
        config: LmTrainConfig,
        rng: np.random.Generator,
    ) -> Adapter:
        """`steps` AdamW steps on random minibatches of `documents` `[N, T]` (warm-up then
        cosine decay), from `adapter`; returns the trained adapter."""

        def loss() -> torch.Tensor:
            chosen = rng.integers(0, len(documents), size=config.batch_size)
            return self._token_nll(documents[chosen], start).mean()

        return self._optimize(adapter, steps, config, loss)

    def train_completions(
        self,
        adapter: Adapter,
        examples: Sequence[tuple[Sequence[int], Sequence[int]]],
        steps: int,
        config: LmTrainConfig,
        rng: np.random.Generator,
        pad: int,
    ) -> Adapter:
        """Supervised fine-tuning on (prompt ids, completion ids) pairs: `steps` AdamW steps
        on random minibatches (right-padded), the loss on completion tokens only (the
        prompt, a chat template's turn, is context). Returns the trained adapter."""

        def loss() -> torch.Tensor:
            chosen = rng.integers(0, len(examples), size=config.batch_size)
            ids, labels, mask = _completion_batch([examples[i] for i in chosen], pad)
            logits = self.net(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device)
            ).logits
            return functional.cross_entropy(
                logits[:, :-1].transpose(1, 2), labels[:, 1:].to(self.device), ignore_index=-100
            )

        return self._optimize(adapter, steps, config, loss)

    def _optimize(
        self,
        adapter: Adapter,
        steps: int,
        config: LmTrainConfig,
        loss_of_a_minibatch: Callable[[], torch.Tensor],
    ) -> Adapter:
        """`steps` AdamW steps from `adapter` (warm-up then cosine decay, gradients clipped
        to norm 1), each on the loss of a fresh minibatch; returns the trained adapter."""
        self.load(adapter)
        trained = [p for p in self.net.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            trained, lr=config.learning_rate, weight_decay=config.weight_decay
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(steps, config))
        self.net.train()
        for _ in range(steps):
            loss = loss_of_a_minibatch()
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimizer.step()
            schedule.step()
        self.net.eval()
        return self.current()

    def _token_nll(self, documents: np.ndarray, start: int) -> torch.Tensor:
        """Nats of each document token after the start token, `[B, T]`."""
        ids = torch.as_tensor(documents, dtype=torch.long, device=self.device)
        inputs = functional.pad(ids, (1, 0), value=start)[:, :-1]  # [B, T]
        logits = self.net(input_ids=inputs).logits  # [B, T, V]
        return functional.cross_entropy(logits.transpose(1, 2), ids, reduction="none")

    @torch.inference_mode()
    def document_nll(
        self, adapter: Adapter, documents: np.ndarray, start: int, batch: int
    ) -> np.ndarray:
        """Mean nats per token of each document `[N]` (its log perplexity)."""
        self.load(adapter)
        parts = [
            self._token_nll(chunk, start).mean(dim=1).cpu() for chunk in _chunks(documents, batch)
        ]
        return torch.cat(parts).double().numpy()

    @torch.inference_mode()
    def sample(
        self,
        adapter: Adapter,
        settings: SampleSettings,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """`[num, length]` token ids drawn after the start token, with the key/value cache;
        ancestral sampling at `temperature` and `top_p` (no top-k, nothing stops early)."""
        self.load(adapter)
        rows = []
        seed = int(rng.integers(2**62))
        for first in range(0, settings.num, settings.batch):
            count = min(settings.batch, settings.num - first)
            ids = torch.full((count, 1), settings.start, dtype=torch.long, device=self.device)
            with torch.random.fork_rng(devices=[] if self.device.type == "cpu" else None):
                torch.manual_seed(seed + first)  # `generate` draws from the global generator
                out = self.net.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=settings.length,
                    min_new_tokens=settings.length,
                    do_sample=True,
                    temperature=settings.temperature,
                    top_p=settings.top_p,
                    top_k=0,
                    pad_token_id=settings.start,
                    eos_token_id=None,
                )
            rows.append(out[:, 1:].cpu())
        return torch.cat(rows).numpy().astype(np.int64)


@dataclass(frozen=True)
class SampleSettings:
    start: int
    num: int
    length: int
    temperature: float
    top_p: float
    batch: int


def _completion_batch(
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids `[B, L]`, labels (-100 but on completion tokens) and attention mask."""
    longest = max(len(p) + len(c) for p, c in pairs)
    ids = torch.full((len(pairs), longest), pad, dtype=torch.long)
    labels = torch.full((len(pairs), longest), -100, dtype=torch.long)
    mask = torch.zeros((len(pairs), longest), dtype=torch.long)
    for row, (prompt, completion) in enumerate(pairs):
        joined = [*prompt, *completion]
        ids[row, : len(joined)] = torch.tensor(joined, dtype=torch.long)
        labels[row, len(prompt) : len(joined)] = torch.tensor(list(completion), dtype=torch.long)
        mask[row, : len(joined)] = 1
    return ids, labels, mask


def _chunks(documents: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    for first in range(0, len(documents), batch):
        yield documents[first : first + batch]
