"""The review queue of one run: `runs/<id>/review.sqlite`.

- **Items** are what a reviewer reads: a kind, text fields (the domain's `view`), the
  engine-stamped provenance and the automatic signals (the verifier's verdict). An item's id
  is a hash of its kind, its arm and its fields, so the same item is never queued twice in an
  arm and a decision on it holds wherever it appears again there; arms are separate
  conditions of the experiment and never share decisions.
- **Decisions** are append-only (triggers refuse updates and deletes): accept, reject, edit
  (the edited fields are stored), skip, with a reason code, a note, the reviewer, a role
  (`review`, or `adjudicate` for the final word on a disagreement) and the time. A
  reviewer's newest decision replaces their older ones; every one stays in the table and in
  the audit log.
- **Outcome** of an item: an adjudication if there is one; else, once `needed` reviewers
  have decided (skips do not count), their common verdict (an edit counts as an acceptance
  of the edited text), or `disputed` when they disagree; else `pending`. The item's
  `status` column caches it, updated in the decision's transaction.
- **Resolutions** freeze what review decided for one generation of one arm (which items it
  trained on, as accepted or edited, which it dropped), so a replayed generation decides the
  same way whatever arrives later, and the audit can answer which reviewed items trained a
  checkpoint.
- **Gold**: some items' true answer, hidden from reviewers, scores them.

Every decision and resolution is also appended to the run's audit log (`oversight/audit.py`)
inside the same transaction; the queue counts the log's entries, so a log cut short shows.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from selfimprove.oversight.audit import AuditLog

QUEUE_FILE = "review.sqlite"
ACTIONS = ("accept", "reject", "edit", "skip")
REASONS = ("harmful", "incorrect", "low_quality", "duplicate", "reward_hack", "other")
ROLES = ("review", "adjudicate")
Status = Literal["pending", "accept", "reject", "edit", "disputed", "drop", "pass"]
MAX_FIELD_CHARS = 100_000
MAX_NOTE_CHARS = 2_000
REVIEWER_PATTERN = r"^[A-Za-z0-9_.@-]{1,40}$"


class ReviewError(ValueError):
    """A decision the queue refuses (unknown item, action, reason; an edit of a field that
    cannot be edited): one line for the CLI and a 4xx for the web app."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    arm TEXT NOT NULL,
    generation INTEGER NOT NULL,
    fields TEXT NOT NULL,
    editable TEXT NOT NULL,
    provenance TEXT NOT NULL,
    signals TEXT NOT NULL,
    needed INTEGER NOT NULL,
    gold TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    queued REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS items_status ON items(status, seq);
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    item TEXT NOT NULL REFERENCES items(id),
    reviewer TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    note TEXT NOT NULL,
    edit TEXT,
    role TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_item ON decisions(item, reviewer);
