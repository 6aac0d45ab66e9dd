"""The tiny GPT: the key/value cache changes nothing but speed, padding changes nothing,
checkpoints round-trip exactly, the loss covers completions only, and training learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from selfimprove.models.tiny_gpt import (
    EOS,
    CharTokenizer,
    Example,
    GptSpec,
    LmModel,
    LmTrainConfig,
    SamplingConfig,
    completion_batch,
    initial_lm,
    sample,
    sample_without_cache,
    train_lm,
)

SPEC = GptSpec(vocab_size=16, context=48, layers=2, heads=2, width=32)
PROMPTS = [[3, 4, 5], [6], [7, 8, 9, 10, 11], [2, 2]]


@pytest.fixture(scope="module")
def model() -> LmModel:
    return initial_lm(SPEC, np.random.default_rng(0))


@pytest.mark.parametrize(
    "config",
    [SamplingConfig(24), SamplingConfig(24, temperature=1.0), SamplingConfig(24, 0.8, top_p=0.7)],
)
def test_cache_gives_the_same_tokens_as_recomputing(model: LmModel, config: SamplingConfig) -> None:
    with_cache = sample(model, PROMPTS, config, np.random.default_rng(5))
    without = sample_without_cache(model, PROMPTS, config, np.random.default_rng(5))
    assert with_cache == without
    assert all(len(c) <= 24 for c in with_cache)


def test_a_prompt_alone_and_in_a_padded_batch_get_the_same_greedy_completion(
    model: LmModel,
) -> None:
    batch = sample(model, PROMPTS, SamplingConfig(20), np.random.default_rng(0))
    for prompt, completion in zip(PROMPTS, batch, strict=True):
        assert sample(model, [prompt], SamplingConfig(20), np.random.default_rng(0)) == [completion]


def test_tiny_top_p_is_greedy(model: LmModel) -> None:
    greedy = sample(model, PROMPTS, SamplingConfig(16), np.random.default_rng(0))
    nucleus = sample(model, PROMPTS, SamplingConfig(16, 1.0, top_p=1e-6), np.random.default_rng(1))
    assert nucleus == greedy


def test_same_seed_same_samples_other_seed_other_samples(model: LmModel) -> None:
    config = SamplingConfig(16, temperature=1.5)
    a = sample(model, PROMPTS, config, np.random.default_rng(3))
    assert a == sample(model, PROMPTS, config, np.random.default_rng(3))
    assert a != sample(model, PROMPTS, config, np.random.default_rng(4))


def test_checkpoint_round_trips_exactly(model: LmModel, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    model.save(path)
    loaded = LmModel.load(path)
    assert loaded.spec == model.spec
    assert all(torch.equal(loaded.state[k], v) for k, v in model.state.items())
    assert set(loaded.state) == set(model.state)
    config = SamplingConfig(16, temperature=1.0)
    assert sample(loaded, PROMPTS, config, np.random.default_rng(2)) == sample(
        model, PROMPTS, config, np.random.default_rng(2)
    )


def test_loss_covers_the_completion_only() -> None:
    inputs, targets = completion_batch(
        [Example((5, 6, 7), (8, 9, EOS)), Example((4,), (3,))], context=48
    )
    assert inputs.tolist() == [[5, 6, 7, 8, 9], [4, 0, 0, 0, 0]]
    assert targets.tolist() == [[-100, -100, 8, 9, EOS], [3, -100, -100, -100, -100]]


def test_training_learns_and_never_changes_the_incumbent(model: LmModel) -> None:
    """Reverse three letters: from chance to (nearly) always right in 300 steps."""
    tokenizer = CharTokenizer("abcdef>")
    spec = GptSpec(vocab_size=tokenizer.vocab_size, context=16, layers=2, heads=2, width=48)
    start = initial_lm(spec, np.random.default_rng(1))
    before = {k: v.clone() for k, v in start.state.items()}
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdef"), 3)) for _ in range(200)]
    examples = [
        Example(tuple(tokenizer.encode(w + ">")), (*tokenizer.encode(w[::-1]), EOS)) for w in words
    ]

    def accuracy(m: LmModel) -> float:
        prompts = [list(e.prompt) for e in examples]
        out = sample(m, prompts, SamplingConfig(6), np.random.default_rng(0))
        return float(
            np.mean([tokenizer.decode(o) == w[::-1] for o, w in zip(out, words, strict=True)])
        )

    trained, tokens = train_lm(start, examples, 300, LmTrainConfig(learning_rate=3e-3), rng)
    assert accuracy(start) < 0.05
    assert accuracy(trained) >= 0.9
    assert tokens == 300 * 64 * 8  # 4 prompt + 4 completion tokens per example
    assert all(torch.equal(start.state[k], v) for k, v in before.items())


def test_tokenizer_rejects_unknown_characters_and_stops_at_the_end_token() -> None:
    tokenizer = CharTokenizer("ab")
    assert tokenizer.decode([*tokenizer.encode("abba"), EOS, *tokenizer.encode("a")]) == "abba"
    with pytest.raises(ValueError, match="'c' is not in the alphabet"):
        tokenizer.encode("abc")
