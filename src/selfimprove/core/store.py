"""The run store: one folder per run under `runs/`, holding `run.sqlite` (WAL) and artifacts.

`run.sqlite` keeps the resolved config, arms, generations with the gate's decision, flat
metrics, the provenance of what each generation kept, and an append-only event log (triggers
refuse UPDATE and DELETE on it). A generation is committed in one transaction, after its
artifacts are in place, so a crash at any moment leaves either the whole generation or none.

Artifacts live in `arms/<arm>/gen-NNNNN/`, written under a temporary name and renamed, so a
half-written folder never counts; removed folders are renamed away first, so a half-removed
one never counts either, and a resume clears what interrupted writes and removals left.
Loop-state snapshots are JSON and numpy arrays (`core/snapshot.py`), never pickle: reading a
run folder someone sent you runs no code. Only the two newest are kept.

The store never lies about a run: a new run's schema and `run` row are one transaction;
opening checks for a whole run and reads every page, so a half-created, foreign or damaged
database is a one-line `CorruptRunError`; and "running" means holding the run's lock
(`exclusive`, `current`), never a status a crash left behind.
"""

from __future__ import annotations

import fcntl
import json
import math
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from selfimprove.core import generation_folders as folders
from selfimprove.core.records import Decision, Event, GenerationRecord, Metrics, ProvenanceCount
from selfimprove.core.snapshot import (
    SnapshotError,
    TensorCodec,
    read_snapshot,
    write_snapshot,
)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS run (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, config TEXT NOT NULL, seed INTEGER NOT NULL,
    created TEXT NOT NULL, status TEXT NOT NULL, version TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS arms (
    name TEXT PRIMARY KEY, position INTEGER NOT NULL, status TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS generations (
    arm TEXT NOT NULL, generation INTEGER NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL,
    finished TEXT NOT NULL, seconds REAL, cpu_seconds REAL, PRIMARY KEY (arm, generation))""",
    """CREATE TABLE IF NOT EXISTS metrics (
    arm TEXT NOT NULL, generation INTEGER NOT NULL, key TEXT NOT NULL, value REAL,
    PRIMARY KEY (arm, generation, key))""",
    """CREATE TABLE IF NOT EXISTS provenance (
    arm TEXT NOT NULL, generation INTEGER NOT NULL, source TEXT NOT NULL,
    origin_generation INTEGER NOT NULL, model TEXT NOT NULL, verdict TEXT, review TEXT,
    count INTEGER NOT NULL, origin_arm TEXT, passed INTEGER, revision INTEGER)""",
    """CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, arm TEXT, generation INTEGER,
    kind TEXT NOT NULL, message TEXT NOT NULL)""",
    """CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END""",
)
"""One statement each, so that `create` runs them all in one transaction with the run row."""

_EXHIBITS = """
CREATE TABLE IF NOT EXISTS exhibits (
    arm TEXT NOT NULL, generation INTEGER NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (arm, generation, name))"""  # its own statement: runs made before it get it on open
_SNAPSHOTS = """
CREATE TABLE IF NOT EXISTS snapshots (
    arm TEXT NOT NULL, generation INTEGER NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (arm, generation))"""
"""The checksum of each snapshot's `snapshot.json` (which holds its arrays' checksum): a
snapshot counts once recorded here, and one edited or damaged since is refused."""

_PROVENANCE_ADDED = ("origin_arm TEXT", "passed INTEGER", "revision INTEGER")
"""Provenance columns added since the first runs; older runs get them (NULL) on open."""

_SNAPSHOTS_KEPT = 2
_PROBE_PATIENCE_SECONDS = 0.2


class RunNotFoundError(LookupError):
    """No run with that id or folder."""


class CorruptRunError(RuntimeError):
    """A run folder whose database is not a whole, readable run: `reason` says why in one
    line (half-created by a kill, not a database, damaged pages)."""

    def __init__(self, run: str, reason: str) -> None:
        super().__init__(f"run {run} is broken: {reason}")
        self.reason = reason


class RunBusyError(RuntimeError):
    """Another process is running this run right now."""


@dataclass(frozen=True)
class RunInfo:
    id: str
    kind: str
    seed: int
    created: str
    status: str
    config: dict[str, Any]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "arm"


class RunStore:
    """One run's folder and database. Create with `create`, reopen with `open`."""

    def __init__(self, run_dir: Path) -> None:
        """Open the run in `run_dir`, whose database must hold a whole run (`create` makes
        one); anything else is a `CorruptRunError`, and the folder is left as it was."""
        self.run_dir = run_dir
        self._db = sqlite3.connect(run_dir / "run.sqlite", isolation_level=None, timeout=30)
        try:
            problem = _missing_run(self._db)  # reads only: a broken folder is not written to
            if problem is None:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(_EXHIBITS)
                self._db.execute(_SNAPSHOTS)
                self._add_missing_columns()
        except sqlite3.DatabaseError as error:
            problem = _database_problem(error)
        if problem is not None:
            self._db.close()
            raise CorruptRunError(run_dir.name, problem)

    def _add_missing_columns(self) -> None:
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(provenance)")}
        if not columns:  # a new run: the schema is created next
            return
        for column in _PROVENANCE_ADDED:
            if column.split()[0] not in columns:
                self._db.execute(f"ALTER TABLE provenance ADD COLUMN {column}")

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    def create(
        cls, runs_dir: Path, kind: str, config: dict[str, Any], seed: int, version: str
    ) -> RunStore:
        """A new run folder whose database gets its schema and its run row in one
        transaction, so a kill at any moment leaves a whole run or a plainly empty database."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run_id = f"{_slug(kind.replace('.', '-'))}-{stamp}-{secrets.token_hex(2)}"
        run_dir = runs_dir / run_id
        run_dir.mkdir(parents=True)
        row = (run_id, kind, json.dumps(config, sort_keys=True), seed, now(), version)
        db = sqlite3.connect(run_dir / "run.sqlite", isolation_level=None, timeout=30)
        try:
            db.execute("BEGIN IMMEDIATE")
            for statement in (*_SCHEMA, _EXHIBITS, _SNAPSHOTS):
                db.execute(statement)
            db.execute("INSERT INTO run VALUES (?, ?, ?, ?, ?, 'running', ?)", row)
            db.execute("COMMIT")
        except BaseException:
            db.close()
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing of the run was committed
            raise
        db.close()
        return cls(run_dir)

    @classmethod
    def open(cls, run: str | Path, runs_dir: Path = Path("runs")) -> RunStore:
        """Open a run by folder path or by id under `runs_dir`, its pages checked first."""
        for candidate in (Path(run), runs_dir / str(run)):
            if (candidate / "run.sqlite").is_file():
                store = cls(candidate)
                store.check_pages()
                return store
        raise RunNotFoundError(f"no run {str(run)!r} (looked in {runs_dir}/ and at that path)")

    def close(self) -> None:
        self._db.close()

    def check_pages(self) -> None:
        """Read every page of the database (`PRAGMA quick_check`, linear in its size: a few
        milliseconds a megabyte) so that a damaged one is a `CorruptRunError` naming the
        damage, not a resume that carries on over it. The store is closed when it is one."""
        try:
            rows = [str(row[0]) for row in self._db.execute("PRAGMA quick_check(3)")]
        except sqlite3.DatabaseError as error:
            rows = [_first_line(error)]
        if rows != ["ok"]:
            self.close()
            found = [line for row in rows for line in row.splitlines() if not line.startswith("*")]
            raise CorruptRunError(
                self.run_dir.name,
                f"run.sqlite is damaged ({found[0] if found else rows[0]}"
                f"{'; and more' if len(found) > 1 else ''}); restore it from a copy or start "
                "the run again",
            )

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the run's lock while running it; a second runner fails at once. The lock is a
        `flock` on `.lock`, which the kernel drops however its holder dies, so holding it is
        what "running" means (`is_running`)."""
        with (self.run_dir / ".lock").open("w") as handle:
            _take_lock(handle, self.run_dir.name)
            yield

    def is_running(self) -> bool:
        """Whether some process (this one too, through `exclusive`) holds the run's lock."""
        try:
            handle = (self.run_dir / ".lock").open("rb")
        except OSError:
            return False  # never locked
        with handle:
            try:  # a shared lock, held for an instant: `_take_lock` waits it out
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
        return False

    def current(self, status: str) -> str:
        """A stored run or arm status as it stands now: `running` in a run that nobody runs
        (a crash or a kill left it) is `stopped`."""
        return "stopped" if status == "running" and not self.is_running() else status

    def status(self) -> str:
        return self.current(self.info().status)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- run and arms ---------------------------------------------------------------------

    def info(self) -> RunInfo:
        row = self._db.execute("SELECT id, kind, seed, created, status, config FROM run").fetchone()
        try:
            config = json.loads(row[5])
        except (TypeError, ValueError):
            raise CorruptRunError(self.run_dir.name, "its config is not JSON") from None
        return RunInfo(row[0], row[1], row[2], row[3], row[4], config)

    def set_status(self, status: str) -> None:
        with self._transaction():
            self._db.execute("UPDATE run SET status = ?", (status,))

    def register_arms(self, names: list[str]) -> None:
        with self._transaction():
            for position, name in enumerate(names):
                self._db.execute(
                    "INSERT OR IGNORE INTO arms VALUES (?, ?, 'pending')", (name, position)
                )

    def arms(self) -> list[tuple[str, str]]:
        """(name, status) of every arm, in config order."""
        rows = self._db.execute("SELECT name, status FROM arms ORDER BY position").fetchall()
        return [(row[0], row[1]) for row in rows]

    def set_arm_status(self, arm: str, status: str) -> None:
        with self._transaction():
            self._db.execute("UPDATE arms SET status = ? WHERE name = ?", (status, arm))

    # -- generations ----------------------------------------------------------------------

    def last_generation(self, arm: str) -> int:
        """The newest committed generation of `arm`, or -1 when none is."""
        row = self._db.execute(
            "SELECT MAX(generation) FROM generations WHERE arm = ?", (arm,)
        ).fetchone()
        return -1 if row[0] is None else int(row[0])

    def _has_cpu_seconds(self) -> bool:
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(generations)")}
        return "cpu_seconds" in columns

    def commit_generation(self, record: GenerationRecord) -> None:
        """Write one finished generation in one transaction."""
        if not self._has_cpu_seconds():  # a run started before the column existed
            self._db.execute("ALTER TABLE generations ADD COLUMN cpu_seconds REAL")
        with self._transaction():
            self._db.execute(
                "INSERT INTO generations (arm, generation, action, reason, finished, seconds, "
                "cpu_seconds) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.arm,
                    record.generation,
                    record.decision.action,
                    record.decision.reason,
                    now(),
                    record.seconds,
                    record.cpu_seconds,
                ),
            )
            self._db.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?)",
                [(record.arm, record.generation, k, float(v)) for k, v in record.metrics.items()],
            )
            self._db.executemany(
                "INSERT INTO provenance (arm, generation, source, origin_generation, model, "
                "verdict, review, count, origin_arm, passed, revision) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_provenance_row(record.arm, record.generation, item) for item in record.kept],
            )
            self._db.executemany(
                "INSERT INTO exhibits VALUES (?, ?, ?, ?)",
                [
                    (record.arm, record.generation, name, json.dumps(value))
                    for name, value in record.exhibits.items()
                ],
            )
            for event in record.events:
                self._insert_event(event)

    def log_event(self, event: Event) -> None:
        with self._transaction():
            self._insert_event(event)

    def _insert_event(self, event: Event) -> None:
        self._db.execute(
            "INSERT INTO events (time, arm, generation, kind, message) VALUES (?, ?, ?, ?, ?)",
            (now(), event.arm, event.generation, event.kind, event.message),
        )

    def metrics(self, arm: str) -> dict[int, Metrics]:
        """generation -> metrics of one arm."""
        table: dict[int, Metrics] = {}
        rows = self._db.execute(
            "SELECT generation, key, value FROM metrics WHERE arm = ? ORDER BY generation", (arm,)
        )
        for generation, key, value in rows:
            table.setdefault(generation, {})[key] = math.nan if value is None else float(value)
        return table

    def exhibit_names(self, arm: str) -> list[str]:
        rows = self._db.execute(
            "SELECT DISTINCT name FROM exhibits WHERE arm = ? ORDER BY name", (arm,)
        )
        return [row[0] for row in rows]

    def exhibits(self, arm: str, name: str) -> dict[int, Any]:
        """generation -> the exhibit `name` of one arm (sample text, an image grid, ...)."""
        rows = self._db.execute(
            "SELECT generation, value FROM exhibits WHERE arm = ? AND name = ? ORDER BY generation",
            (arm, name),
        )
        return {generation: json.loads(value) for generation, value in rows}

    def compute_minutes(self, arm: str, cpu: bool = False) -> dict[int, float]:
        """generation -> compute time spent up to and including it, in minutes (resumes and
        idle gaps excluded; it is measured, so it is not part of the replayed metrics). Wall
        time, or with `cpu` the process's CPU time ({} when a generation lacks it)."""
        if cpu and not self._has_cpu_seconds():
            return {}
        column = "cpu_seconds" if cpu else "seconds"
        rows = self._db.execute(
            f"SELECT generation, {column} FROM generations WHERE arm = ? ORDER BY generation",
            (arm,),
        )
        total, minutes = 0.0, {}
        for generation, seconds in rows:
            if cpu and seconds is None:
                return {}
            total += seconds or 0.0
            minutes[generation] = total / 60
        return minutes

    def decisions(self, arm: str) -> dict[int, tuple[str, str]]:
        rows = self._db.execute(
            "SELECT generation, action, reason FROM generations WHERE arm = ? ORDER BY generation",
            (arm,),
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def records(self, arm: str, after: int = -1) -> list[GenerationRecord]:
        """The committed generations of `arm` after generation `after`, in order: metrics,
        decision and times (what a tracker is sent; kept counts, events and exhibits are left
        out)."""
        cpu = "cpu_seconds" if self._has_cpu_seconds() else "NULL"
        rows = self._db.execute(
            f"SELECT generation, action, reason, seconds, {cpu} FROM generations "
            "WHERE arm = ? AND generation > ? ORDER BY generation",
            (arm, after),
        ).fetchall()
        metrics: dict[int, Metrics] = {}
        for generation, key, value in self._db.execute(
            "SELECT generation, key, value FROM metrics WHERE arm = ? AND generation > ?",
            (arm, after),
        ):
            metrics.setdefault(generation, {})[key] = math.nan if value is None else float(value)
        return [
            GenerationRecord(
                arm,
                generation,
                metrics.get(generation, {}),
                Decision(action, reason),
                seconds=seconds or 0.0,
                cpu_seconds=cpu_seconds,
            )
            for generation, action, reason, seconds, cpu_seconds in rows
        ]

    def events(self) -> list[tuple[str, str | None, int | None, str, str]]:
        """(time, arm, generation, kind, message) in the order they were logged."""
        rows = self._db.execute(
            "SELECT time, arm, generation, kind, message FROM events ORDER BY id"
        )
        return [tuple(row) for row in rows]

    def provenance(self, arm: str, generation: int | None = None) -> list[ProvenanceRow]:
        """What one generation (or every generation) of `arm` kept, grouped by provenance."""
        where, params = (
            ("AND generation = ?", (arm, generation)) if generation is not None else ("", (arm,))
        )
        rows = self._db.execute(
            "SELECT generation, source, origin_generation, model, coalesce(origin_arm, ''), "
            "coalesce(verdict, ''), passed, coalesce(revision, 0), coalesce(review, ''), count "
            f"FROM provenance WHERE arm = ? {where} ORDER BY generation, rowid",
            params,
        )
        return [
            ProvenanceRow(
                g,
                src,
                origin,
                model,
                origin_arm,
                verifier,
                None if ok is None else bool(ok),
                rev,
                review,
                n,
            )
            for g, src, origin, model, origin_arm, verifier, ok, rev, review, n in rows
        ]

    # -- artifacts and snapshots ----------------------------------------------------------

    def arm_dir(self, arm: str) -> Path:
        return self.run_dir / "arms" / _slug(arm)

    def write_generation_folder(
        self, arm: str, generation: int, write: Callable[[Path], None]
    ) -> Path:
        """Let `write` fill a temporary folder, then rename it to `gen-NNNNN` atomically."""
        return folders.write_folder(self.arm_dir(arm) / f"gen-{generation:05d}", write)

    def save_snapshot(
        self, arm: str, generation: int, state: Any, codecs: Sequence[TensorCodec] = ()
    ) -> None:
        """Write the loop state after `generation` and record its checksum; snapshots older
        than the newest two go."""
        folder = self.write_generation_folder(
            arm, generation, lambda f: write_snapshot(f, state, codecs)
        )
        digest = folders.state_digest(folder)
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (arm, generation, digest)
            )
        for old in self._snapshot_folders(arm)[:-_SNAPSHOTS_KEPT]:
            folders.discard(old)

    def load_snapshot(
        self, arm: str, at_most: int, codecs: Sequence[TensorCodec] = ()
    ) -> tuple[int, Any] | None:
        """The newest recorded snapshot at or before generation `at_most`, or None when there
        is none. A snapshot that cannot be trusted (a pickle, edited or damaged since it was
        recorded, an older format) is a `SnapshotError` naming it, never a silent fall back."""
        recorded = dict(
            self._db.execute("SELECT generation, sha256 FROM snapshots WHERE arm = ?", (arm,))
        )
        for folder in reversed(self._snapshot_folders(arm)):
            generation = int(folder.name.removeprefix("gen-"))
            if generation > at_most:
                continue  # written, but its generation was never committed
            if folders.holds_pickle(folder):
                raise SnapshotError(
                    f"run {self.run_dir.name}: {folder} holds a pickle (state.pkl), which is "
                    "never loaded (it could run code); start the run again"
                )
            if generation not in recorded:
                continue  # a crash between writing it and recording it: it never counted
            try:
                folders.check_recorded(folder, recorded[generation])
                return generation, read_snapshot(folder, codecs)
            except SnapshotError as error:
                raise SnapshotError(
                    f"run {self.run_dir.name}: {error}; delete that folder to resume from an "
                    "older snapshot"
                ) from None
        return None

    def _snapshot_folders(self, arm: str) -> list[Path]:
        return folders.snapshot_folders(self.arm_dir(arm))

    def leftovers(self) -> list[Path]:
        """What interrupted writes and removals left; remove them only while holding the
        lock (`exclusive`): a running run's are in use."""
        return folders.leftovers(self.run_dir / "arms")

    def remove_leftovers(self) -> None:
        self.discard(self.leftovers())

    def unneeded_snapshots(self, keep_last: int = 1) -> list[Path]:
        """Snapshot folders no command reads. `resume`, `play` and `export` read, per arm, the
        newest recorded snapshot at or before the last committed generation; the newest
        `keep_last` of those whose checksum holds are kept, and so is a folder this cannot
        vouch for (damaged, or a pickle: reading it is an error that says what to do).
        Unneeded: older snapshots, and ones never recorded or of a generation never
        committed (which a resume writes again)."""
        unneeded = []
        for arm, _ in self.arms():
            recorded = dict(
                self._db.execute("SELECT generation, sha256 FROM snapshots WHERE arm = ?", (arm,))
            )
            last, kept = self.last_generation(arm), 0
            for folder in reversed(self._snapshot_folders(arm)):
                generation = int(folder.name.removeprefix("gen-"))
                if folders.holds_pickle(folder):
                    continue
                if generation > last or generation not in recorded:
                    unneeded.append(folder)
                elif folders.checksum_holds(folder, recorded[generation]):
                    kept += 1
                    if kept > keep_last:
                        unneeded.append(folder)
        return unneeded

    def discard(self, doomed: Sequence[Path]) -> None:
        """Remove folders of this run whole; call it holding the lock (`exclusive`)."""
        for folder in doomed:
            folders.discard(folder)


