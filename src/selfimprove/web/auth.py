"""Who may use the web app, and what every response carries (`docs/web.md` says what each
guarantees).

One middleware, in this order, before any route runs:

1. **Host**: when bound to a loopback address, the `Host` header must name this machine
   (`127.0.0.1`, `localhost`, `[::1]`): a page that rebinds its DNS name to 127.0.0.1 cannot
   talk to the app by that name.
2. **Token**: a GET with `?token=` equal to the token sets an HttpOnly, SameSite=Strict cookie
   and redirects to the same URL without it (as Jupyter does); otherwise the cookie or the
   `X-Selfimprove-Token` header must hold the token (compared in constant time) or the answer
   is 403.
3. **Writes**: anything but GET/HEAD must be JSON (`Content-Type: application/json`) of at
   most `MAX_BODY_BYTES` with its length stated, and an `Origin` header, when present, must be
   this app's own origin.
4. **Headers** on every response: a Content-Security-Policy that allows nothing from outside
   and inline script and style only with this response's nonce; `nosniff`; no referrer.
"""

from __future__ import annotations

import secrets
import traceback
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

TOKEN_HEADER = "X-Selfimprove-Token"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
MAX_BODY_BYTES = 1_000_000  # an edit is at most a few fields of 100,000 characters


def cookie_name(port: int | None) -> str:
    """One cookie per port: cookies are not told apart by port, two servers' would clash."""
    return f"selfimprove-token-{port or 0}"


def policy(nonce: str) -> str:
    return (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _host_name(header: str) -> str:
    if header.startswith("["):  # [::1]:8765
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.headers.get('host')}"


def install_guard(app: FastAPI, token: str, bound_host: str) -> None:
    """Check every request as the module's doc says; `bound_host` is the address served on
    (any host name is accepted when it is not a loopback address: the token still holds)."""
    check_host = bound_host in LOOPBACK_NAMES

    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        nonce = secrets.token_urlsafe(16)
        request.state.nonce = nonce
        try:
            response = _refusal(request, token, check_host) or await call_next(request)
        except Exception:  # a bug of ours: a short message, never a traceback, headers kept
            traceback.print_exc()  # on the server's console, for whoever runs it
            response = error(500, "the server failed on this request (see its console)")
        response.headers.setdefault("Content-Security-Policy", policy(nonce))
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    app.middleware("http")(guard)


def _refusal(request: Request, token: str, check_host: bool) -> Response | None:
    """The answer that stops this request, or None to let it through."""
    if check_host and _host_name(request.headers.get("host", "")) not in LOOPBACK_NAMES:
        return error(403, "this app answers only to 127.0.0.1 / localhost")
    writing = request.method not in ("GET", "HEAD")
    offered = request.query_params.get("token")
    if offered is not None and not writing:
        if not secrets.compare_digest(offered.encode(), token.encode()):
            return error(403, "wrong token: use the URL `selfimprove serve` printed")
        return _remember(request, token)
    held = request.headers.get(TOKEN_HEADER) or request.cookies.get(cookie_name(request.url.port))
    if held is None or not secrets.compare_digest(held.encode(), token.encode()):
        if writing:
            return error(403, f"a write needs the token (the cookie or a {TOKEN_HEADER} header)")
        return error(403, "this page needs the token: open the URL `selfimprove serve` printed")
    if writing:
        if not _same_origin(request):
            return error(403, "a write from another site's page is refused")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(415, "a write is a POST with a JSON body (Content-Type: application/json)")
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            return error(413, f"a write's body is at most {MAX_BODY_BYTES} bytes, with its length")
    return None


def _remember(request: Request, token: str) -> Response:
    """Set the token cookie and redirect to the URL without the token."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    clean = request.url.path + (f"?{urlencode(kept)}" if kept else "")
    response = RedirectResponse(clean, status_code=303)
    response.set_cookie(
        cookie_name(request.url.port), token, httponly=True, samesite="strict", path="/"
    )
    return response