CREATE TRIGGER IF NOT EXISTS decisions_append_only_u BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_append_only_d BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TABLE IF NOT EXISTS resolutions (
    arm TEXT NOT NULL,
    generation INTEGER NOT NULL,
    item TEXT NOT NULL,
    outcome TEXT NOT NULL,
    edit TEXT,
    PRIMARY KEY (arm, generation, item)
);
CREATE TABLE IF NOT EXISTS resolved (
    arm TEXT NOT NULL,
    generation INTEGER NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (arm, generation)
);
CREATE TRIGGER IF NOT EXISTS resolutions_append_only_u BEFORE UPDATE ON resolutions
    BEGIN SELECT RAISE(ABORT, 'resolutions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS resolutions_append_only_d BEFORE DELETE ON resolutions
    BEGIN SELECT RAISE(ABORT, 'resolutions are append-only'); END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('audit_entries', 0);
"""


def item_id(kind: str, arm: str, fields: Mapping[str, str]) -> str:
    """The content hash that names an item: its kind, the arm that made it and its fields.

    The arm is part of the name because arms are separate conditions of one experiment: a
    decision made in one (a budget of 20%) must not decide for another (2%) that made the same
    item, or the cheaper arm would be measured with the dearer one's reviews."""
    canonical = json.dumps([kind, arm, dict(fields)], sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Item:
    id: str
    kind: str
    arm: str
    generation: int
    fields: dict[str, str]
    editable: tuple[str, ...]
    provenance: dict[str, Any]
    signals: dict[str, Any]
    needed: int = 1
    gold: str | None = None
    status: str = "pending"
    seq: int = 0

    @classmethod
    def new(
        cls,
        kind: str,
        arm: str,
        generation: int,
        fields: Mapping[str, str],
        editable: Sequence[str] = (),
        provenance: Mapping[str, Any] | None = None,
        signals: Mapping[str, Any] | None = None,
        needed: int = 1,
        gold: str | None = None,
    ) -> Item:
        clean = {str(k): str(v)[:MAX_FIELD_CHARS] for k, v in fields.items()}
        return cls(
            item_id(kind, arm, clean),
            kind,
            arm,
            generation,
            clean,
            tuple(editable),
            dict(provenance or {}),
            dict(signals or {}),
            needed,
            gold,
        )


@dataclass(frozen=True)
class ReviewDecision:
    item: str
    reviewer: str
    action: str
    reason: str | None = None
    note: str = ""
    edit: dict[str, str] | None = None
    role: str = "review"
    time: float = 0.0
    seq: int = 0


@dataclass(frozen=True)
class Outcome:
    status: Status
    edit: dict[str, str] | None = None
    deciders: tuple[str, ...] = field(default=())


def outcome_of(decisions: Sequence[ReviewDecision], needed: int) -> Outcome:
    """An item's outcome from its decisions (oldest first); see the module's doc."""
    adjudications = [d for d in decisions if d.role == "adjudicate" and d.action != "skip"]
    if adjudications:
        final = adjudications[-1]
        return Outcome(final.action, final.edit, (final.reviewer,))  # type: ignore[arg-type]
    latest: dict[str, ReviewDecision] = {}
    for decision in decisions:
        if decision.action == "skip":
            latest.pop(decision.reviewer, None)
        else:
            latest[decision.reviewer] = decision
    if len(latest) < needed:
        return Outcome("pending")
    votes = list(latest.values())
    rejected = {d.action == "reject" for d in votes}
    if len(rejected) > 1:
        return Outcome("disputed", None, tuple(latest))
    if rejected == {True}:
        return Outcome("reject", None, tuple(latest))
    edits = [d for d in votes if d.action == "edit"]
    if edits:
        newest = max(edits, key=lambda d: d.seq)
        return Outcome("edit", newest.edit, tuple(latest))
    return Outcome("accept", None, tuple(latest))


class ReviewQueue:
    """One run's review queue; safe to open from several processes at once (SQLite WAL,
    writes serialized by `BEGIN IMMEDIATE`)."""

    def __init__(self, run_dir: Path, connection: sqlite3.Connection) -> None:
        self.run_dir = run_dir
        self.db = connection
        self.audit = AuditLog(run_dir)

    @classmethod
    def open(cls, run_dir: Path, create: bool = True) -> ReviewQueue:
        path = run_dir / QUEUE_FILE
        if not create and not path.exists():
            raise ReviewError(f"run {run_dir.name} has no review queue (its recipe has no review)")
        db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=30000")
        db.executescript(_SCHEMA)
        return cls(run_dir, db)

    @staticmethod
    def exists(run_dir: Path) -> bool:
        return (run_dir / QUEUE_FILE).exists()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ReviewQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; inside `transaction()` it joins the open one."""
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Reads and writes that no other writer may come between (reading a generation's
        outcomes and freezing them): other processes' decisions wait until it ends."""
        with self._write():
            yield

    def _log(self, event: str, **fields: Any) -> None:
        """Append to the audit log; call inside `_write` so the count moves with it."""
        self.audit.append(event, **fields)
        self.db.execute("UPDATE meta SET value = value + 1 WHERE key = 'audit_entries'")

    # -- items ----------------------------------------------------------------------------

    def add(self, items: Iterable[Item]) -> list[str]:
        """Queue items not queued before; returns the ids that were new."""
        new: list[str] = []
        now = time.time()
        with self._write() as db:
            for item in items:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO items (id, kind, arm, generation, fields, editable,"
                    " provenance, signals, needed, gold, queued) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        item.id,
                        item.kind,
                        item.arm,
                        item.generation,
                        json.dumps(item.fields),
                        json.dumps(list(item.editable)),
                        json.dumps(item.provenance, default=str),
                        json.dumps(item.signals, default=str),
                        item.needed,
                        item.gold,
                        now,
                    ),
                )
                if cursor.rowcount:
                    new.append(item.id)
            if new:
                self._log("queue", items=new)
        return new

    def item(self, ident: str) -> Item | None:
        row = self.db.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ?", (ident,)
        ).fetchone()
        return None if row is None else _item(row)

    def items(
        self, status: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Item]:
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self.db.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items {where} ORDER BY seq LIMIT ? OFFSET ?",
            (*args, -1 if limit is None else limit, offset),
        ).fetchall()
        return [_item(row) for row in rows]

    def next_for(self, reviewer: str, limit: int = 1, after: int = 0) -> list[Item]:
        """Pending items this reviewer has not decided (or skipped), oldest first."""
        rows = self.db.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items i WHERE status = 'pending' AND seq > ? AND NOT"
            " EXISTS (SELECT 1 FROM decisions d WHERE d.item = i.id AND d.reviewer = ?)"
            " ORDER BY seq LIMIT ?",
            (after, reviewer, limit),
        ).fetchall()
        return [_item(row) for row in rows]

    def count_for(self, reviewer: str) -> int:
        """How many items `next_for(reviewer)` would hand out, without loading them."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM items i WHERE status = 'pending' AND NOT EXISTS"
            " (SELECT 1 FROM decisions d WHERE d.item = i.id AND d.reviewer = ?)",
            (reviewer,),
        ).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM items GROUP BY status").fetchall()
        counts = {status: 0 for status in ("pending", "accept", "reject", "edit", "disputed")}
        counts.update({status: n for status, n in rows})
        return counts

    # -- decisions ------------------------------------------------------------------------

    def decide(
        self,
        ident: str,
        reviewer: str,
        action: str,
        reason: str | None = None,
        note: str = "",
        edit: Mapping[str, str] | None = None,
        role: str = "review",
    ) -> Outcome:
        """Record one decision (validated) and return the item's outcome after it."""
        if not re.fullmatch(REVIEWER_PATTERN, reviewer):
            raise ReviewError(f"reviewer {reviewer!r}: use 1-40 letters, digits, . _ @ -")
        if action not in ACTIONS:
            raise ReviewError(f"action {action!r}: one of {', '.join(ACTIONS)}")
        if reason is not None and reason not in REASONS:
            raise ReviewError(f"reason {reason!r}: one of {', '.join(REASONS)}")
        if role not in ROLES:
            raise ReviewError(f"role {role!r}: one of {', '.join(ROLES)}")
        if len(note) > MAX_NOTE_CHARS:
            raise ReviewError(f"note: at most {MAX_NOTE_CHARS} characters")
        item = self.item(ident)
        if item is None:
            raise ReviewError(f"no item {ident!r} in this run's queue")
        if role == "adjudicate" and item.status != "disputed":
            adjudicated = any(d.role == "adjudicate" for d in self.decisions(ident))
            if not adjudicated:
                raise ReviewError(
                    f"item {ident} is {item.status}: only a disputed item is adjudicated"
                )
        edited: dict[str, str] | None = None
        if action == "edit":
            if not edit:
                raise ReviewError("an edit needs the edited fields")
            unknown = sorted(set(edit) - set(item.editable))
            if unknown:
                allowed = ", ".join(item.editable) or "none"
                raise ReviewError(f"field {unknown[0]!r} cannot be edited (editable: {allowed})")
            edited = {str(k): str(v)[:MAX_FIELD_CHARS] for k, v in edit.items()}
        elif edit:
            raise ReviewError(f"only an edit carries edited fields, not {action}")
        now = time.time()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO decisions (item, reviewer, action, reason, note, edit, role, time)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (ident, reviewer, action, reason, note, _dump(edited), role, now),
            )
            outcome = outcome_of(self.decisions(ident), item.needed)
            db.execute("UPDATE items SET status = ? WHERE id = ?", (outcome.status, ident))
            self._log(
                "decision",
                decision=cursor.lastrowid,
                item=ident,
                reviewer=reviewer,
                action=action,
                reason=reason,
                note=note,
                edit=edited,
                role=role,
                outcome=outcome.status,
            )
        return outcome

    def decisions(self, ident: str | None = None) -> list[ReviewDecision]:
        where, args = ("WHERE item = ?", (ident,)) if ident else ("", ())
        rows = self.db.execute(
            "SELECT item, reviewer, action, reason, note, edit, role, time, seq FROM decisions "
            f"{where} ORDER BY seq",
            args,
        ).fetchall()
        return [
            ReviewDecision(r[0], r[1], r[2], r[3], r[4], _load(r[5]), r[6], r[7], r[8])
            for r in rows
        ]

    def outcome(self, ident: str) -> Outcome:
        item = self.item(ident)
        if item is None:
            raise ReviewError(f"no item {ident!r} in this run's queue")
        return outcome_of(self.decisions(ident), item.needed)

    def decided_by(self, reviewer: str) -> set[str]:
        rows = self.db.execute(
            "SELECT DISTINCT item FROM decisions WHERE reviewer = ? AND action != 'skip'",
            (reviewer,),
        )
        return {row[0] for row in rows}

    # -- gold -----------------------------------------------------------------------------

    def reviewer_scores(self) -> dict[str, tuple[int, int]]:
        """reviewer -> (right, gold items decided): each reviewer's newest accept/reject on
        an item with a stored true answer."""
        rows = self.db.execute(
            "SELECT d.reviewer, d.action, i.gold FROM decisions d JOIN items i ON i.id = d.item"
            " WHERE i.gold IS NOT NULL AND d.action != 'skip' AND d.seq = (SELECT MAX(seq) FROM"
            " decisions e WHERE e.item = d.item AND e.reviewer = d.reviewer)"
        ).fetchall()
        scores: dict[str, list[int]] = {}
        for reviewer, action, gold in rows:
            said = "reject" if action == "reject" else "accept"
            right, total = scores.setdefault(reviewer, [0, 0])
            scores[reviewer] = [right + (said == gold), total + 1]
        return {name: (r, t) for name, (r, t) in scores.items()}

    # -- resolutions ----------------------------------------------------------------------

    def resolve(
        self,
        arm: str,
        generation: int,
        outcomes: Mapping[str, Outcome],
        summary: Mapping[str, float],
        halted: bool = False,
    ) -> None:
        """Freeze what review decided for one generation (item -> accept / edit with its
        fields / reject / drop / pass) and log which items it lets through to training (none
        when review halts the arm; the engine's gate may still reject the candidate)."""
        with self._write() as db:
            db.executemany(
                "INSERT INTO resolutions VALUES (?,?,?,?,?)",
                [
                    (arm, generation, ident, o.status, _dump(o.edit))
                    for ident, o in outcomes.items()
                ],
            )
            db.execute(
                "INSERT INTO resolved VALUES (?,?,?)", (arm, generation, json.dumps(summary))
            )
            trained = sorted(i for i, o in outcomes.items() if o.status in ("accept", "edit"))
            if halted:
                trained = []
            self._log(
                "resolve",
                arm=arm,
                generation=generation,
                trains_on=trained,
                dropped=sorted(i for i, o in outcomes.items() if o.status in ("reject", "drop")),
                summary=dict(summary),
                halted=halted,
            )

    def resolution(
        self, arm: str, generation: int
    ) -> tuple[dict[str, Outcome], dict[str, float]] | None:
        row = self.db.execute(
            "SELECT summary FROM resolved WHERE arm = ? AND generation = ?", (arm, generation)
        ).fetchone()
        if row is None:
            return None
        rows = self.db.execute(
            "SELECT item, outcome, edit FROM resolutions WHERE arm = ? AND generation = ?",
            (arm, generation),
        ).fetchall()
        outcomes = {ident: Outcome(status, _load(edit)) for ident, status, edit in rows}
        return outcomes, json.loads(row[0])

    def log_event(self, event: str, **fields: Any) -> None:
        """A gate event (a wait, a halt) in the audit log."""
        with self._write():
            self._log(event, **fields)

    def audit_entries(self) -> int:
        return int(
            self.db.execute("SELECT value FROM meta WHERE key = 'audit_entries'").fetchone()[0]
        )


_ITEM_COLUMNS = (
    "id, kind, arm, generation, fields, editable, provenance, signals, needed, gold, status, seq"
)


def _item(row: Sequence[Any]) -> Item:
    return Item(
        row[0],
        row[1],
        row[2],
        row[3],
        json.loads(row[4]),
        tuple(json.loads(row[5])),
        json.loads(row[6]),
        json.loads(row[7]),
        row[8],
        row[9],
        row[10],
        row[11],
    )


def _dump(value: Mapping[str, str] | None) -> str | None:
    return None if value is None else json.dumps(dict(value))


def _load(text: str | None) -> dict[str, str] | None:
    return None if text is None else json.loads(text)
