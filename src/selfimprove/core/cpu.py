"""CPU time spent for this process's work: its own, plus what its worker processes report.

`time.process_time()` counts this process only, and the operating system counts a child's
time only once the child has exited, while self-play workers live for the whole run. So a
worker measures the CPU time of each job it runs and the parent adds it here when it takes
the job's result; the engine reads `cpu_seconds()` around each generation.
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_reported = 0.0


def cpu_seconds() -> float:
    """This process's CPU time plus all CPU time its workers reported (`add_worker_seconds`)."""
    return time.process_time() + _reported


def add_worker_seconds(seconds: float) -> None:
    global _reported
    with _lock:
        _reported += seconds
