"""The web app's routes: pages rendered on the server (Jinja, autoescaped), a small script per
page, and the JSON API it calls.

Pages: `/` (every run), `/runs/{id}` (live metrics, decisions, events, provenance, review
counts), `/runs/{id}/report` (the run's HTML report, sandboxed), `/runs/{id}/review` and
`/runs/{id}/adjudicate` (the review queue, keyboard first), `/play/{game}`.
API (JSON): `GET /api/runs/{id}/metrics`, `GET /api/runs/{id}/review`, `POST
/api/runs/{id}/decisions`, `POST /api/play/{game}`.

Every request passes `auth.install_guard` first; bad input is a 4xx `{"error": ...}` from the
handlers at the bottom, never a traceback.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from selfimprove.core.store import CorruptRunError
from selfimprove.oversight.audit import AuditError
from selfimprove.oversight.queue import (
    MAX_NOTE_CHARS,
    REASONS,
    REVIEWER_PATTERN,
    ReviewError,
    ReviewQueue,
)
from selfimprove.web import detail, review
from selfimprove.web.auth import error, install_guard
from selfimprove.web.play import GAMES, IllegalMoveError, PlaySettings, answer
from selfimprove.web.runs import BadRunIdError, NotFoundError, list_runs, run_folder

TEMPLATES = Path(__file__).parent / "templates"
REVIEWER_COOKIE = "selfimprove-reviewer"
DEFAULT_REVIEWER = "web"
# the report is our own page, but it shows model text: it runs sandboxed (an opaque origin,
# so its script can neither read the app's cookie nor call the API), with its inline script,
# style and data: images and nothing else
REPORT_POLICY = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:"
)

ReviewerName = Annotated[str, Field(pattern=REVIEWER_PATTERN)]


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: Annotated[str, Field(pattern=review.ITEM_ID)]
    action: Literal["accept", "reject", "edit", "skip"]
    reason: str | None = None  # one of the queue's REASONS: `decide` checks it
    note: Annotated[str, Field(max_length=MAX_NOTE_CHARS)] = ""
    edit: dict[str, str] | None = None
    role: Literal["review", "adjudicate"] = "review"
    reviewer: ReviewerName | None = None


class PlayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    moves: Annotated[list[Annotated[int, Field(ge=0, le=99)]], Field(max_length=64)]


def create_app(
    runs_dir: Path, token: str, *, bound_host: str = "127.0.0.1", play: PlaySettings | None = None
) -> FastAPI:
    """The app serving the runs in `runs_dir` to whoever holds `token`."""
    app = FastAPI(title="selfimprove", docs_url=None, redoc_url=None, openapi_url=None)
    install_guard(app, token, bound_host)
    _handle_errors(app)
    pages = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True)
    )
    pages.policies["json.dumps_kwargs"] = {"sort_keys": False}  # an item's fields keep their order
    settings = play or PlaySettings()

    def render(request: Request, name: str, **context: Any) -> HTMLResponse:
        html = pages.get_template(name).render(nonce=request.state.nonce, **context)
        return HTMLResponse(html)

    @app.get("/", response_class=HTMLResponse)
    def dashboard(request: Request) -> HTMLResponse:
        return render(request, "dashboard.html", runs=list_runs(runs_dir))

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> HTMLResponse:
        folder = run_folder(runs_dir, run_id)
        shown = detail.detail(folder)
        has_report = (folder / "report.html").is_file()
        return render(request, "run.html", run=shown, report=has_report)

    @app.get("/api/runs/{run_id}/metrics")
    def metrics(run_id: str) -> dict[str, Any]:
        return detail.live(run_folder(runs_dir, run_id))

    @app.get("/runs/{run_id}/report")
    def report(run_id: str) -> FileResponse:
        folder = run_folder(runs_dir, run_id)
        page = folder / "report.html"
        if page.is_symlink() or page.resolve().parent != folder.resolve():
            raise NotFoundError(f"run {run_id}'s report.html is not a plain file in its folder")
        if not page.is_file():
            raise NotFoundError(f"run {run_id} has no report yet: `selfimprove report {run_id}`")
        headers = {"Content-Security-Policy": REPORT_POLICY}
        return FileResponse(page, media_type="text/html", headers=headers)

    def queue_page(
        request: Request, run_id: str, reviewer: str | None, mode: review.Mode
    ) -> Response:
        name = _reviewer(request, reviewer)
        with _queue(runs_dir, run_id) as queue:
            state = review.page_state(queue, name, mode)
        data = {"run": run_id, "reviewer": name, "mode": mode, "reasons": REASONS, **state}
        response = render(request, "review.html", data=data, run_id=run_id, mode=mode)
        if reviewer is not None:
            response.set_cookie(REVIEWER_COOKIE, name, httponly=True, samesite="strict")
        return response

    @app.get("/runs/{run_id}/review", response_class=HTMLResponse)
    def review_page(
        request: Request, run_id: str, reviewer: Annotated[str | None, Query()] = None
    ) -> Response:
        return queue_page(request, run_id, reviewer, "review")

    @app.get("/runs/{run_id}/adjudicate", response_class=HTMLResponse)
    def adjudicate_page(
        request: Request, run_id: str, reviewer: Annotated[str | None, Query()] = None
    ) -> Response:
        return queue_page(request, run_id, reviewer, "adjudicate")

    @app.get("/api/runs/{run_id}/review")
    def review_state(
        request: Request,
        run_id: str,
        mode: Literal["review", "adjudicate"] = "review",
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    ) -> dict[str, Any]:
        with _queue(runs_dir, run_id) as queue:
            return review.page_state(queue, _reviewer(request, None), mode, after)

    @app.post("/api/runs/{run_id}/decisions")
    def decide(request: Request, run_id: str, body: DecisionBody) -> dict[str, Any]:
        name = body.reviewer or _reviewer(request, None)
        with _queue(runs_dir, run_id) as queue:
            item = queue.item(body.item)
            if item is None:
                raise NotFoundError(f"no item {body.item} in run {run_id}'s queue")
            outcome = queue.decide(
                body.item, name, body.action, body.reason, body.note, body.edit, body.role
            )
            mode: review.Mode = "adjudicate" if body.role == "adjudicate" else "review"
            decided = {
                "item": body.item,
                "action": body.action,
                "reason": body.reason,
                "outcome": outcome.status,
                "diffs": review.edit_diffs(item.fields, body.edit) if body.edit else [],
            }
            return {"decided": decided, **review.page_state(queue, name, mode, item.seq)}

    @app.get("/play/{game}", response_class=HTMLResponse)
    def play_page(request: Request, game: str) -> HTMLResponse:
        _known_game(game)
        return render(request, "play.html", game=game, games=GAMES)

    @app.post("/api/play/{game}")
    def play_move(game: str, body: Annotated[PlayBody, Body()]) -> dict[str, Any]:
        return answer(_known_game(game), tuple(body.moves), settings)

    return app


def _known_game(game: str) -> str:
    if game not in GAMES:
        raise NotFoundError(f"no game {game[:40]!r} here: {', '.join(GAMES)}")
    return game


def _reviewer(request: Request, given: str | None) -> str:
    name = given or request.cookies.get(REVIEWER_COOKIE) or DEFAULT_REVIEWER
    if not re.fullmatch(REVIEWER_PATTERN, name):
        raise ReviewError("reviewer: use 1-40 letters, digits, . _ @ -")
    return name


@contextmanager
def _queue(runs_dir: Path, run_id: str) -> Iterator[ReviewQueue]:
    folder = run_folder(runs_dir, run_id)
    if not ReviewQueue.exists(folder):
        raise NotFoundError(f"run {run_id} has no review queue (its recipe has no review)")
    queue = ReviewQueue.open(folder, create=False)
    try:
        yield queue
    finally:
        queue.close()


def _handle_errors(app: FastAPI) -> None:
    """Bad input is a 4xx `{"error": "..."}` in one line, whatever the route."""

    def one_line(exc: Exception) -> str:
        text = str(exc).strip().splitlines()
        return text[0] if text else type(exc).__name__

    async def bad(request: Request, exc: Exception) -> JSONResponse:
        return error(400, one_line(exc))

    async def missing(request: Request, exc: Exception) -> JSONResponse:
        return error(404, one_line(exc))

    async def broken(request: Request, exc: Exception) -> JSONResponse:
        return error(409, one_line(exc))

    async def unreadable(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, AuditError):
            return error(409, one_line(exc))
        return error(409, f"the run's database cannot be read: {one_line(exc)}")

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return error(422, "the body is not JSON")
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = str(first.get("msg", "invalid request"))
        return error(422, f"{where}: {message}" if where else message)

    async def http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, str(exc.detail))

    async def internal(request: Request, exc: Exception) -> JSONResponse:
        return error(500, "internal error (the server's log has it)")

    app.add_exception_handler(ReviewError, bad)
    app.add_exception_handler(BadRunIdError, bad)
    app.add_exception_handler(IllegalMoveError, bad)
    app.add_exception_handler(NotFoundError, missing)
    app.add_exception_handler(CorruptRunError, broken)
    app.add_exception_handler(sqlite3.Error, unreadable)
    app.add_exception_handler(AuditError, unreadable)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(Exception, internal)
