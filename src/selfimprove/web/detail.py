"""What a run's page shows, read straight from its database (read-only, a few indexed
queries): the newest metrics of each arm (polled every second while the run runs), the gate's
decisions that were not acceptances, the event log with its alarms, what was kept by
provenance, and the review queue's counts."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfimprove.web.runs import current_status, finite, read_only

MAX_ROWS = 200
"""Newest decisions and events shown; the report and `selfimprove show` have them all."""


def live(run_dir: Path) -> dict[str, Any]:
    """The run's status and each arm's newest generation with its metrics, as JSON:
    `{"status", "arms": [{"name", "status", "generation", "metrics": {key: value}}]}`
    (a generation of None: the arm has committed none yet; a metric of None: NaN)."""
    with read_only(run_dir / "run.sqlite") as db:
        return _live(db, run_dir)


def _live(db: sqlite3.Connection, run_dir: Path) -> dict[str, Any]:
    (stored,) = db.execute("SELECT status FROM run").fetchone()
    arms = db.execute("SELECT name, status FROM arms ORDER BY position").fetchall()
    newest = dict(db.execute("SELECT arm, MAX(generation) FROM generations GROUP BY arm"))
    shown = []
    for name, status in arms:
        generation = newest.get(name)
        metrics = (
            {}
            if generation is None
            else dict(
                db.execute(
                    "SELECT key, value FROM metrics WHERE arm = ? AND generation = ? ORDER BY key",
                    (name, generation),
                )
            )
        )
        shown.append(
            {
                "name": name,
                "status": current_status(run_dir, status),
                "generation": generation,
                "metrics": metrics,
            }
        )
    clean: dict[str, Any] = finite({"status": current_status(run_dir, stored), "arms": shown})
    return clean


@dataclass(frozen=True)
class RunDetail:
    id: str
    kind: str
    seed: int
    created: str
    live: dict[str, Any]
    decisions: list[tuple[str, int, str, str]]  # (arm, generation, action, reason)
    events: list[tuple[str, str | None, int | None, str, str]]  # newest first
    provenance: list[tuple[str, str, str, int]]  # (arm, source, review, samples)
    review: dict[str, int] | None  # status -> items; None: the run has no review queue


def detail(run_dir: Path) -> RunDetail:
    with read_only(run_dir / "run.sqlite") as db:
        run_id, kind, seed, created = db.execute(
            "SELECT id, kind, seed, created FROM run"
        ).fetchone()
        decisions = db.execute(
            "SELECT arm, generation, action, reason FROM generations WHERE action != 'accept'"
            " ORDER BY finished DESC, generation DESC LIMIT ?",
            (MAX_ROWS,),
        ).fetchall()
        events = db.execute(
            "SELECT time, arm, generation, kind, message FROM events ORDER BY id DESC LIMIT ?",
            (MAX_ROWS,),
        ).fetchall()
        provenance = db.execute(
            "SELECT arm, source, coalesce(review, ''), SUM(count) FROM provenance"
            " GROUP BY arm, source, review ORDER BY arm, source"
        ).fetchall()
        now = _live(db, run_dir)
    return RunDetail(
        str(run_id),
        str(kind),
        int(seed),
        str(created),
        now,
        decisions,
        events,
        provenance,
        review_counts(run_dir),
    )


def review_counts(run_dir: Path) -> dict[str, int] | None:
    queue = run_dir / "review.sqlite"
    if not queue.is_file():
        return None
    counts = {status: 0 for status in ("pending", "accept", "reject", "edit", "disputed")}
    try:
        with read_only(queue) as db:
            counts.update(db.execute("SELECT status, COUNT(*) FROM items GROUP BY status"))
    except sqlite3.Error:
        return None
    return counts
