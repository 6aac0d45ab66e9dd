"""Benchmark (web app issue): how fast `selfimprove serve` renders its pages over real HTTP on
127.0.0.1, with 100 runs in the folder and one review queue of 10,000 items. The bar: the
dashboard (`/`) and the review page (`/runs/{id}/review`) under 200 ms each (median of 20
requests after a warm-up). Run serially: `make bench`."""

from __future__ import annotations

import http.client
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfimprove.core.records import Decision, GenerationRecord
from selfimprove.core.store import RunStore
from selfimprove.oversight.queue import Item, ReviewQueue
from selfimprove.web.server import background_server

NUM_RUNS = 100
GENERATIONS = 20
ARMS = ("replace", "accumulate")
NUM_ITEMS = 10_000
REQUESTS = 20
BAR_MS = 200.0


def create(runs_dir: Path, kind: str, config: dict[str, Any]) -> RunStore:
    """A new run; ids are unique per second by 4 random hex digits, so 100 in one second may
    meet: try again."""
    while True:
        try:
            return RunStore.create(runs_dir, kind, config, 0, "bench")
        except FileExistsError:
            continue


def make_runs(runs_dir: Path) -> None:
    """100 runs of two arms, 20 generations of 8 metrics each (what a small study holds)."""
    for index in range(NUM_RUNS):
        store = create(runs_dir, "collapse.gaussian", {"generations": GENERATIONS})
        store.register_arms(list(ARMS))
        for arm in ARMS:
            for generation in range(GENERATIONS + 1):
                metrics = {f"collapse/metric_{k}": index + generation / (k + 1) for k in range(8)}
                decision = Decision("accept", "accept_all")
                store.commit_generation(GenerationRecord(arm, generation, metrics, decision))
        store.set_status("finished")
        store.close()


def make_queue(runs_dir: Path, reviewed: int) -> str:
    """One run whose queue holds 10,000 items needing two reviewers, the first `reviewed` of
    them decided by `web` already (they stay pending: the page must skip them)."""
    store = create(runs_dir, "reasoning.star", {"generations": 2})
    store.register_arms(["star"])
    store.set_status("waiting")
    store.close()
    items = [
        Item.new(
            "rationale",
            "star",
            1,
            {"prompt": f"{i}+{i + 7}=", "completion": f"{i}+{i + 7}: ... Answer {2 * i + 7}"},
            editable=("completion",),
            provenance={"source": "synthetic", "model": "generation-0"},
            signals={"verifier/passed": True},
            needed=2,
        )
        for i in range(NUM_ITEMS)
    ]
    with ReviewQueue.open(store.run_dir) as queue:
        queue.add(items)
        # straight into the table: 5,000 `decide` calls would time the audit log's fsyncs
        queue.db.executemany(
            "INSERT INTO decisions (item, reviewer, action, reason, note, edit, role, time)"
            " VALUES (?, 'web', 'accept', NULL, '', NULL, 'review', 0)",
            [(item.id,) for item in items[:reviewed]],
        )
    return store.run_dir.name


def median_ms(get: Callable[[], int]) -> float:
    assert get() == 200  # warm-up
    times = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        status = get()
        times.append((time.perf_counter() - start) * 1000)
        assert status == 200, status
    return statistics.median(times)


def main() -> None:
    load = os.getloadavg()[0]
    print(f"# web pages, {platform.node()}, {os.cpu_count()} cores, load {load:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        runs_dir = Path(folder)
        start = time.perf_counter()
        make_runs(runs_dir)
        fresh = make_queue(runs_dir, reviewed=0)
        half = make_queue(runs_dir, reviewed=NUM_ITEMS // 2)
        collapse = next(runs_dir.glob("collapse-gaussian-*")).name
        print(f"built {NUM_RUNS + 2} runs in {time.perf_counter() - start:.1f} s")
        with background_server(runs_dir) as (base, token):
            port = int(base.rsplit(":", 1)[1])
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

            def getter(path: str) -> Callable[[], int]:
                def get() -> int:
                    connection.request("GET", path, headers={"X-Selfimprove-Token": token})
                    response = connection.getresponse()
                    response.read()
                    return response.status

                return get

            pages = {
                f"/ ({NUM_RUNS + 2} runs)": "/",
                f"/runs/ID/review ({NUM_ITEMS:,} pending)": f"/runs/{fresh}/review",
                f"/runs/ID/review ({NUM_ITEMS:,}, the first half decided)": f"/runs/{half}/review",
                "/runs/ID (a run of 2 arms x 21 generations)": f"/runs/{collapse}",
                "/api/runs/ID/metrics (polled every second)": f"/api/runs/{fresh}/metrics",
            }
            missed = []
            for name, path in pages.items():
                ms = median_ms(getter(path))
                print(f"{name}: {ms:.1f} ms")
                if ("review" in path or path == "/") and ms >= BAR_MS:
                    missed.append(name)
            connection.close()
    print(
        f"bar (< {BAR_MS:.0f} ms, median of {REQUESTS}): "
        + ("missed by " + ", ".join(missed) if missed else "met")
    )


if __name__ == "__main__":
    main()
