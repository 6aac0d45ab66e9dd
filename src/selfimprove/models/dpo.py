"""Direct preference optimization (Rafailov et al. 2023) of a LoRA adapter, with `trl`'s
`DPOTrainer` (optional extra `lm`).

The loss is trl's "sigmoid" DPO loss, -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))),
with pi / ref the summed log-probabilities of the chosen (c) and rejected (r) completion under
the policy and the reference. The policy is the `AdapterHost`'s network with the adapter being
trained; the reference is the same network with its adapters disabled, i.e. the frozen base
(the initial model). trl, handed a PEFT model that already carries an adapter, copies that
adapter as a "ref" adapter (so the reference would be where this call started); `train_dpo`
deletes the copy before training, and trl then disables the adapters for the reference pass,
as it does for a new adapter.

How trl is used here, and why:

- The pairs are token ids already (what the policy sampled, encoded by the loop's chat
  template); re-tokenizing text would not give back the same tokens, so `_PairsTrainer`
  skips trl's dataset preparation (`_prepare_dataset`) and trl's own collator pads the ids.
- Deterministic on the CPU given the caller's `np.random.Generator`: trl's seed and data seed
  (its sampler's shuffle) are drawn from it, no dataloader workers, no bf16 (trl's default),
  no gradient checkpointing. `transformers.set_seed` seeds the process-wide generators
  (Python, NumPy, torch); their states are restored afterwards, so library code leaves no
  global randomness changed.
- A fresh AdamW each call at a constant learning rate (no schedule): the loop's state is the
  adapter alone (its snapshots hold no optimizer moments), so every call optimizes alike.
- trl patches the base model's `forward` with a fused LM head (the unfused path is the
  original), and the trainers write `use_cache=False` and the tokenizer's special tokens into
  the model's configs; all of it is undone after each call, so the host's network is left as
  found (a resumed run, whose process has not trained yet, must sample as the original did).
"""

from __future__ import annotations

import contextlib
import copy
import random
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import Field

from selfimprove.core.config import ConfigModel
from selfimprove.models.chat import CharTemplate, HfTemplate, Template
from selfimprove.models.lora import Adapter, AdapterHost

torch.set_num_threads(1)


class DpoSettings(ConfigModel):
    """The DPO objective and its optimizer."""

    beta: float = Field(
        0.1, gt=0, le=10, description="strength of the pull towards the reference (trl's beta)"
    )
    learning_rate: float = Field(5e-5, gt=0, le=1, description="constant AdamW learning rate")
    batch_size: int = Field(4, ge=1, le=256, description="preference pairs per optimizer step")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping")


@dataclass(frozen=True)
class PreferencePair:
    """Token ids: the prompt (chat template and generation prompt), the chosen and the
    rejected completion (each ending with an end-of-turn token)."""

    prompt: tuple[int, ...]
    chosen: tuple[int, ...]
    rejected: tuple[int, ...]


@dataclass(frozen=True)
class DpoResult:
    adapter: Adapter
    margins: tuple[float, ...]
    """Per step, the batch's mean implicit reward margin beta * ((pi_c - ref_c) - (pi_r -
    ref_r)) before the step (trl's `rewards/margins`)."""
    losses: tuple[float, ...]


