"""The `ray` executor (extra `ray`): a loop's pieces as Ray tasks on a cluster.

`address: local` starts a private single-machine cluster inside this process (its workers
are this machine's cores); `auto` joins the cluster that `ray start --head` runs on this
machine; `host:port` (a head's GCS address) or `ray://host:port` (Ray Client) joins a remote
one. Ray's usage report and dashboard stay off, so nothing leaves the cluster.

Each piece is one task (`num_cpus=1`, so at most one per core). A task whose worker process
dies is resubmitted by Ray (`max_retries`, system failures only); a piece that raises is the
loop's error and is not retried. The function and its item travel to the worker by Ray's
object store (pickled there by Ray itself); results come back the same way. What a piece
computes never depends on where it ran, so results are the same as `local`'s.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from selfimprove.core.config import ConfigError, ExecutorConfig
from selfimprove.core.cpu import add_worker_seconds
from selfimprove.core.executors import WorkerLostError, timed

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

try:
    import ray
    from ray.exceptions import RayError, WorkerCrashedError
except ImportError as error:  # pragma: no cover - the extra is missing
    raise ConfigError("executor: ray needs `pip install selfimprove[ray]`") from error

T = TypeVar("T")
R = TypeVar("R")


def connect(config: ExecutorConfig) -> None:
    """Join (or start) the cluster once per process; later calls reuse the connection."""
    if ray.is_initialized():
        return
    options: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": "WARNING",
        "log_to_driver": False,
        "configure_logging": True,
    }
    address = _auto_address() if config.address == "auto" else config.address
    if address != "local":
        _check_reachable(address)
    try:
        if config.address == "local":
            ray.init(address="local", num_cpus=config.num_workers, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"executor: no Ray cluster at {config.address!r}: {reason}") from None


def _auto_address() -> str:
    """What `auto` means to Ray: `RAY_ADDRESS`, else the cluster `ray start` recorded on this
    machine (the record outlives a stopped cluster, hence the reachability check after)."""
    recorded = Path("/tmp/ray/ray_current_cluster")
    address = os.environ.get("RAY_ADDRESS") or (
        recorded.read_text().strip() if recorded.is_file() else ""
    )
    if not address:
        raise ConfigError("executor: address auto, but no `ray start` cluster runs on this machine")
    return address


def _check_reachable(address: str) -> None:
    """Ray retries an unreachable head for minutes; a closed port is a one-line error now."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"executor: address {address!r} is not host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise ConfigError(f"executor: no Ray cluster at {address!r}: {error}") from None


class RayExecutor:
    """Pieces as Ray tasks, at most `num_workers` in flight."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        connect(config)
        self.task: Any = ray.remote(num_cpus=1, max_retries=config.max_retries)(timed)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        shared = ray.put(fn)  # the model inside `fn` crosses once, not once per piece
        refs = [self.task.remote(shared, item) for item in items]
        try:
            done: list[tuple[R, float]] = ray.get(refs)
        except WorkerCrashedError as error:
            raise WorkerLostError(
                f"a Ray worker died {self.config.max_retries + 1} times on the same piece"
            ) from error
        except RayError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None  # the piece's own error, as `local` would raise it
            raise
        for _, seconds in done:
            add_worker_seconds(seconds)
        return [result for result, _ in done]
