"""`LocalChat` on a tiny random Llama: shapes, greedy results that do not depend on the batch
(left padding), logprobs and choice logprobs equal to a hand-written forward pass, and the
refusals the server turns into HTTP 400."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from selfimprove.models.chat import (
    CharTemplate,
    LocalChat,
    SamplingParams,
    tiny_random_chat,
)

CONVERSATIONS = [
    [{"role": "user", "content": "hello"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why is the sky blue?"},
    ],
    [{"role": "user", "content": "a much longer question, so that the batch is left padded"}],
]


@cache
def _spiky_net() -> tuple[Any, CharTemplate]:
    """tiny-random with its matrices scaled by 10: sharp distributions, so greedy text varies
    (the plain tiny-random repeats one character) and ties are unlikely."""
    plain = tiny_random_chat()
    with torch.no_grad():
        for weight in plain.net.parameters():
            if weight.dim() == 2:
                weight.mul_(10.0)
    assert isinstance(plain.template, CharTemplate)
    return plain.net, plain.template


def spiky_chat(batch_size: int = 16) -> LocalChat:
    net, template = _spiky_net()
    return LocalChat(net, template, "tiny-random", batch_size)


def forward_logprobs(chat: LocalChat, prompt: list[int], tail: list[int]) -> torch.Tensor:
    """`[len(tail), V]`: log-softmax at each tail position, one unpadded row, no cache."""
    ids = torch.tensor([prompt + tail])
    with torch.inference_mode():
        logits = chat.net(input_ids=ids).logits[0].float()  # [T, V]
    return torch.log_softmax(logits[len(prompt) - 1 : len(prompt) + len(tail) - 1], dim=-1)


def test_a_batch_of_three_with_n_two_gives_three_rows_of_two() -> None:
    chat = spiky_chat(batch_size=4)
    params = SamplingParams(n=2, temperature=1.0, max_tokens=8, seed=3)
    out = chat.generate(CONVERSATIONS, params)
    assert [len(row) for row in out] == [2, 2, 2]
    for completion in (c for row in out for c in row):
        assert completion.completion_tokens <= 8
        assert completion.finish_reason == (
            "length" if completion.completion_tokens == 8 else "stop"
        )
    assert out[0][0].text != out[0][1].text  # two samples, not one repeated


def test_greedy_is_deterministic_and_the_same_for_batch_sizes_1_and_4() -> None:
    params = SamplingParams(max_tokens=24)
    alone = spiky_chat(batch_size=1).generate(CONVERSATIONS, params)
    batched = spiky_chat(batch_size=4).generate(CONVERSATIONS, params)
    again = spiky_chat(batch_size=4).generate(CONVERSATIONS, params)
    texts = [[c.text for c in row] for row in alone]
    assert texts == [[c.text for c in row] for row in batched]
    assert texts == [[c.text for c in row] for row in again]
    assert len({row[0] for row in texts}) == 3  # the prompts lead to different replies


def test_the_same_seed_gives_the_same_samples_and_another_seed_others() -> None:
    chat = spiky_chat()
    params = SamplingParams(n=2, temperature=1.0, max_tokens=16, seed=11)
    first = chat.generate(CONVERSATIONS, params)
    assert first == chat.generate(CONVERSATIONS, params)
    assert first != chat.generate(CONVERSATIONS, params.model_copy(update={"seed": 12}))


def test_logprobs_are_the_models_own_after_left_padding() -> None:
    chat = spiky_chat()
    params = SamplingParams(
        n=2, temperature=1.0, max_tokens=12, seed=5, logprobs=True, top_logprobs=3
    )
    out = chat.generate(CONVERSATIONS, params)
    for conversation, row in zip(CONVERSATIONS, out, strict=True):
        prompt = chat.template.prompt(conversation)
        for completion in row:
            assert (
                len(completion.tokens) == len(completion.logprobs) == completion.completion_tokens
            )
            assert "".join(completion.tokens) == completion.text
            tail = chat.template.encode(completion.text)
            expected = forward_logprobs(chat, prompt, tail)  # [T, V]
            chosen = expected[torch.arange(len(tail)), torch.tensor(tail)]
            np.testing.assert_allclose(completion.logprobs, chosen.numpy(), atol=1e-4)
            best = expected.max(dim=-1).values.numpy()
            np.testing.assert_allclose(
                [top[0][1] for top in completion.top_logprobs], best, atol=1e-4
            )
            assert all(len(top) == 3 for top in completion.top_logprobs)


def test_greedy_picks_the_likeliest_token_each_time() -> None:
    chat = spiky_chat()
    (completion,) = chat.generate(
        CONVERSATIONS[:1], SamplingParams(max_tokens=10, logprobs=True, top_logprobs=1)
    )[0]
    assert [top[0][0] for top in completion.top_logprobs] == list(completion.tokens)


def test_stop_strings_cut_the_text_and_end_with_stop() -> None:
    chat = spiky_chat()
    (full,) = chat.generate(CONVERSATIONS[:1], SamplingParams(max_tokens=20))[0]
    stop = full.text[5:7]
    (cut,) = chat.generate(CONVERSATIONS[:1], SamplingParams(max_tokens=20, stop=(stop,)))[0]
    assert cut.text == full.text[: full.text.index(stop)]
    assert (full.finish_reason, cut.finish_reason) == ("length", "stop")


def test_choice_logprobs_equal_a_hand_computed_sum_over_the_choice_tokens() -> None:
    chat = spiky_chat(batch_size=3)  # 3 conversations x 3 choices: pairs cross batches
    choices = ["A", "B", "yes"]
    found = chat.choice_logprobs(CONVERSATIONS, choices)
    assert found.shape == (3, 3)
    for row, conversation in enumerate(CONVERSATIONS):
        prompt = chat.template.prompt(conversation)
        for column, choice in enumerate(choices):
            tail = chat.template.encode(choice)
            logp = forward_logprobs(chat, prompt, tail)
            expected = sum(float(logp[i, t]) for i, t in enumerate(tail))
            assert found[row, column] == pytest.approx(expected, abs=1e-4)


def test_max_tokens_over_the_context_is_a_value_error() -> None:
    chat = spiky_chat()
    with pytest.raises(ValueError, match="exceed the model's context of 2048"):
        chat.generate(CONVERSATIONS[:1], SamplingParams(max_tokens=2047))


@pytest.mark.parametrize(
    "conversation",
    [
        [],
        [{"role": "robot", "content": "hi"}],
        [{"role": "user"}],
        [{"role": "user", "content": 3}],
        [{"role": "user", "content": "hi", "tool_calls": "x"}],
    ],
    ids=["empty", "unknown role", "no content", "content not text", "unknown key"],
)
def test_bad_conversations_are_value_errors(conversation: list[dict[str, Any]]) -> None:
    chat = spiky_chat()
    with pytest.raises(ValueError, match=r"conversation|message"):
        chat.generate([conversation], SamplingParams(max_tokens=2))
    with pytest.raises(ValueError, match=r"conversation|message"):
        chat.choice_logprobs([conversation], ["A"])
