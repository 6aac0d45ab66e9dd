"""`selfimprove gc`: free what no command needs, in the runs nobody runs.

For each run folder of the runs directory, gc takes the run's lock (`RunStore.exclusive`) for
as long as it works, so a run cannot start meanwhile and a running run is skipped. It removes
what interrupted writes and removals left (`RunStore.leftovers`) and every snapshot folder
but the newest `keep_last` per arm that `resume`, `play` and `export` read
(`RunStore.unneeded_snapshots`). The database (metrics, decisions, events, provenance,
exhibits) is never touched, so reports are unchanged; only older snapshots are gone, which
`newest_state(at=...)` of an earlier generation would have read. A broken run is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selfimprove.core.config import ConfigError
from selfimprove.core.store import CorruptRunError, RunBusyError, RunStore


@dataclass(frozen=True)
class Collected:
    """What gc freed (or in a dry run would free) in one run, or why it left the run alone."""

    run: str
    num_folders: int = 0
    num_bytes: int = 0
    skipped: str = ""

    def describe(self, dry_run: bool) -> str:
        if self.skipped:
            return f"{self.run}: skipped: {self.skipped}"
        freed = "would free" if dry_run else "freed"
        return f"{self.run}: {freed} {self.num_bytes} bytes in {self.num_folders} folders"


def collect_garbage(runs_dir: Path, keep_last: int = 1, dry_run: bool = False) -> list[Collected]:
    """gc every folder of `runs_dir` that holds a `run.sqlite`, in name order."""
    if keep_last < 1:
        raise ConfigError(
            f"gc: --keep-last {keep_last}: keep at least 1 snapshot per arm "
            "(resume, play and export read the newest)"
        )
    databases = sorted(path for path in runs_dir.glob("*/run.sqlite") if path.is_file())
    return [_collect(path.parent, keep_last, dry_run) for path in databases]


def _collect(run_dir: Path, keep_last: int, dry_run: bool) -> Collected:
    try:
        store = RunStore(run_dir)
        store.check_pages()  # which snapshots count is read from the database
    except CorruptRunError as error:
        return Collected(run_dir.name, skipped=f"broken: {error.reason}")
    try:
        with store.exclusive():
            garbage = store.leftovers() + store.unneeded_snapshots(keep_last)
            num_bytes = sum(_size(folder) for folder in garbage)
            if not dry_run:
                store.discard(garbage)
    except RunBusyError:
        return Collected(run_dir.name, skipped="it is running")
    finally:
        store.close()
    return Collected(run_dir.name, len(garbage), num_bytes)


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