@dataclass(frozen=True)
class ProvenanceRow:
    """One group of kept samples of one generation that share a provenance."""

    generation: int
    source: str
    origin_generation: int
    model: str
    origin_arm: str
    verifier: str
    passed: bool | None
    revision: int
    review: str
    count: int


def _take_lock(handle: IO[str], run: str) -> None:
    """Lock the run, waiting out an `is_running` probe's momentary shared lock."""
    deadline = time.monotonic() + _PROBE_PATIENCE_SECONDS
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RunBusyError(
                    f"run {run} is in use by another process (running, or its gc)"
                ) from None
            time.sleep(0.01)


def _provenance_row(arm: str, generation: int, item: ProvenanceCount) -> tuple[object, ...]:
    p, verdict = item.provenance, item.provenance.verdict
    return (
        arm,
        generation,
        p.source,
        p.generation,
        p.model,
        None if verdict is None else verdict.verifier,
        p.review,
        item.count,
        p.arm,
        None if verdict is None or verdict.passed is None else int(verdict.passed),
        p.revision,
    )


def _missing_run(db: sqlite3.Connection) -> str | None:
    """What keeps the database from holding a whole run (what a kill while creating it
    leaves, or rows deleted by hand), or None. Reads only."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return "run.sqlite is empty: interrupted while it was created"
    if "run" not in tables:
        return "run.sqlite has no run table"
    (rows,) = db.execute("SELECT COUNT(*) FROM run").fetchone()
    if rows != 1:
        return f"run.sqlite has {'no' if rows == 0 else rows} run row{'s' if rows > 1 else ''}"
    return None


def _database_problem(error: sqlite3.DatabaseError) -> str:
    text = _first_line(error)
    if "file is not a database" in text:
        return "run.sqlite is not a SQLite database"
    if "malformed" in text:
        return f"run.sqlite is damaged ({text})"
    return f"run.sqlite cannot be read: {text}"


def _first_line(message: object) -> str:
    lines = str(message).strip().splitlines()
    return lines[0] if lines else type(message).__name__


RUN_ID = re.compile(r"[a-z0-9_-]+-\d{8}-\d{6}-[0-9a-f]{4}")
"""A run folder's name, as `RunStore.create` makes it."""


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every folder of `runs_dir` that holds a `run.sqlite` or is named like a run, oldest
    first. A broken one is listed too, with status `broken: <reason>`, kind `?`, seed -1,
    its database's (or folder's) change time as `created`, and no config."""
    folders = [p for p in runs_dir.glob("*") if p.is_dir() and not p.is_symlink()]
    infos = [
        _listed(folder)
        if (folder / "run.sqlite").is_file()
        else _broken(folder, "no run.sqlite (a start stopped before its database was made)")
        for folder in folders
        if (folder / "run.sqlite").is_file() or RUN_ID.fullmatch(folder.name)
    ]
    return sorted(infos, key=lambda info: info.created)


def _listed(run_dir: Path) -> RunInfo:
    try:
        store = RunStore(run_dir)
    except CorruptRunError as error:
        return _broken(run_dir, error.reason)
    try:
        info = store.info()
        return replace(info, status=store.current(info.status))
    except CorruptRunError as error:
        return _broken(run_dir, error.reason)
    except sqlite3.DatabaseError as error:
        return _broken(run_dir, _database_problem(error))
    finally:
        store.close()


def _broken(run_dir: Path, reason: str) -> RunInfo:
    database = run_dir / "run.sqlite"
    changed = datetime.fromtimestamp(
        (database if database.exists() else run_dir).stat().st_mtime, UTC
    )
    return RunInfo(
        run_dir.name, "?", -1, changed.isoformat(timespec="seconds"), f"broken: {reason}", {}
    )
