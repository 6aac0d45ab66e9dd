"""The Hugging Face adapter: a GPT-2 built locally from a config (nothing downloaded) behind
the same sampling and training interface as the tiny GPT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from selfimprove.models.hf import HfModel  # noqa: E402
from selfimprove.models.tiny_gpt import (  # noqa: E402
    EOS,
    CharTokenizer,
    Example,
    LmTrainConfig,
    SamplingConfig,
)

TOKENIZER = CharTokenizer("abcdef>")


def tiny_gpt2(seed: int = 0) -> HfModel:
    config = transformers.GPT2Config(
        vocab_size=TOKENIZER.vocab_size, n_positions=32, n_embd=48, n_layer=2, n_head=2
    )
    return HfModel.from_config(config, seed)


def test_greedy_sampling_matches_a_hand_written_argmax_loop() -> None:
    model = tiny_gpt2()
    prompts = [TOKENIZER.encode("abc>"), TOKENIZER.encode("f>")]
    out = model.sample(prompts, SamplingConfig(6, stop_at_end=False), np.random.default_rng(0))
    net = model.module()
    for prompt, completion in zip(prompts, out, strict=True):
        ids = torch.tensor([prompt])
        with torch.inference_mode():
            for _ in range(6):
                ids = torch.cat([ids, net(ids).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        assert completion == ids[0, len(prompt) :].tolist()


def test_training_learns_and_never_changes_the_incumbent() -> None:
    start = tiny_gpt2(1)
    before = {k: v.clone() for k, v in start.state.items()}
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdef"), 3)) for _ in range(200)]
    examples = [
        Example(tuple(TOKENIZER.encode(w + ">")), (*TOKENIZER.encode(w[::-1]), EOS)) for w in words
    ]

    def accuracy(m: HfModel) -> float:
        out = m.sample(
            [list(e.prompt) for e in examples], SamplingConfig(6), np.random.default_rng(0)
        )
        return float(
            np.mean([TOKENIZER.decode(o) == w[::-1] for o, w in zip(out, words, strict=True)])
        )

    trained, tokens = start.train(examples, 300, LmTrainConfig(learning_rate=3e-3), rng)
    assert accuracy(start) < 0.05
    assert accuracy(trained) >= 0.9
    assert tokens == 300 * 64 * 8
    assert all(torch.equal(start.state[k], v) for k, v in before.items())


def test_sampling_is_seeded() -> None:
    model = tiny_gpt2()
    prompts = [TOKENIZER.encode("abc>")] * 4
    config = SamplingConfig(8, temperature=1.0, top_p=0.9)
    a = model.sample(prompts, config, np.random.default_rng(3))
    assert a == model.sample(prompts, config, np.random.default_rng(3))
    assert a != model.sample(prompts, config, np.random.default_rng(4))
