"""`OpenAIChat` against real servers on 127.0.0.1: `selfimprove serve-model` (in a thread over
a tiny random Llama, and once as the command itself), and small `http.server` stubs for what a
healthy server never does (no logprobs, 500s, sleeping, gone).

`SELFIMPROVE_OPENAI_URL=http://HOST:PORT/v1[#model]` runs the tests that hold for any
OpenAI-compatible server (marked by the `endpoint` fixture) against that server instead,
e.g. `python -m llama_cpp.server` (docs/serving.md); the tests that compare with the local
model are then skipped, and the stub-server tests run as always."""

from __future__ import annotations

import contextlib
import http.server
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("fastapi")

from selfimprove.models.chat import Completion, LocalChat, SamplingParams, tiny_random_chat
from selfimprove.models.openai_client import (
    FLOOR_PROB,
    ChatRequestError,
    ChatServerError,
    OpenAIChat,
)
from selfimprove.models.serve import background_model_server
from tests.models.test_chat import spiky_chat

EXTERNAL = os.environ.get("SELFIMPROVE_OPENAI_URL")
HELLO = [{"role": "user", "content": "Say hello."}]
QUESTIONS = [
    HELLO,
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a color."}],
    [{"role": "user", "content": "What is two plus two? Answer with a number."}],
]


@dataclass(frozen=True)
class Endpoint:
    url: str
    model: str | None
    local: LocalChat | None  # the model behind it, when it is ours

    def client(self, **kwargs: Any) -> OpenAIChat:
        return OpenAIChat(self.url, self.model, timeout=60.0, **kwargs)

    def require_local(self) -> LocalChat:
        if self.local is None:
            pytest.skip("compares with the local model behind our own server")
        return self.local


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    if EXTERNAL:
        base, _, model = EXTERNAL.partition("#")
        yield Endpoint(base, model or None, None)
        return
    local = spiky_chat(batch_size=4)
    with background_model_server(local, start_seconds=60) as url:
        yield Endpoint(url, None, local)


# -- any OpenAI-compatible server ---------------------------------------------------------------


def test_the_server_answers_a_chat(endpoint: Endpoint) -> None:
    chat = endpoint.client()
    assert chat.name
    (row,) = chat.generate([HELLO], SamplingParams(max_tokens=8))
    (completion,) = row
    assert completion.text and 1 <= completion.completion_tokens <= 8
    assert completion.finish_reason in ("stop", "length")


def test_n_three_gives_three_completions_per_conversation(endpoint: Endpoint) -> None:
    params = SamplingParams(n=3, temperature=1.0, max_tokens=6, seed=1)
    out = endpoint.client().generate(QUESTIONS[:2], params)
    assert [len(row) for row in out] == [3, 3]


def test_logprobs_are_one_per_token_and_the_tokens_spell_the_text(endpoint: Endpoint) -> None:
    params = SamplingParams(
        n=2, temperature=1.0, max_tokens=10, seed=2, logprobs=True, top_logprobs=2
    )
    for row in endpoint.client().generate(QUESTIONS, params):
        for completion in row:
            assert (
                len(completion.tokens) == len(completion.logprobs) == completion.completion_tokens
            )
            assert all(lp <= 0 for lp in completion.logprobs)
            assert "".join(completion.tokens) == completion.text
            assert all(len(top) == 2 for top in completion.top_logprobs)


def test_a_stop_string_cuts_the_text_and_ends_with_stop(endpoint: Endpoint) -> None:
    chat = endpoint.client()
    (full,) = chat.generate([HELLO], SamplingParams(max_tokens=16))[0]
    assert len(full.text) >= 4, full
    stop = full.text[2:4]
    (cut,) = chat.generate([HELLO], SamplingParams(max_tokens=16, stop=(stop,)))[0]
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.finish_reason == "stop"


def test_the_same_seed_gives_the_same_text(endpoint: Endpoint) -> None:
    chat = endpoint.client()
    params = SamplingParams(temperature=1.0, max_tokens=12, seed=7)
    first = chat.generate(QUESTIONS, params)
    assert chat.generate(QUESTIONS, params) == first
    greedy = SamplingParams(max_tokens=12)
    assert chat.generate(QUESTIONS, greedy) == chat.generate(QUESTIONS, greedy)


def test_choice_logprobs_are_log_probabilities(endpoint: Endpoint) -> None:
    chat = endpoint.client()
    found = chat.choice_logprobs(QUESTIONS, ["A", "B"])
    assert found.shape == (3, 2)
    assert np.all(found <= 0) and np.all(np.isfinite(found))
    assert chat.choice_method == "logprobs"


