"""Hugging Face `transformers` causal LMs behind the tiny GPT's generator and trainer
interfaces (optional extra `hf`): `HfModel.sample` / `HfModel.train` take and return what
`LmModel.sample` / `LmModel.train` do, so a loop can swap one for the other.

Nothing is downloaded: build the model from a config (`HfModel.from_config`), or load one a
user already has on disk with `transformers.AutoModelForCausalLM.from_pretrained(path)` and
wrap it with `HfModel.of`. Token ids are the caller's (the loops use a character tokenizer);
id 0 pads and id 1 ends a completion, as for the tiny GPT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from selfimprove.models.tiny_gpt import (
    EOS,
    PAD,
    Example,
    LmTrainConfig,
    SamplingConfig,
    finish_rows,
    fit,
)

try:
    import transformers
except ImportError as error:  # pragma: no cover - the extra is missing
    raise ImportError("the Hugging Face adapter needs `pip install selfimprove[hf]`") from error

torch.set_num_threads(1)


@dataclass(frozen=True)
class HfModel:
    """A frozen causal LM: its transformers config and a state dict (never changed in place)."""

    config: dict[str, Any]
    architecture: str  # e.g. "GPT2LMHeadModel"
    state: dict[str, torch.Tensor]

    @classmethod
    def of(cls, module: transformers.PreTrainedModel) -> HfModel:
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        return cls(module.config.to_dict(), type(module).__name__, state)

    @classmethod
    def from_config(cls, config: transformers.PretrainedConfig, seed: int) -> HfModel:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            module = transformers.AutoModelForCausalLM.from_config(config)
        return cls.of(module)

    def module(self) -> transformers.PreTrainedModel:
        config_class = transformers.AutoConfig.for_model(self.config["model_type"]).__class__
        config = config_class.from_dict(self.config)
        module = getattr(transformers, self.architecture)(config)
        module.load_state_dict(self.state)
        return module.eval()

    def num_parameters(self) -> int:
        return int(self.module().num_parameters())

    @torch.inference_mode()
    def sample(
        self, prompts: Sequence[Sequence[int]], config: SamplingConfig, rng: np.random.Generator
    ) -> list[list[int]]:
        """Completions for a batch of prompts (left-padded), through `generate` with its
        own key/value cache; greedy at temperature 0, else temperature and top-p."""
        net = self.module()
        longest = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), longest), PAD, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, prompt in enumerate(prompts):
            ids[row, longest - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[row, longest - len(prompt) :] = 1
        greedy = config.temperature <= 0
        with torch.random.fork_rng():
            torch.manual_seed(int(rng.integers(2**62)))
            out = net.generate(  # type: ignore[operator]  # typed as a Tensor attribute
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=config.max_new_tokens,
                do_sample=not greedy,
                temperature=None if greedy else config.temperature,
                top_p=None if greedy else config.top_p,
                top_k=None,
                pad_token_id=PAD,
                eos_token_id=EOS if config.stop_at_end else None,
            )
        rows: list[list[int]] = out[:, longest:].tolist()
        return finish_rows(rows, config.stop_at_end)

    def train(
        self,
        examples: Sequence[Example],
        steps: int,
        config: LmTrainConfig,
        rng: np.random.Generator,
    ) -> tuple[HfModel, int]:
        """The tiny GPT's recipe (AdamW, warm-up then cosine, completion-only loss) on a copy."""
        context = self.config.get("n_positions") or self.config.get("max_position_embeddings")
        if context is None:
            raise ValueError("the model's config gives no context length")
        net = self.module()

        def logits_of(inputs: torch.Tensor) -> torch.Tensor:
            return net(input_ids=inputs).logits

        state, tokens = fit(net, logits_of, int(context), examples, steps, config, rng)
        return HfModel(self.config, self.architecture, state), tokens
