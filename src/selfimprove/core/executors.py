"""Where a stage's independent pieces of work run: in this process, in worker processes, or
on a Ray cluster, behind one small interface.

A loop splits its embarrassingly parallel work (a generation's self-play games, the sandbox
runs of its programs) into pieces whose results depend only on the piece itself (a chunk of
games carries its own seed), and hands them to `Executor.map`. The executor decides only
where a piece runs, never what it computes, so a run's results are the same whichever
executor ran it (tests hold metrics bit-equal across `local`, `processes` and `ray`).

A piece whose worker dies is run again elsewhere (`max_retries`); a piece that raises is the
loop's error and is not retried. The CPU time a piece spends in a worker is reported to
`core.cpu`, so a generation's CPU seconds count it.

Core never imports Ray: the `ray` kind lives in the optional extra (`selfimprove.scale.ray`,
`pip install selfimprove[ray]`), found by name when a recipe asks for it, as an entry point
would be.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar, Protocol, TypeVar

from selfimprove.core.config import ConfigError, ExecutorConfig
from selfimprove.core.cpu import add_worker_seconds

T = TypeVar("T")
R = TypeVar("R")

# executors that live in optional extras: kind -> "module:class"
PLUGINS = {"ray": "selfimprove.scale.ray:RayExecutor"}


class WorkerLostError(RuntimeError):
    """A piece's worker died more often than `max_retries` allows."""


class Executor(Protocol):
    """Runs `fn` on every item and returns the results in the items' order. `fn` and the
    items must pickle for every kind but `local`."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]: ...


class Local:
    """Every piece in the loop's process, one after another."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return [fn(item) for item in items]


def timed(fn: Callable[[T], R], item: T) -> tuple[R, float]:
    """In a worker: `fn(item)` and the CPU seconds it took there."""
    started = time.process_time()
    result = fn(item)
    return result, time.process_time() - started


class Processes:
    """Pieces in spawned worker processes on this machine (spawned once per process and kept:
    importing torch costs seconds). A worker that dies (`kill -9`, out of memory) breaks the
    pool; the pieces it had not returned run again on a fresh pool."""

    _pools: ClassVar[dict[int, ProcessPoolExecutor]] = {}  # by number of processes

    def __init__(self, num_workers: int, max_retries: int = 3) -> None:
        self.num_workers = num_workers
        self.max_retries = max_retries

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        results: dict[int, R] = {}
        for _ in range(self.max_retries + 1):
            pool = self.pool()
            pending: dict[int, Future[tuple[R, float]]] = {
                i: pool.submit(timed, fn, item) for i, item in enumerate(items) if i not in results
            }
            broken = False
            for i, future in pending.items():
                try:
                    result, seconds = future.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                add_worker_seconds(seconds)
                results[i] = result
            if not broken:
                return [results[i] for i in range(len(items))]
            self.discard()
        raise WorkerLostError(
            f"a worker process died {self.max_retries + 1} times running the same pieces"
        )

    def pool(self) -> ProcessPoolExecutor:
        if self.num_workers not in self._pools:
            context = multiprocessing.get_context("spawn")  # no forked torch state
            self._pools[self.num_workers] = ProcessPoolExecutor(
                self.num_workers,
                mp_context=context,
                initializer=exit_with_parent,
                initargs=(os.getpid(),),
            )
        return self._pools[self.num_workers]

    def discard(self) -> None:
        pool = self._pools.pop(self.num_workers, None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def exit_with_parent(parent: int) -> None:
    """In a worker: leave as soon as the loop's process is gone (`kill -9` included), instead
    of waiting forever on a queue whose other end nobody holds any more."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def executor_of(config: ExecutorConfig) -> Executor:
    """The executor a recipe's `executor:` section names."""
    if config.kind == "local":
        return Local()
    if config.kind == "processes":
        return Processes(config.num_workers, config.max_retries)
    module, name = PLUGINS[config.kind].split(":")
    try:
        plugin: Any = getattr(importlib.import_module(module), name)
    except ImportError as error:
        raise ConfigError(
            f"executor: {config.kind} needs `pip install selfimprove[{config.kind}]`"
        ) from error
    executor: Executor = plugin(config)
    return executor
