"""`selfimprove serve-model`: any chat model `load_chat` loads (the packaged SmolLM2, a
fine-tune's `hf:` folder, `tiny-random`) behind an OpenAI-compatible HTTP API, so that other
tools, and our own `OpenAIChat`, can use it like vLLM or llama.cpp's server.

Endpoints: `GET /v1/models` and `POST /v1/chat/completions` (no streaming, no tools). A bad
request is HTTP 400 in OpenAI's shape, `{"error": {"message", "type": "invalid_request_error"}}`.
Generation is CPU-bound and the model is not thread-safe, so requests go through it one at a
time (a lock; uvicorn runs each in a worker thread and the event loop stays free).

It binds 127.0.0.1 unless told otherwise and has no authentication unless given an API key
(`--api-key` or `$SELFIMPROVE_API_KEY`; then every request needs `Authorization: Bearer KEY`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from selfimprove.core.config import ConfigError
from selfimprove.models.chat import (
    ChatModel,
    Completion,
    Conversation,
    LocalChat,
    SamplingParams,
    check_conversation,
    load_chat,
)

MAX_BODY_BYTES = 4 * 2**20
DEFAULT_MAX_TOKENS = 128  # OpenAI's default is "up to the context"; a CPU model needs a bound


class BadRequestError(Exception):
    """A request the server refuses: its HTTP status and one-line message."""

    def __init__(self, message: str, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class TextPart(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    role: str
    content: str | list[TextPart]
    name: str | None = None


class ChatRequest(BaseModel):
    """The chat-completions fields this server reads; any other field is refused (rather than
    silently ignored), except `user`, which changes nothing."""

    model_config = ConfigDict(strict=True, extra="forbid")

    model: str | None = None
    messages: list[ChatMessage]
    n: int = Field(1, ge=1, le=64)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    stream: bool = False
    user: str | None = None
    frequency_penalty: float = Field(0.0, ge=0.0, le=0.0)  # accepted only at their defaults
    presence_penalty: float = Field(0.0, ge=0.0, le=0.0)


def parse_request(raw: bytes, served: str) -> tuple[Conversation, SamplingParams]:
    """The conversation and sampling settings of a request body, or a `BadRequestError`."""
    try:
        asked = ChatRequest.model_validate_json(raw)
    except ValidationError as invalid:
        raise BadRequestError(_describe(invalid)) from None
    if asked.stream:
        raise BadRequestError("streaming is not supported: send stream false (or leave it out)")
    if asked.model is not None and asked.model != served:
        raise BadRequestError(
            f"the model {asked.model!r} is not served here ({served!r} is)", 404, "model_not_found"
        )
    if asked.top_logprobs and not asked.logprobs:
        raise BadRequestError("top_logprobs needs logprobs: true")
    conversation = [{"role": m.role, "content": _text(m.content)} for m in asked.messages]
    try:
        check_conversation(conversation)
        params = SamplingParams(
            n=asked.n,
            temperature=asked.temperature,
            top_p=asked.top_p,
            max_tokens=asked.max_completion_tokens or asked.max_tokens or DEFAULT_MAX_TOKENS,
            stop=(asked.stop,) if isinstance(asked.stop, str) else tuple(asked.stop or ()),
            # no seed: a fresh one, so that repeated requests sample afresh as OpenAI's do
            seed=secrets.randbits(63) if asked.seed is None else asked.seed % 2**63,
            logprobs=asked.logprobs,
            top_logprobs=asked.top_logprobs or 0,
        )
    except ValidationError as invalid:
        raise BadRequestError(_describe(invalid)) from None
    except ValueError as invalid:
        raise BadRequestError(str(invalid)) from None
    return conversation, params


def _text(content: str | list[TextPart]) -> str:
    return content if isinstance(content, str) else "".join(p.text for p in content)


def _describe(invalid: ValidationError) -> str:
    """A pydantic error in one line: `field: what is wrong; ...`."""
    parts = []
    for found in invalid.errors(include_url=False)[:3]:
        where = ".".join(str(x) for x in found["loc"]) or "body"
        message = found["msg"].replace("Extra inputs are not permitted", "unsupported field")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def reply(
    served: str, completions: list[Completion], prompt_tokens: int, logprobs: bool
) -> dict[str, Any]:
    """An OpenAI `chat.completion` object."""
    choices = [
        {
            "index": index,
            "message": {"role": "assistant", "content": c.text},
            "finish_reason": c.finish_reason,
            "logprobs": _logprobs(c) if logprobs else None,
        }
        for index, c in enumerate(completions)
    ]
    generated = sum(c.completion_tokens for c in completions)
    return {
        "id": f"chatcmpl-{secrets.token_hex(12)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": served,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": generated,
            "total_tokens": prompt_tokens + generated,
        },
    }


def _logprobs(completion: Completion) -> dict[str, Any]:
    """OpenAI's `logprobs.content`: one entry per generated token, with its alternatives."""
    alternatives = completion.top_logprobs or tuple(() for _ in completion.tokens)
    return {
        "content": [
            {
                "token": token,
                "logprob": logprob,
                "bytes": list(token.encode()),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top
                ],
            }
            for token, logprob, top in zip(
                completion.tokens, completion.logprobs, alternatives, strict=True
            )
        ]
    }


