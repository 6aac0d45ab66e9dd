"""A tiny random Llama (`transformers`, optional extra `hf` / `lm`): the real architecture and
code path of a pretrained model at ~0.2M parameters, for tests that must not load one."""

from __future__ import annotations

from typing import Any

import torch

torch.set_num_threads(1)


def tiny_random_llama(vocab_size: int, context: int = 256) -> Any:
    """A two-layer Llama with fixed random weights (seed 0), float32, in eval mode."""
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = transformers.AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
            config, dtype=torch.float32
        )
    return net.eval()
