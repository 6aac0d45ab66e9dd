"""Benchmark (hardening issue): what a sandboxed verdict costs against starting the same
interpreter bare, in the same run. A verdict is a trivial program judged on one case with
every layer in force (bubblewrap, per-run pids and memory cgroups, rlimits, audit hook,
bounded output); the baseline is `python -I -S -c pass` with no isolation at all. Run
serially: `make bench`."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable

from selfimprove.reasoning.isolation import interpreter
from selfimprove.reasoning.sandbox import Limits, Sandbox

RUNS = 40
BODY = "def f(x):\n    return sorted(x)[::-1]\n"


def median_ms(task: Callable[[], None]) -> float:
    task()  # warm-up
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        task()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    print(
        f"# sandboxed verdict vs bare interpreter, {platform.node()}, load {os.getloadavg()[0]:.2f}"
    )
    sandbox = Sandbox(Limits(cpu_seconds=1, wall_seconds=10, memory_mb=256))

    def verdict() -> None:
        judged = sandbox.run(BODY, "f", [[[3, 1, 2]]], [[3, 2, 1]])
        assert judged.passed, judged.reason

    def bare() -> None:
        subprocess.run([interpreter(), "-I", "-S", "-c", "pass"], check=True)

    boxed, plain = median_ms(verdict), median_ms(bare)
    print(f"isolation: {sandbox.isolation}")
    print(f"sandboxed verdict: {boxed:.1f} ms (median of {RUNS})")
    print(f"bare interpreter:  {plain:.1f} ms (median of {RUNS})")
    print(f"ratio: {boxed / plain:.1f}x")


if __name__ == "__main__":
    main()
