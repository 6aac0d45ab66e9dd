"""What the reasoning loops share: the self-training step budget, the `Trained` record, and
batched completion of text prompts with a tokenizer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from selfimprove.models.tiny_gpt import (
    EOS,
    Example,
    LanguageModel,
    LmModel,
    LmTrainConfig,
    Tokenizer,
    train_lm,
)
from selfimprove.models.tiny_gpt import SamplingConfig as SamplingConfig


class SelfTrainConfig(LmTrainConfig):
    """Training in a self-training loop: a seed phase, then a token budget per generation
    that grows with the kept set."""

    seed_steps: int = Field(400, ge=1, description="steps on the seed set for generation 0")
    epochs: float = Field(
        4.0, gt=0, description="token budget per generation = epochs x tokens of the train set"
    )
    min_steps: int = Field(
        100,
        ge=1,
        description="fewest steps per generation (restarting: never fewer than seed_steps)",
    )
    max_steps: int = Field(3000, ge=1, description="most steps per generation")
    restart: bool = Field(
        True, description="fine-tune the base model each generation (STaR); false: continue"
    )

    def steps_for(self, examples: Sequence[Example]) -> int:
        """`epochs` passes over `examples`' tokens, in steps, within the bounds."""
        per_step = self.batch_size * sum(e.tokens for e in examples) / len(examples)
        wanted = math.ceil(self.epochs * sum(e.tokens for e in examples) / per_step)
        fewest = max(self.min_steps, self.seed_steps) if self.restart else self.min_steps
        return int(min(max(wanted, fewest), max(self.max_steps, fewest)))


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


@dataclass(frozen=True)
class Trained:
    """The model a self-training loop carries, and the tokens spent training it."""

    lm: LmModel
    tokens: int  # this generation's training tokens
    total_tokens: int  # all generations' (restarting from the base does not reset it)

    @classmethod
    def on_seed(
        cls,
        base: LmModel,
        seed: Sequence[Example],
        steps: int,
        train: SelfTrainConfig,
        rng: np.random.Generator,
    ) -> Trained:
        """Generation 0: the base model trained on the seed set."""
        lm, tokens = train_lm(base, seed, steps, train, rng)
        return cls(lm, tokens, tokens)

    def fine_tuned(
        self,
        base: LmModel,
        examples: Sequence[Example],
        steps: int,
        train: SelfTrainConfig,
        rng: np.random.Generator,
    ) -> Trained:
        """A new model trained on `examples`, from the base (`train.restart`) or from this one."""
        start = base if train.restart else self.lm
        lm, tokens = train_lm(start, examples, steps, train, rng)
        return Trained(lm, tokens, self.total_tokens + tokens)