def train_dpo(
    host: AdapterHost,
    adapter: Adapter,
    pairs: Sequence[PreferencePair],
    steps: int,
    settings: DpoSettings,
    tokenizer: Any,
    rng: np.random.Generator,
) -> DpoResult:
    """`steps` DPO steps on `pairs` from `adapter` (reference: the base with adapters off).
    `tokenizer` is a `transformers` tokenizer (`trl_tokenizer`); trl reads its pad token."""
    import datasets  # type: ignore[import-untyped]  # no type information
    import transformers
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    seed = int(rng.integers(2**31))
    if not pairs or steps == 0:
        return DpoResult(adapter, (), ())
    host.load(adapter)
    rows = {
        "prompt_ids": [list(p.prompt) for p in pairs],
        "chosen_ids": [list(p.chosen) for p in pairs],
        "rejected_ids": [list(p.rejected) for p in pairs],
    }
    cpu = host.device.type == "cpu"
    with tempfile.TemporaryDirectory() as scratch, _quiet(), _global_rng_restored(cpu):
        args = DPOConfig(
            output_dir=scratch,
            max_steps=steps,
            per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            lr_scheduler_type="constant",
            warmup_steps=0,
            weight_decay=0.0,
            max_grad_norm=settings.max_grad_norm,
            beta=settings.beta,
            loss_type=["sigmoid"],
            max_length=None,
            seed=seed,
            data_seed=seed,
            use_cpu=cpu,
            bf16=False,
            activation_checkpointing=False,
            dataloader_num_workers=0,
            dataloader_pin_memory=False,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
        )
        with _network_restored(host.net.get_base_model()):
            trainer = _pairs_trainer()(
                model=host.net,
                args=args,
                train_dataset=datasets.Dataset.from_dict(rows),
                processing_class=tokenizer,
                data_collator=DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id),
            )
            trainer.remove_callback(transformers.PrinterCallback)  # it prints every step
            if "ref" in host.net.peft_config:
                host.net.delete_adapter("ref")  # the reference is the base, not this start
            trainer.train()
            logged = [entry for entry in trainer.state.log_history if "rewards/margins" in entry]
    host.net.eval()
    return DpoResult(
        host.current(),
        tuple(float(e["rewards/margins"]) for e in logged),
        tuple(float(e["loss"]) for e in logged),
    )


def _pairs_trainer() -> type[Any]:
    """trl's DPOTrainer on a dataset of token ids (`prompt_ids`, `chosen_ids`,
    `rejected_ids`), which it would otherwise build from text."""
    from trl.trainer.dpo_trainer import DPOTrainer

    class PairsTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset: Any, *args: Any, **kwargs: Any) -> Any:
            del args, kwargs
            return dataset

    return PairsTrainer


def trl_tokenizer(template: Template) -> Any:
    """The `transformers` tokenizer trl needs beside a template: the model's own, or for the
    character template of tests a word-level tokenizer with the same ids (0 pads, 1 ends)."""
    if isinstance(template, HfTemplate):
        return template.tokenizer
    if not isinstance(template, CharTemplate):
        raise TypeError(f"no transformers tokenizer for {type(template).__name__}")
    import tokenizers
    import transformers

    vocab = {"<pad>": 0, "<eos>": 1} | {c: i + 2 for i, c in enumerate(template.alphabet)}
    model = tokenizers.models.WordLevel(vocab, unk_token="<pad>")
    return transformers.PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizers.Tokenizer(model), pad_token="<pad>", eos_token="<eos>"
    )


@contextlib.contextmanager
def _global_rng_restored(cpu: bool) -> Iterator[None]:
    """Python's, NumPy's and torch's process-wide generators as they were before (trl's
    `set_seed` seeds all three)."""
    python = random.getstate()
    numpy = np.random.get_state()  # noqa: NPY002  # saved to be restored, never drawn from
    with torch.random.fork_rng(devices=[] if cpu else None):
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(numpy)  # noqa: NPY002


_CONFIG_KEYS = ("use_cache", "pad_token_id", "bos_token_id", "eos_token_id")


@contextlib.contextmanager
def _network_restored(net: Any) -> Iterator[None]:
    """The base network's `forward` and configs as they were: trl sets an instance `forward`
    (its fused LM head), and the trainers write `use_cache=False` and the tokenizer's special
    tokens into the model's config and generation config."""
    forward = vars(net).get("forward")
    generation = copy.deepcopy(net.generation_config)
    config = {key: getattr(net.config, key, None) for key in _CONFIG_KEYS}
    try:
        yield
    finally:
        if forward is None:
            vars(net).pop("forward", None)
        else:
            net.forward = forward
        net.generation_config = generation
        for key, value in config.items():
            setattr(net.config, key, value)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """transformers 5 deprecates names trl 1.x and peft 0.21 still use (warnings only), and
    logs, every call, that it copied the tokenizer's pad and end tokens into the model's
    configs (our sampler passes both explicitly)."""
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # unannotated
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            warnings.filterwarnings("ignore", "`gradient_checkpointing", FutureWarning)
            yield
    finally:
        logging.set_verbosity(verbosity)
