"""Benchmark (user's-surface issue): `selfimprove --help` and `selfimprove run --help` against
a bare interpreter start, and against the full import a command pays (the experiments, torch
behind them) that a command running a model pays, in the same run. The bar: each help under 1 s. Run serially: `make bench`."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 10
ROOT = Path(__file__).resolve().parent.parent  # the repository: run from there


def median_s(argv: list[str]) -> float:
    subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)  # warm-up
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    load = os.getloadavg()[0]
    print(f"# CLI start-up, {platform.node()}, load {load:.2f}, median of {RUNS}")
    python = [sys.executable]
    bare = median_s([*python, "-c", "pass"])
    commands = {
        "selfimprove --help": [*python, "-m", "selfimprove", "--help"],
        "selfimprove run --help": [*python, "-m", "selfimprove", "run", "--help"],
        "selfimprove runs (no runs)": [
            *python,
            "-m",
            "selfimprove",
            "--runs-dir",
            "/nonexistent",
            "runs",
        ],
        "import the experiments (what run, resume, report, tour pay first)": [
            *python,
            "-c",
            "import selfimprove.experiments",
        ],
    }
    print(f"bare interpreter: {bare * 1000:.0f} ms")
    slow = []
    for name, argv in commands.items():
        seconds = median_s(argv)
        print(f"{name}: {seconds * 1000:.0f} ms ({seconds / bare:.1f}x a bare start)")
        if "--help" in name and seconds >= 1.0:
            slow.append(name)
    print("bar (< 1 s per help): " + ("missed by " + ", ".join(slow) if slow else "met"))


if __name__ == "__main__":
    main()
