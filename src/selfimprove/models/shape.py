"""The tiny GPT's size as a recipe gives it: one shape for every loop that trains one (the
vocabulary comes from the loop's tokenizer, so it is not part of the shape)."""

from __future__ import annotations

from pydantic import Field, model_validator

from selfimprove.core.config import ConfigModel
from selfimprove.models.tiny_gpt import GptSpec


class GptShape(ConfigModel):
    """Context, depth and width of a tiny GPT."""

    context: int = Field(128, ge=8, le=4096, description="longest sequence, in tokens")
    layers: int = Field(2, ge=1, le=48, description="transformer blocks")
    heads: int = Field(4, ge=1, le=64, description="attention heads per block")
    width: int = Field(128, ge=8, le=4096, description="model width, a multiple of heads")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> GptShape:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not a multiple of heads {self.heads}")
        return self

    def memory_bytes(self, batch: int, vocab: int = 256) -> int:
        """Peak memory of training or sampling `batch` sequences (float32): weights, gradients
        and AdamW's two moments, plus per-layer activations, attention scores and logits."""
        width, context, layers = self.width, self.context, self.layers
        parameters = layers * 12 * width**2 + (vocab + context) * width
        activations = batch * context * layers * (16 * width + 2 * self.heads * context)
        logits = 2 * batch * context * vocab
        return 4 * (4 * parameters + activations + logits)

    def spec(self, vocab_size: int) -> GptSpec:
        return GptSpec(vocab_size=vocab_size, **self.model_dump())