def test_a_request_the_server_refuses_is_a_request_error(endpoint: Endpoint) -> None:
    chat = endpoint.client()
    with pytest.raises(ChatRequestError) as refused:
        chat.generate(
            [[{"role": "user", "content": "hi " * 5000}]], SamplingParams(max_tokens=4096)
        )
    assert 400 <= refused.value.status < 500
    assert chat.base_url in str(refused.value)
    assert "\n" not in str(refused.value)


# -- our own server: equal to the local model --------------------------------------------------


def test_greedy_through_the_server_equals_the_local_model(endpoint: Endpoint) -> None:
    local = endpoint.require_local()
    params = SamplingParams(n=2, max_tokens=20, logprobs=True, top_logprobs=3)
    served = endpoint.client().generate(QUESTIONS, params)
    direct = local.generate(QUESTIONS, params)
    assert_same_completions(served, direct)
    assert len({row[0].text for row in served}) == 3


def assert_same_completions(
    found: list[list[Completion]], expected: list[list[Completion]]
) -> None:
    """Equal texts, tokens and alternatives; logprobs equal up to float noise (the server
    scores each conversation alone, the local model a padded batch of them)."""
    assert [len(row) for row in found] == [len(row) for row in expected]
    for got, want in zip(
        (c for r in found for c in r), (c for r in expected for c in r), strict=True
    ):
        assert (got.text, got.finish_reason, got.tokens) == (
            want.text,
            want.finish_reason,
            want.tokens,
        )
        assert got.completion_tokens == want.completion_tokens
        np.testing.assert_allclose(got.logprobs, want.logprobs, atol=1e-5)
        assert [[t for t, _ in top] for top in got.top_logprobs] == [
            [t for t, _ in top] for top in want.top_logprobs
        ]
        np.testing.assert_allclose(
            [[lp for _, lp in top] for top in got.top_logprobs],
            [[lp for _, lp in top] for top in want.top_logprobs],
            atol=1e-5,
        )


def test_choice_logprobs_through_logprobs_equal_the_local_first_token_logprob(
    endpoint: Endpoint,
) -> None:
    local = endpoint.require_local()
    (first,) = local.generate([HELLO], SamplingParams(max_tokens=1, top_logprobs=20))[0]
    listed = [t for t, _ in first.top_logprobs[0] if t.strip()]
    absent = next(c for c in "abcdefghijklmnopqrstuvwxyz" if c not in dict(first.top_logprobs[0]))
    chat = endpoint.client()
    found = chat.choice_logprobs([HELLO], [listed[0], listed[4], absent])
    expected = local.choice_logprobs([HELLO], [listed[0], listed[4]])
    assert chat.choice_method == "logprobs"
    np.testing.assert_allclose(found[:, :2], expected, atol=1e-4)
    lowest = min(lp for _, lp in first.top_logprobs[0])
    assert found[0, 2] == min(math.log(FLOOR_PROB), lowest)


def test_bearer_key_is_required_when_the_server_has_one() -> None:
    with background_model_server(spiky_chat(), api_key="s3cret", start_seconds=60) as url:
        with pytest.raises(ChatRequestError) as refused:
            OpenAIChat(url, api_key="wrong", timeout=10)
        assert refused.value.status == 401
        chat = OpenAIChat(url, api_key="s3cret", timeout=10)
        assert chat.generate([HELLO], SamplingParams(max_tokens=3))[0][0].completion_tokens == 3


def post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url + "/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_reply_has_openais_shape(endpoint: Endpoint) -> None:
    endpoint.require_local()
    status, body = post(
        endpoint.url,
        {
            "model": "tiny-random",
            "messages": HELLO,
            "n": 2,
            "max_tokens": 4,
            "logprobs": True,
            "top_logprobs": 1,
        },
    )
    assert status == 200
    assert body["object"] == "chat.completion" and body["model"] == "tiny-random"
    assert body["id"].startswith("chatcmpl-") and isinstance(body["created"], int)
    assert [c["index"] for c in body["choices"]] == [0, 1]
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] in (
        "stop",
        "length",
    )
    token = choice["logprobs"]["content"][0]
    assert set(token) == {"token", "logprob", "bytes", "top_logprobs"}
    assert token["bytes"] == list(token["token"].encode())
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] == 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + 8


