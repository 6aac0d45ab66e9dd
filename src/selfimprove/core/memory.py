"""A run's memory estimate, checked against the machine before anything is allocated.

Sizes are user input: `num_seeds: 10**9` or `games_per_generation: 10**9` would otherwise
run until the kernel kills the process (or for minutes before a `MemoryError`). Each loop's
config estimates what its sizes add (`LoopConfig.memory_bytes`); a run whose estimate
exceeds what the machine has available now is refused with both numbers in one line.
Compared with measured peaks in `benchmarks/RESULTS.md` (2026-12-06, hardening), the
estimates plus what the process already holds (`peak_bytes`) err high, by 7-90%.
"""

from __future__ import annotations

import os
from pathlib import Path

from selfimprove.core.config import ConfigError, LoopConfig

SHARE = 0.9  # of the memory available now that one run may plan to use


def available_bytes() -> int:
    """Memory available to a new process now (`MemAvailable`), or the physical total."""
    available = _proc_kib("/proc/meminfo", "MemAvailable:")
    if available is not None:
        return available
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def resident_bytes() -> int:
    """What this process holds already (the interpreter, torch, numpy: about 0.3 GiB)."""
    return _proc_kib("/proc/self/status", "VmRSS:") or 0


def _proc_kib(path: str, key: str) -> int | None:
    """A `key: N kB` line of a /proc file, in bytes; None where there is none."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_bytes(config: LoopConfig) -> int:
    """The run's estimated peak: the loop's own estimate on top of what is loaded now."""
    return config.memory_bytes() + resident_bytes()


def check_memory(config: LoopConfig, source: str = "config") -> None:
    """Refuse a config whose estimated peak memory does not fit this machine."""
    needed, available = config.memory_bytes(), available_bytes()
    if needed > SHARE * available:
        raise ConfigError(
            f"{source}: these sizes need about {_gib(needed)} of memory; this machine has "
            f"{_gib(available)} available"
        )


def _gib(count: int) -> str:
    if count >= 2**30 * 10**6:  # past float division (an estimate of 10**300 bytes overflows)
        return f"{count // 2**30:.3g} GiB" if count < 10**300 else "more than 10**290 GiB"
    return f"{count / 2**30:,.1f} GiB"
