"""The `ray` executor against a real Ray cluster, started on 127.0.0.1 by `ray start --head`
in a subprocess and stopped at the end: a run's metrics are bit-equal on the local, processes
and ray executors, and a Ray worker killed while it plays a chunk costs nothing but time."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", reason="the ray extra is not installed")

from selfimprove.core.store import RunStore
from selfimprove.experiments import parse_config, start_run
from tests.tiny import tiny

RAY = str(Path(sys.executable).with_name("ray"))
ENV = os.environ | {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}

SELF_PLAY: dict[str, Any] = {
    "kind": "games.alphazero",
    "generations": 2,
    "self_play": {"games_per_generation": 24, "num_simulations": 12, "chunks": 3},
    "train": {"steps": 10, "batch_size": 32},
    "evaluation": {"num_simulations": 8, "random_games": 8},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A one-node Ray cluster of 2 CPUs on loopback, no dashboard, no usage report, run by a
    blocking `ray start` whose end stops exactly the processes it started (`ray stop` would
    stop every Ray cluster of this machine)."""
    port = _free_port()
    start = [RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=2"]
    start += ["--node-ip-address=127.0.0.1", "--include-dashboard=false"]
    start += ["--disable-usage-stats"]
    head = subprocess.Popen(
        start, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    address = f"127.0.0.1:{port}"
    try:
        _wait_until_up(address, head, timeout=120)
        yield address
    finally:
        import ray

        ray.shutdown()
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()


def _wait_until_up(address: str, head: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status = [RAY, "status", f"--address={address}"]
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"ray start exited with {head.returncode}")
        if subprocess.run(status, env=ENV, capture_output=True, timeout=60).returncode == 0:
            return
        time.sleep(0.5)
    raise TimeoutError(f"no Ray cluster at {address} after {timeout} s")


def _metrics(data: dict[str, Any], runs: Path) -> dict[str, Any]:
    run = start_run(parse_config(data, "test"), runs)
    store = RunStore.open(run.run_dir)
    return {arm: store.metrics(arm) for arm, _ in store.arms()}


def _on(data: dict[str, Any], kind: str, address: str = "local") -> dict[str, Any]:
    return data | {"executor": {"kind": kind, "num_workers": 2, "address": address}}


@pytest.fixture(scope="module")
def local_self_play(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _metrics(_on(SELF_PLAY, "local"), tmp_path_factory.mktemp("local"))


def test_self_play_is_bit_equal_on_local_processes_and_ray(
    cluster: str, local_self_play: dict[str, Any], tmp_path: Path
) -> None:
    local = local_self_play
    assert _metrics(_on(SELF_PLAY, "processes"), tmp_path / "processes") == local
    assert _metrics(_on(SELF_PLAY, "ray", cluster), tmp_path / "ray") == local


def test_synthesis_sampling_and_sandbox_runs_are_bit_equal_on_local_and_ray(
    cluster: str, tmp_path: Path
) -> None:
    data = tiny("reasoning.synthesis", 2, generation_shards=2, sample_batch=4)
    local = _metrics(_on(data, "local"), tmp_path / "local")
    assert _metrics(_on(data, "ray", cluster), tmp_path / "ray") == local


def test_star_rationales_in_shards_on_ray_equal_one_unsharded_pass(
    cluster: str, tmp_path: Path
) -> None:
    """Greedy rationales do not depend on how the pool is split, nor on where it runs."""
    one = _metrics(tiny("reasoning.star", 1, sample_batch=8), tmp_path / "one")
    data = tiny("reasoning.star", 1, sample_batch=8, generation_shards=3)
    assert _metrics(_on(data, "ray", cluster), tmp_path / "ray") == one


def _task_workers() -> list[int]:
    """Ray worker processes running one of our pieces right now (their title names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if command.startswith(b"ray::timed"):
                pids.append(int(entry.name))
    return pids


def test_a_ray_worker_killed_mid_run_is_retried_and_changes_nothing(
    cluster: str, local_self_play: dict[str, Any], tmp_path: Path
) -> None:
    killed: list[int] = []
    running = True

    def kill_a_busy_worker() -> None:
        while running and not killed:
            for pid in _task_workers():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.01)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    try:
        survived = _metrics(_on(SELF_PLAY, "ray", cluster), tmp_path / "ray")
    finally:
        running = False
        killer.join(10)
    assert killed, "no Ray worker was seen playing a chunk"
    assert survived == local_self_play
    run_dirs = list((tmp_path / "ray").iterdir())
    assert len(run_dirs) == 1  # one run, every generation committed
    store = RunStore.open(run_dirs[0])
    assert [len(store.metrics(arm)) for arm, _ in store.arms()] == [3]