BAD_REQUESTS = [
    ("n as text", {"messages": HELLO, "n": "3"}, "n: "),
    ("unknown role", {"messages": [{"role": "robot", "content": "hi"}]}, "role"),
    ("n over 64", {"messages": HELLO, "n": 65}, "n: "),
    ("max_tokens over the context", {"messages": HELLO, "max_tokens": 4000}, "context"),
    ("streaming", {"messages": HELLO, "stream": True}, "streaming is not supported"),
    ("an unsupported field", {"messages": HELLO, "tools": []}, "tools: unsupported field"),
    ("no messages", {"n": 1}, "messages: Field required"),
    ("a body that is a list", [1], "body"),
    ("top_logprobs without logprobs", {"messages": HELLO, "top_logprobs": 2}, "logprobs"),
    ("stop as a number", {"messages": HELLO, "stop": 3}, "stop"),
]


@pytest.mark.parametrize(
    ("name", "body", "message"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_requests_are_400_in_openais_shape(
    endpoint: Endpoint, name: str, body: Any, message: str
) -> None:
    endpoint.require_local()
    status, answer = post(endpoint.url, body)
    assert status == 400, (name, answer)
    assert answer["error"]["type"] == "invalid_request_error"
    assert message in answer["error"]["message"]


def test_another_model_name_is_404(endpoint: Endpoint) -> None:
    endpoint.require_local()
    status, answer = post(endpoint.url, {"model": "gpt-9", "messages": HELLO})
    assert status == 404 and answer["error"]["code"] == "model_not_found"


# -- the command itself -------------------------------------------------------------------------


def test_serve_model_serves_tiny_random_until_ctrl_c() -> None:
    command = [sys.executable, "-m", "selfimprove", "serve-model", "tiny-random", "--port", "0"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _first_line(child, seconds=60)
        assert line.startswith("serving tiny-random at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split()[0]
        chat = OpenAIChat(url, timeout=30)
        assert chat.name == "tiny-random"
        params = SamplingParams(max_tokens=10, logprobs=True)
        assert_same_completions(
            chat.generate(QUESTIONS, params), tiny_random_chat().generate(QUESTIONS, params)
        )
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
        assert out.strip().endswith("stopped")
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


def _first_line(child: subprocess.Popen[str], seconds: float) -> str:
    """The child's first line of stdout, or a failure after `seconds`."""
    found: list[str] = []
    reader = threading.Thread(
        target=lambda: found.append(child.stdout.readline() if child.stdout else ""), daemon=True
    )
    reader.start()
    reader.join(seconds)
    if not found:
        pytest.fail(f"serve-model printed nothing in {seconds} s")
    return found[0].strip()


def test_serve_model_with_an_unknown_model_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from selfimprove.cli import main

    assert main(["serve-model", "gpt-7", "--port", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        "selfimprove: error: no chat model 'gpt-7': packaged, tiny-random, hf:FOLDER, or http://HOST:PORT/v1"
    )


# -- stub servers: what a healthy server never does --------------------------------------------

Handler = Callable[[str, Any], tuple[int, Any]]
"""(path, JSON body or None) -> (status, JSON answer); may sleep."""


@contextmanager
def stub_server(answer: Handler) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 whose every request `answer` handles."""

    class Handle(http.server.BaseHTTPRequestHandler):
        def _reply(self, body: Any) -> None:
            status, out = answer(self.path, body)
            data = json.dumps(out).encode()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply(None)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._reply(json.loads(self.rfile.read(length)))

        def log_message(self, format: str, *args: Any) -> None:
            del format, args  # quiet

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def choice(text: str, index: int = 0) -> dict[str, Any]:
    return {
        "index": index,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
        "logprobs": None,
    }


def test_without_logprobs_choice_logprobs_samples_and_asks_again_for_n() -> None:
    replies = iter(["A", " A yes", "B", "A", "C"] * 10)  # a server that ignores n: one choice
    asked: list[dict[str, Any]] = []

    def answer(path: str, body: Any) -> tuple[int, Any]:
        asked.append(body)
        return 200, {"choices": [choice(next(replies))], "usage": {"completion_tokens": 1}}

    with stub_server(answer) as url:
        chat = OpenAIChat(url, "stub", timeout=10, fallback_samples=10)
        found = chat.choice_logprobs([HELLO], ["A", "B"])
    assert chat.choice_method == "sampling"
    # first a logprobs request (answered with null), then 10 samples asked one at a time
    assert asked[0]["logprobs"] is True and asked[0]["max_tokens"] == 1
    assert [b["n"] for b in asked[1:]] == list(range(10, 0, -1))
    assert all(b["temperature"] == 1.0 for b in asked[1:])
    # of 10 replies "A", " A yes", "B", "A", "C", ...: 6 start with A, 2 with B (Laplace: +1, +2)
    np.testing.assert_allclose(found, np.log([[7 / 12, 3 / 12]]))


def test_a_server_that_refuses_logprobs_with_400_is_sampled_too() -> None:
    def answer(path: str, body: Any) -> tuple[int, Any]:
        if body.get("logprobs"):
            return 400, {"error": {"message": "logprobs are not supported"}}
        return 200, {"choices": [choice("B", i) for i in range(body["n"])]}

    with stub_server(answer) as url:
        chat = OpenAIChat(url, "stub", timeout=10, fallback_samples=4)
        found = chat.choice_logprobs([HELLO, HELLO], ["A", "B"])
    assert chat.choice_method == "sampling"
    np.testing.assert_allclose(found, np.log([[1 / 6, 5 / 6]] * 2))


def test_500s_are_retried_until_an_answer() -> None:
    count = 0

    def answer(path: str, body: Any) -> tuple[int, Any]:
        nonlocal count
        count += 1
        if count <= 2:
            return (500 if count == 1 else 429), {"error": {"message": "busy"}}
        return 200, {"choices": [choice("fine")], "usage": {"completion_tokens": 1}}

    with stub_server(answer) as url:
        out = OpenAIChat(url, "stub", timeout=10, retries=3, backoff=0.01).generate(
            [HELLO], SamplingParams()
        )
    assert out[0][0].text == "fine" and count == 3


def test_a_4xx_is_final_and_500s_end_after_the_retries() -> None:
    count = 0

    def answer(path: str, body: Any) -> tuple[int, Any]:
        nonlocal count
        count += 1
        return (422 if body["max_tokens"] == 1 else 503), {"error": {"message": f"no\nway {count}"}}

    with stub_server(answer) as url:
        chat = OpenAIChat(url, "stub", timeout=10, retries=2, backoff=0.01)
        with pytest.raises(ChatRequestError, match=r"HTTP 422: no way 1$"):
            chat.generate([HELLO], SamplingParams(max_tokens=1))
        with pytest.raises(
            ChatServerError, match=r"failed after 3 tries: HTTP 503: no way 4$"
        ) as failed:
            chat.generate([HELLO], SamplingParams(max_tokens=2))
    assert not isinstance(failed.value, ChatRequestError)
    assert count == 4


def test_a_server_that_sleeps_is_an_error_in_bounded_time() -> None:
    def answer(path: str, body: Any) -> tuple[int, Any]:
        time.sleep(2.0)
        return 200, {"choices": [choice("late")]}

    with stub_server(answer) as url:
        chat = OpenAIChat(url, "stub", timeout=0.3, retries=1, backoff=0.01)
        start = time.monotonic()
        with pytest.raises(ChatServerError) as failed:
            chat.generate([HELLO], SamplingParams())
        assert time.monotonic() - start < 1.5
    assert str(failed.value) == f"{url}/chat/completions: failed after 2 tries: no answer in 0.3 s"


def test_a_server_that_is_down_is_one_line_within_seconds() -> None:
    with socket.socket() as probe:  # a free port, then nobody listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    start = time.monotonic()
    with pytest.raises(ChatServerError) as failed:
        OpenAIChat(url, retries=2, backoff=0.05)  # model=None asks /models at once
    assert time.monotonic() - start < 3.0
    message = str(failed.value)
    assert message.startswith(f"{url}/models: failed after 3 tries: ") and "refused" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"choices": []}, "returned no choices"),
        ({"choices": [{"message": 5}]}, "a malformed answer (AttributeError"),
        ({"choices": [{"message": {"content": "x"}, "logprobs": {"content": [{}]}}]}, "KeyError"),
    ],
    ids=["no choices", "a message that is a number", "a logprob without token"],
)
def test_a_malformed_answer_is_one_line(answer: Any, message: str) -> None:
    with (
        stub_server(lambda path, body: (200, answer)) as url,
        pytest.raises(ChatServerError) as failed,
    ):
        OpenAIChat(url, "stub", timeout=10).generate([HELLO], SamplingParams())
    assert str(failed.value).startswith(f"{url}/chat/completions") and message in str(failed.value)
