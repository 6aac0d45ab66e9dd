"""What the web tests share: plain HTTP requests (no browser), a run folder with a review
queue made directly, logging a browser page in, and the screenshots for the docs."""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page

from selfimprove.core.store import RunStore
from selfimprove.oversight.queue import Item, ReviewQueue

WIDTH, HEIGHT = 1280, 800  # the screenshots' size


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def request(
    base: str,
    path: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request with the path sent exactly as given (no client normalizes `..`)."""
    where = urlsplit(base)
    connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        text = response.read().decode()
        found = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, found, text)
    finally:
        connection.close()


def post_json(base: str, path: str, payload: Any, token: str | None, **headers: str) -> Answer:
    sent = {"Content-Type": "application/json", **headers}
    if token is not None:
        sent["X-Selfimprove-Token"] = token
    return request(base, path, method="POST", body=json.dumps(payload).encode(), headers=sent)


def make_run(runs_dir: Path, arms: tuple[str, ...] = ("star",), status: str = "waiting") -> Path:
    """A run folder as `RunStore.create` makes it, with a status and arms, no generations."""
    store = RunStore.create(runs_dir, "reasoning.star", {"generations": 2}, 0, "test")
    store.register_arms(list(arms))
    store.set_status(status)
    store.close()
    return store.run_dir


def rationale(prompt: str, completion: str, **provenance: Any) -> Item:
    return Item.new(
        "rationale",
        "star",
        1,
        {"prompt": prompt, "completion": completion},
        editable=("completion",),
        provenance={"source": "synthetic", "model": "generation-0", **provenance},
        signals={"verifier/passed": True, "verifier/score": 1.0},
    )


def queue_items(run_dir: Path, items: list[Item]) -> list[str]:
    with ReviewQueue.open(run_dir) as queue:
        return queue.add(items)


def log_in(page: Page, base: str, token: str, path: str = "/") -> None:
    """Visit with `?token=` as the printed URL does: the cookie is set, the token dropped."""
    page.goto(f"{base}{path}{'&' if '?' in path else '?'}token={token}")
    assert "token=" not in page.url


def screenshot(page: Page, name: str) -> None:
    """Save the page for the docs when SELFIMPROVE_SCREENSHOTS names a folder."""
    folder = os.environ.get("SELFIMPROVE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name))
