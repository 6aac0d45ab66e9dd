"""What the reasoning loops share: the self-training step budget, the `Trained` record, and
batched completion of text prompts with a tokenizer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from selfimprove.core.config import ExecutorConfig
from selfimprove.core.executors import executor_of
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
class Completions:
    """A piece of a sharded `complete`: `(prompts, seed)` -> their completions (pickles to a
    worker with the model inside)."""

    tokenizer: Tokenizer
    lm: LanguageModel
    config: SamplingConfig
    batch: int

    def __call__(self, part: tuple[Sequence[str], int]) -> list[str]:
        prompts, seed = part
        rng = np.random.default_rng(seed)
        return complete(self.tokenizer, self.lm, prompts, self.config, self.batch, rng)


def complete_sharded(
    completions: Completions,
    prompts: Sequence[str],
    shards: int,
    rng: np.random.Generator,
    executor: ExecutorConfig,
) -> list[str]:
    """`complete` split into `shards` pieces of whole batches for `executor`, each with a seed
    drawn from `rng` first. One shard is `complete` itself with `rng`. Shards hold whole
    batches, so greedy completions equal the unsharded ones; sampled ones depend on `shards`
    (never on the executor)."""
    if shards == 1:
        batch = completions.batch
        return complete(
            completions.tokenizer, completions.lm, prompts, completions.config, batch, rng
        )
    batches = math.ceil(len(prompts) / completions.batch)
    cuts = np.linspace(0, batches, shards + 1).astype(int) * completions.batch
    seeds = [int(s) for s in rng.integers(2**63, size=shards)]
    parts = [
        (tuple(prompts[a:b]), seed)
        for a, b, seed in zip(cuts[:-1], cuts[1:], seeds, strict=True)
        if a < len(prompts) and b > a
    ]
    done = executor_of(executor).map(completions, parts)
    return [text for piece in done for text in piece]


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
