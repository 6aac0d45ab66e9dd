"""What the reasoning loops share: the model's shape in a recipe, and batched completion of
text prompts with a tokenizer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from selfimprove.core.config import ConfigModel
from selfimprove.models.tiny_gpt import EOS, Example, GptSpec, LanguageModel, Tokenizer
from selfimprove.models.tiny_gpt import SamplingConfig as SamplingConfig


class ModelShape(ConfigModel):
    context: int = Field(128, ge=16, description="prompt + completion, in characters")
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    width: int = Field(128, ge=8)

    def spec(self, tokenizer: Tokenizer) -> GptSpec:
        return GptSpec(vocab_size=tokenizer.vocab_size, **self.model_dump())


def text_example(tokenizer: Tokenizer, prompt: str, completion: str) -> Example:
    """A training sequence: the loss covers the completion and its end token."""
    return Example(tuple(tokenizer.encode(prompt)), (*tokenizer.encode(completion), EOS))


def complete(
    tokenizer: Tokenizer,
    lm: LanguageModel,
    prompts: Sequence[str],
    config: SamplingConfig,
    batch: int,
    rng: np.random.Generator,
) -> list[str]:
    """Completions of `prompts`, `batch` at a time (the text up to the end token)."""
    out: list[str] = []
    for start in range(0, len(prompts), batch):
        chunk = [tokenizer.encode(p) for p in prompts[start : start + batch]]
        out.extend(tokenizer.decode(ids) for ids in lm.sample(chunk, config, rng))
    return out
