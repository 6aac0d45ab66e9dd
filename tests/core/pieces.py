"""Pieces of work for the executor tests, in a module that imports nothing heavy, so a
spawned worker that unpickles them starts in a fraction of a second."""

from __future__ import annotations

import os
import time


def square_and_pid(x: int) -> tuple[int, int]:
    time.sleep(0.25)
    return x * x, os.getpid()


def burn(seconds: float) -> float:
    started = time.process_time()
    while time.process_time() - started < seconds:
        pass
    return seconds


def fail(x: int) -> int:
    raise ValueError(f"piece {x} is wrong")