def _error(status: int, message: str, code: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


def create_app(model: ChatModel, api_key: str | None = None) -> FastAPI:
    """The OpenAI-compatible app over `model` (requests need `Bearer api_key` if given)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    lock = threading.Lock()

    @app.middleware("http")
    async def authorize(request: Request, call_next: Any) -> Any:
        if api_key is not None:
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return _error(401, "a valid Authorization: Bearer KEY is needed", "invalid_api_key")
        return await call_next(request)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        return _error(error.status_code, str(error.detail))

    app.add_exception_handler(HTTPException, http_error)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        listed = {"id": model.name, "object": "model", "created": 0, "owned_by": "selfimprove"}
        return {"object": "list", "data": [listed]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            return _error(413, f"the request is over {MAX_BODY_BYTES} bytes")
        raw = await request.body()
        try:
            if len(raw) > MAX_BODY_BYTES:
                raise BadRequestError(f"the request is over {MAX_BODY_BYTES} bytes", 413)
            conversation, params = parse_request(raw, model.name)

            def complete() -> list[Completion]:
                with lock:  # one request at a time through the model
                    return model.generate([conversation], params)[0]

            try:
                completions = await run_in_threadpool(complete)
            except ValueError as refused:  # the prompt and max_tokens exceed the context
                raise BadRequestError(str(refused)) from None
        except BadRequestError as bad:
            return _error(bad.status, str(bad), bad.code)
        prompt_tokens = _prompt_tokens(model, conversation)
        return JSONResponse(reply(model.name, completions, prompt_tokens, params.logprobs))

    return app


def _prompt_tokens(model: ChatModel, conversation: Conversation) -> int:
    """The prompt's length in tokens where the model says (a local model), else 0."""
    return len(model.template.prompt(conversation)) if isinstance(model, LocalChat) else 0


def _server(model: ChatModel, api_key: str | None) -> Any:  # a uvicorn.Server
    from selfimprove.web.server import uvicorn_server

    return uvicorn_server(create_app(model, api_key))


def _load(args: argparse.Namespace) -> ChatModel:
    try:
        return load_chat(args.model, device=args.device, batch_size=args.batch_size)
    except (RuntimeError, AssertionError) as error:  # an unknown or absent device
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"cannot load {args.model} on {args.device}: {message}") from None


def serve_model(args: argparse.Namespace, out: Console) -> int:
    """`selfimprove serve-model MODEL`: load the model, then serve it until Ctrl+C. A bad model
    spec or an address it cannot listen on is a `ConfigError` before anything starts."""
    from selfimprove.web.server import is_loopback, listen, run_until_interrupted, shown_host

    api_key = args.api_key or os.environ.get("SELFIMPROVE_API_KEY") or None
    sock = listen(args.host, args.port)  # first: a busy port fails before a slow load
    try:
        model = _load(args)
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    if not is_loopback(args.host):
        guard = "it needs the API key" if api_key else "there is NO authentication"
        out.print(f"warning: {args.host} lets other machines connect; {guard}")
    out.print(
        f"serving {model.name} at http://{shown_host(args.host)}:{port}/v1 (Ctrl+C stops)",
        highlight=False,
    )
    run_until_interrupted(_server(model, api_key), sock)
    out.print("stopped")
    return 0


@contextmanager
def background_model_server(
    model: ChatModel, api_key: str | None = None, *, start_seconds: float = 15.0
) -> Iterator[str]:
    """`model` served on 127.0.0.1 (a free port) in a thread; yields its base URL
    (`http://127.0.0.1:PORT/v1`) once it listens, or raises after `start_seconds`; stops it
    on exit. For tests and benchmarks."""
    from selfimprove.web.server import in_a_thread

    with in_a_thread(_server(model, api_key), "model server", start_seconds) as port:
        yield f"http://127.0.0.1:{port}/v1"
