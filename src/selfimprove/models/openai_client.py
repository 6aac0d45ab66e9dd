"""`OpenAIChat`: the chat-model interface (`models/chat.py`) over any server that speaks the
OpenAI chat-completions API (vLLM, llama.cpp's server, Ollama, OpenAI, `selfimprove
serve-model`), with the standard library only.

Requests: `generate` sends one POST per conversation (`concurrency` of them at a time), each
asking for `n` completions; a server that returns fewer choices than asked (llama.cpp and
Ollama ignore `n`) is asked again for the rest. Conversation i is sent with seed `seed + i * n`
(and a repeat for the rest with seed + the number already received), so equal conversations in
one call do not get equal samples.

Failures: connection errors, timeouts, 429 and 5xx are retried `retries` times after
`backoff * 2**k` seconds; any other 4xx is final. Both end in a `ChatServerError` (a
`ConfigError`: the CLI prints it as one line, exit 2) whose message is one line naming the URL
and the cause.

`choice_logprobs` asks for one token with the top 20 logprobs and scores each choice by its
first token (see `first_token_logprob`); when the server gives no logprobs it estimates them
by sampling instead (`choice_method` records which).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from selfimprove.core.config import ConfigError
from selfimprove.models.chat import Completion, Conversation, SamplingParams, check_conversation

TOP_LOGPROBS = 20
"""The most alternatives the OpenAI API returns per token."""

FLOOR_PROB = 1e-6
"""A choice whose first token is not among the top 20 scores log(1e-6), or the 20th token's
logprob if that is lower: it is no likelier than any token listed."""

RETRIED_STATUS = (429, 500, 502, 503, 504)


class ChatServerError(ConfigError):
    """The server is down, too slow, or refused a request: one line naming the URL."""


class ChatRequestError(ChatServerError):
    """The server answered a request with a final 4xx (the request, not the server, is wrong)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class OpenAIChat:
    """A chat model served over the OpenAI chat-completions API.

    `model=None` takes the first id `GET /v1/models` lists (asked at once, so a server that is
    down fails here). `api_key` defaults to `$OPENAI_API_KEY` (none: no Authorization header).
    `timeout` is seconds per attempt; a call fails after at most `(retries + 1) * timeout`
    seconds plus the backoff.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        *,
        fallback_samples: int = 16,
        concurrency: int = 1,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(f"{base_url!r} is not an http(s)://HOST[:PORT]/v1 address")
        if timeout <= 0 or retries < 0 or backoff < 0 or fallback_samples < 1 or concurrency < 1:
            raise ConfigError(
                "OpenAIChat needs timeout > 0, retries >= 0, backoff >= 0, fallback_samples >= 1 "
                "and concurrency >= 1"
            )
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.fallback_samples = fallback_samples
        self.concurrency = concurrency
        self.choice_method: Literal["logprobs", "sampling"] | None = None
        """How the last `choice_logprobs` call scored (None before the first)."""
        self.model = model or self._first_model()
        self.name = self.model

    def _first_model(self) -> str:
        listed = self._request("GET", "/models")
        data = listed.get("data") if isinstance(listed, dict) else None
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            raise ChatServerError(f"{self.base_url}/models lists no model")
        return str(data[0]["id"])

    # -- HTTP ----------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """The JSON answer; retries connection errors, timeouts, 429 and 5xx."""
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        cause = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(url, data, headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as error:
                message = _error_message(error)
                if error.code not in RETRIED_STATUS:
                    raise ChatRequestError(
                        one_line(f"{url}: HTTP {error.code}: {message}"), error.code
                    ) from None
                cause = f"HTTP {error.code}: {message}"
            except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
                # refused, reset, timed out, a broken answer
                reason = getattr(error, "reason", error)
                cause = str(reason) or type(reason).__name__
                if isinstance(reason, TimeoutError) or isinstance(error, TimeoutError):
                    cause = f"no answer in {self.timeout:g} s"
            else:
                try:
                    return json.loads(raw)
                except ValueError:
                    raise ChatServerError(f"{url}: the answer is not JSON") from None
        tries = f"{self.retries + 1} tries" if self.retries else "1 try"
        raise ChatServerError(one_line(f"{url}: failed after {tries}: {cause}"))

    def _complete(self, body: dict[str, Any], n: int) -> list[dict[str, Any]]:
        """`n` choices for one request body, asking again while the server returns fewer."""
        choices: list[dict[str, Any]] = []
        while len(choices) < n:
            asked = {**body, "n": n - len(choices), "seed": body["seed"] + len(choices)}
            answer = self._request("POST", "/chat/completions", asked)
            got = answer.get("choices") if isinstance(answer, dict) else None
            if not isinstance(got, list) or not got:
                raise ChatServerError(f"{self.base_url}/chat/completions returned no choices")
            try:
                got = sorted(got, key=lambda c: int(c.get("index", 0)))
                choices += _with_usage(got, answer.get("usage"))
            except (TypeError, ValueError, AttributeError) as error:
                raise self._malformed(error) from None
        return choices[:n]

    # -- ChatModel -----------------------------------------------------------------------------

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[list[Completion]]:
        for conversation in conversations:
            check_conversation(conversation)
        bodies = [
            self._body(c, params, seed=params.seed + i * params.n)
            for i, c in enumerate(conversations)
        ]

        def one(body: dict[str, Any]) -> list[Completion]:
            choices = self._complete(body, params.n)
            try:
                return [_completion(c) for c in choices]
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise self._malformed(error) from None

        if self.concurrency == 1 or len(bodies) <= 1:
            return [one(b) for b in bodies]
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(one, bodies))

    def _body(
        self, conversation: Conversation, params: SamplingParams, seed: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in conversation],
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": seed,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.logprobs or params.top_logprobs:
            body["logprobs"] = True
            if params.top_logprobs:
                body["top_logprobs"] = params.top_logprobs
        return body

    def choice_logprobs(
        self, conversations: Sequence[Conversation], choices: Sequence[str]
    ) -> np.ndarray:
        """`[B, C]`. With logprobs: each choice's first-token logprob (`first_token_logprob`).
        Without (the server refuses them with a 4xx or returns null): the log of the Laplace
        share of `fallback_samples` replies at temperature 1 that start with the choice,
        `log((count + 1) / (samples + C))`, leading whitespace ignored."""
        if not choices or not all(c.strip() for c in choices):
            raise ValueError("choices are non-empty strings")
        for conversation in conversations:
            check_conversation(conversation)
        shape = (len(conversations), len(choices))
        if self.choice_method != "sampling":
            try:
                scored = [self._logprob_row(c, choices) for c in conversations]
                self.choice_method = "logprobs"
                return np.array(scored, dtype=float).reshape(shape)
            except _NoLogprobsError:
                pass
        # a request the server refuses for other reasons fails here too, method unchanged
        scored = [self._sampled_row(c, choices) for c in conversations]
        self.choice_method = "sampling"  # and so on: the server will not give logprobs
        return np.array(scored, dtype=float).reshape(shape)

    def _logprob_row(self, conversation: Conversation, choices: Sequence[str]) -> list[float]:
        params = SamplingParams(max_tokens=1, logprobs=True, top_logprobs=TOP_LOGPROBS)
        try:
            (choice,) = self._complete(self._body(conversation, params, seed=0), 1)
        except ChatRequestError as error:
            if 400 <= error.status < 500 and error.status not in (401, 403, 404):
                raise _NoLogprobsError from None
            raise
        content = (choice.get("logprobs") or {}).get("content") or []
        if not content:
            raise _NoLogprobsError
        try:
            first = content[0]
            listed = {str(t["token"]): float(t["logprob"]) for t in first.get("top_logprobs") or []}
            listed.setdefault(str(first["token"]), float(first["logprob"]))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise self._malformed(error) from None
        return [first_token_logprob(listed, c) for c in choices]

    def _malformed(self, error: Exception) -> ChatServerError:
        where = f"{self.base_url}/chat/completions"
        return ChatServerError(
            one_line(f"{where}: a malformed answer ({type(error).__name__}: {error})")
        )

    def _sampled_row(self, conversation: Conversation, choices: Sequence[str]) -> list[float]:
        longest = max(len(c.strip().encode()) for c in choices)  # a token is at least one byte
        params = SamplingParams(n=1, temperature=1.0, max_tokens=min(longest, 4096))
        body = self._body(conversation, params, seed=0)
        replies = [
            str((c.get("message") or {}).get("content") or "")
            for c in self._complete(body, self.fallback_samples)
        ]
        counts = [sum(r.lstrip().startswith(c.strip()) for r in replies) for c in choices]
        total = len(replies) + len(choices)
        return [math.log((k + 1) / total) for k in counts]


class _NoLogprobsError(Exception):
    """The server gives no logprobs: `choice_logprobs` samples instead."""


def first_token_logprob(listed: Mapping[str, float], choice: str) -> float:
    """The logprob that a reply starts with `choice`, from the first token's top logprobs:
    the tokens that, leading whitespace stripped, are the longest prefix of the choice among
    those listed ("A" and " A" for choice "A"; "Yes" rather than "Y" for "Yes"), summed. A
    longer choice is scored by its first token alone, so choices should differ in their first
    token ("A" / "B"). None listed: `FLOOR_PROB` (see there)."""
    wanted = choice.lstrip()
    matches = [
        (t.lstrip(), lp) for t, lp in listed.items() if t.strip() and wanted.startswith(t.lstrip())
    ]
    if not matches:
        return min(math.log(FLOOR_PROB), min(listed.values(), default=0.0))
    longest = max(len(t) for t, _ in matches)
    return float(np.logaddexp.reduce([lp for t, lp in matches if len(t) == longest]))


def _error_message(error: urllib.error.HTTPError) -> str:
    """The server's own error message (OpenAI shape `{"error": {"message"}}`), else the body."""
    try:
        raw = error.read(4096).decode(errors="replace")
    except OSError:
        return str(error.reason)
    try:
        found = json.loads(raw)
        inner = found.get("error", found)
        return str(inner.get("message", inner) if isinstance(inner, dict) else inner)
    except (ValueError, AttributeError):
        return raw or str(error.reason)


