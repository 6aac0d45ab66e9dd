"""Running the web app: `serve` for `selfimprove serve` (until Ctrl+C), and
`background_server` for tests and benchmarks (a thread, a bounded start, a clean stop).

Both bind the socket themselves before uvicorn starts, so port 0 gets a free port whose number
is known (and printed) before the first request.
"""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from selfimprove.core.config import ConfigError
from selfimprove.web.play import PlaySettings


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # inherited by every accepted connection: without it a kept-alive connection waits ~40 ms
    # per response (Nagle's algorithm meeting the client's delayed ACK), measured
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def listen(host: str, port: int) -> socket.socket:
    """`bind`, or a `ConfigError` (one line, exit 2) saying why it cannot listen there."""
    try:
        return bind(host, port)
    except (OSError, OverflowError) as problem:
        reason = getattr(problem, "strerror", None) or problem
        raise ConfigError(f"cannot listen on {host}:{port}: {reason}") from None


def shown_host(host: str) -> str:
    """The host part of an address to open: a wildcard bind (0.0.0.0, ::) is opened on this
    machine, an IPv6 address goes in brackets."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"[{shown}]" if ":" in shown else shown


def url(host: str, port: int, token: str) -> str:
    """The address to open the web app at."""
    return f"http://{shown_host(host)}:{port}/?token={token}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def uvicorn_server(app: Any) -> Any:  # a uvicorn.Server; Any keeps uvicorn out of import time
    """uvicorn quiet (no access log: the web app's first request's URL holds the token), no
    lifespan, no websockets, a 2-second graceful stop."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


def run_until_interrupted(server: Any, sock: socket.socket) -> None:
    """Serve on `sock` until Ctrl+C (uvicorn stops, then raises the Ctrl+C it caught), then
    close it."""
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


@contextmanager
def in_a_thread(server: Any, name: str, start_seconds: float) -> Iterator[int]:
    """`server` on 127.0.0.1 (a free port) in a thread; yields the port once it listens, or
    raises after `start_seconds` (naming `name`); stops it on exit."""
    sock = bind("127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_seconds
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the {name} stopped while starting")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {name} did not start in {start_seconds} s")
            time.sleep(0.02)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _server(runs_dir: Path, token: str, host: str, play: PlaySettings) -> Any:  # a uvicorn.Server
    from selfimprove.web.app import create_app

    return uvicorn_server(create_app(runs_dir, token, bound_host=host, play=play))


def serve(args: argparse.Namespace, out: Console) -> int:
    """`selfimprove serve`: serve `args.runs_dir` on args.host:args.port until Ctrl+C. A
    missing extra or an address it cannot listen on is a `ConfigError` (one line, exit 2)."""
    try:
        import fastapi  # noqa: F401
        import jinja2  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as missing:
        raise ConfigError(
            f"serve needs the web extra: pip install 'selfimprove[web]' ({missing})"
        ) from None
    token = args.token or secrets.token_urlsafe(24)
    sock = listen(args.host, args.port)
    port = sock.getsockname()[1]
    play = PlaySettings(simulations=getattr(args, "play_simulations", PlaySettings.simulations))
    server = _server(Path(args.runs_dir), token, args.host, play)
    if not is_loopback(args.host):
        out.print(f"warning: {args.host} lets other machines connect; the token still guards it")
    out.print(f"serving {args.runs_dir} on port {port}; open (Ctrl+C stops):")
    out.print(url(args.host, port, token), soft_wrap=True, highlight=False)
    run_until_interrupted(server, sock)
    out.print("stopped")
    return 0


@contextmanager
def background_server(
    runs_dir: Path,
    token: str | None = None,
    *,
    play: PlaySettings | None = None,
    start_seconds: float = 15.0,
) -> Iterator[tuple[str, str]]:
    """The app on 127.0.0.1 (a free port) in a thread; yields (base URL, token) once it
    answers, or raises after `start_seconds`; stops it on exit."""
    token = token or secrets.token_urlsafe(24)
    server = _server(runs_dir, token, "127.0.0.1", play or PlaySettings())
    with in_a_thread(server, "web server", start_seconds) as port:
        yield f"http://127.0.0.1:{port}", token
