"""Reading runs for the web app: fast, read-only, and never trusting a run id.

The dashboard lists every run on each visit and the run page polls its metrics every second,
so neither opens a `RunStore` (which reads every page of the database to check it): each
`run.sqlite` is opened read-only (`mode=ro`) and asked a few small, indexed queries. A folder
whose database cannot answer is listed as broken, with the reason, never an error page.

A run id from a request is checked against `RUN_NAME` and resolved inside the runs folder
(no `..`, no symlinked folder), so no request reads outside it.
"""

from __future__ import annotations

import fcntl
import math
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfimprove.core.store import RUN_ID

RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,119}")
"""What a run id in a request may look like: no slash, no leading dot."""

_READ_TIMEOUT_SECONDS = 2.0


class BadRunIdError(ValueError):
    """A run id that cannot name a run folder (a 400)."""


class NotFoundError(LookupError):
    """No run, review queue, item or game by that name (a 404)."""


def run_folder(runs_dir: Path, run_id: str) -> Path:
    """The folder of run `run_id`, which must be a run folder directly inside `runs_dir`."""
    if not RUN_NAME.fullmatch(run_id) or ".." in run_id:
        raise BadRunIdError(f"not a run id: {run_id[:80]!r}")
    folder = runs_dir / run_id
    if folder.is_symlink() or folder.resolve().parent != runs_dir.resolve():
        raise BadRunIdError(f"not a run id: {run_id[:80]!r}")
    if not (folder / "run.sqlite").is_file():
        raise NotFoundError(f"no run {run_id!r}")
    return folder


@contextmanager
def read_only(database: Path) -> Iterator[sqlite3.Connection]:
    uri = f"{database.resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=_READ_TIMEOUT_SECONDS)) as db:
        yield db


def is_running(run_dir: Path) -> bool:
    """Whether a process holds the run's lock (`RunStore.is_running`, without opening it)."""
    try:
        handle = (run_dir / ".lock").open("rb")
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


def current_status(run_dir: Path, stored: str) -> str:
    """A stored `running` that nobody runs is `stopped` (a crash or a kill left it)."""
    return "stopped" if stored == "running" and not is_running(run_dir) else stored


@dataclass(frozen=True)
class RunRow:
    """One dashboard row. `generations_done` counts committed generations after generation 0
    over every arm; `generations_planned` is the config's `generations` times the arms."""

    id: str
    kind: str
    status: str
    created: str
    arms: tuple[str, ...]
    generations_done: int
    generations_planned: int | None
    pending_review: int | None

    @property
    def broken(self) -> bool:
        return self.status.startswith("broken")


_ROW_QUERY = """
SELECT r.kind, r.status, r.created, json_extract(r.config, '$.generations'),
    (SELECT group_concat(name, char(31)) FROM (SELECT name FROM arms ORDER BY position)),
    (SELECT COUNT(*) FROM generations WHERE generation > 0),
    (SELECT COUNT(*) FROM run)
FROM run r LIMIT 1"""


def list_runs(runs_dir: Path) -> list[RunRow]:
    """Every run folder of `runs_dir`, newest first; broken ones included, marked."""
    if not runs_dir.is_dir():
        return []
    rows = []
    for folder in runs_dir.iterdir():
        if not folder.is_dir() or folder.is_symlink():
            continue
        if not RUN_NAME.fullmatch(folder.name):
            if (folder / "run.sqlite").is_file():  # renamed by hand: listed, never opened
                rows.append(_broken(folder, "a folder name the app does not serve"))
        elif (folder / "run.sqlite").is_file():
            rows.append(_row(folder))
        elif RUN_ID.fullmatch(folder.name):
            rows.append(_broken(folder, "no run.sqlite (its start stopped before)"))
    return sorted(rows, key=lambda row: (row.created, row.id), reverse=True)


def _row(folder: Path) -> RunRow:
    try:
        with read_only(folder / "run.sqlite") as db:
            found = db.execute(_ROW_QUERY).fetchone()
    except sqlite3.Error as error:
        return _broken(folder, str(error).splitlines()[0] if str(error) else "unreadable")
    if found is None or found[6] != 1:
        return _broken(folder, "run.sqlite does not hold one run")
    kind, status, created, generations, arms, done, _ = found
    names = tuple(arms.split("\x1f")) if arms else ()
    planned = generations * len(names) if isinstance(generations, int) and names else None
    return RunRow(
        folder.name,  # what the app serves it by, even if the folder was renamed
        str(kind),
        current_status(folder, str(status)),
        str(created),
        names,
        int(done),
        planned,
        pending_review(folder),
    )


def _broken(folder: Path, reason: str) -> RunRow:
    return RunRow(folder.name, "?", f"broken: {reason}", "", (), 0, None, None)


def pending_review(run_dir: Path) -> int | None:
    """Items awaiting a decision in the run's review queue (None: no queue, or unreadable)."""
    queue = run_dir / "review.sqlite"
    if not queue.is_file():
        return None
    try:
        with read_only(queue) as db:
            (count,) = db.execute("SELECT COUNT(*) FROM items WHERE status = 'pending'").fetchone()
    except sqlite3.Error:
        return None
    return int(count)


def finite(value: Any) -> Any:
    """`value` with every NaN or infinity replaced by None (JSON has neither), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