def _with_usage(choices: list[dict[str, Any]], usage: Any) -> list[dict[str, Any]]:
    """Each choice with its own `completion_tokens`: the number of its logprobs when it has
    them, else the usage total shared evenly (exact for n = 1; the sum is always exact)."""
    total = usage.get("completion_tokens") if isinstance(usage, dict) else None
    share, extra = divmod(int(total or 0), len(choices))
    out = []
    for index, choice in enumerate(choices):
        content = (choice.get("logprobs") or {}).get("content")
        counted = len(content) if content else share + (index < extra)
        out.append({**choice, "completion_tokens": counted})
    return out


def _completion(choice: Mapping[str, Any]) -> Completion:
    text = str((choice.get("message") or {}).get("content") or "")
    finish: Literal["stop", "length"] = (
        "length" if choice.get("finish_reason") == "length" else "stop"
    )
    content = (choice.get("logprobs") or {}).get("content") or []
    alternatives = tuple(
        tuple((str(a["token"]), float(a["logprob"])) for a in t.get("top_logprobs") or [])
        for t in content
    )
    return Completion(
        text,
        finish,
        int(choice["completion_tokens"]),
        tuple(str(t["token"]) for t in content),
        tuple(float(t["logprob"]) for t in content),
        alternatives if any(alternatives) else (),  # none asked: () as `LocalChat` gives
    )
