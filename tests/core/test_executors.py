"""Executors: where pieces run never changes what they compute; a dead worker's pieces run
again; a worker's CPU time is counted; workers do not outlive the loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from selfimprove.core.config import ConfigError, ExecutorConfig
from selfimprove.core.cpu import cpu_seconds
from selfimprove.core.executors import Local, Processes, WorkerLostError, executor_of
from selfimprove.experiments import parse_config
from tests.core.pieces import burn, fail, square_and_pid


def test_local_and_processes_return_the_same_results_in_item_order() -> None:
    items = list(range(7))
    local = Local().map(square_and_pid, items)
    spread = executor_of(ExecutorConfig(kind="processes", num_workers=2)).map(square_and_pid, items)
    assert [r for r, _ in local] == [r for r, _ in spread] == [x * x for x in items]
    assert {pid for _, pid in local} == {os.getpid()}
    assert len({pid for _, pid in spread}) == 2 and os.getpid() not in {p for _, p in spread}


def test_pieces_of_a_killed_worker_run_again_on_a_fresh_pool() -> None:
    processes = Processes(2, max_retries=2)
    victims: list[int] = []

    def kill_one() -> None:
        time.sleep(0.1)
        pid = next(iter(processes.pool()._processes))  # a worker busy with a piece
        victims.append(pid)
        os.kill(pid, signal.SIGKILL)

    processes.map(square_and_pid, [0, 1])  # the workers are up
    killer = threading.Thread(target=kill_one)
    killer.start()
    results = processes.map(square_and_pid, list(range(6)))
    killer.join()
    assert [r for r, _ in results] == [x * x for x in range(6)]
    assert victims and victims[0] not in {pid for _, pid in results}


def test_a_piece_that_raises_is_the_loops_error() -> None:
    with pytest.raises(ValueError, match="piece 1 is wrong"):
        Processes(2).map(fail, [1])


def test_a_worker_that_dies_every_time_is_a_clear_error() -> None:
    with pytest.raises(WorkerLostError, match="died 2 times"):
        Processes(1, max_retries=1).map(os._exit, [3])


def test_a_workers_cpu_time_counts_in_this_process_cpu_seconds() -> None:
    """The generation's `cpu_seconds` includes a worker's time, which `time.process_time()`
    alone never sees (the worker outlives the generation)."""
    processes = Processes(2)
    processes.map(burn, [0.0, 0.0])  # the workers are up, and warm
    started, own = cpu_seconds(), time.process_time()
    assert processes.map(burn, [0.3, 0.3]) == [0.3, 0.3]
    assert time.process_time() - own < 0.25  # this process only waited
    assert cpu_seconds() - started >= 0.6  # and both workers' 0.3 s are counted


def test_a_worker_exits_when_the_loop_process_is_killed() -> None:
    """`kill -9` of the loop leaves no worker behind waiting forever for pieces."""
    script = (
        "import os, time\n"
        "from selfimprove.core.executors import Processes\n"
        "print(Processes(1).pool().submit(os.getpid).result(), flush=True)\n"
        "time.sleep(60)\n"
    )
    loop = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert loop.stdout is not None
    worker = int(loop.stdout.readline())
    assert _running(worker)
    loop.kill()
    loop.wait()
    loop.stdout.close()
    deadline = time.monotonic() + 10
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(worker)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a container's pid 1 may never reap an orphan)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_loop_that_does_not_split_its_work_refuses_another_executor() -> None:
    data = {"kind": "collapse.gaussian", "executor": {"kind": "processes"}}
    with pytest.raises(ConfigError, match="runs in one process"):
        parse_config(data, "recipe.yaml")
