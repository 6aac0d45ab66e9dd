"""The audit log: every decision and gate event of a run, in `runs/<id>/audit.jsonl`, one JSON
object per line, each holding the hash of the line before it (a hash chain).

What it guarantees: editing, inserting, reordering or deleting any entry but the newest ones
changes a hash that a later entry (or the count stored in the review queue) pins, so
`selfimprove audit RUN` reports the first line that does not verify. What it does not: someone
who can write the file can rewrite the whole chain from the edited entry on; keep a copy of
the newest hash elsewhere (it is printed by `audit`) to pin the chain's head. Appends take an
exclusive `flock` on the file, so the run and any number of reviewers (terminal, web) append
in one order.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AUDIT_FILE = "audit.jsonl"
GENESIS = "0" * 64


def _digest(prev: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


def _line(entry: dict[str, Any]) -> bytes:
    """An entry exactly as written: canonical JSON (sorted keys, no spaces, ASCII) and a
    newline, so any edited byte, whitespace included, shows."""
    text = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return (text + "\n").encode()


def _parse(raw: bytes) -> tuple[str, dict[str, Any] | None]:
    try:
        entry = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        return f"not an entry ({error})", None
    if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
        return "not an entry (no hash)", None
    if _line(entry) != raw:
        return "not as written (edited)", None
    return "", entry


class AuditError(ValueError):
    """The log cannot take another entry (its newest line is damaged): one line for the CLI,
    a 409 for the web app; `selfimprove audit RUN` says where."""


@dataclass(frozen=True)
class Check:
    """The result of verifying a chain: `ok`, the entries read, the newest hash, or the first
    problem (with its line number)."""

    ok: bool
    entries: int
    head: str
    problem: str = ""


class AuditLog:
    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / AUDIT_FILE

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one entry (under an exclusive lock); returns it with its hash."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = self._tail(fd)
            body = {"seq": seq + 1, "time": round(time.time(), 3), "event": event, **fields}
            body["prev"] = prev
            entry = {**body, "hash": _digest(prev, body)}
            line = _line(entry)
            written = 0
            while written < len(line):  # a short write continues where it stopped
                written += os.write(fd, line[written:])
            os.fsync(fd)
            return entry
        finally:
            os.close(fd)  # closing drops the lock

    def _tail(self, fd: int) -> tuple[int, str]:
        """The newest entry's sequence number and hash (0 and the genesis hash when empty)."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, GENESIS
        start = max(0, size - 65536)
        data = os.pread(fd, size - start, start)
        while b"\n" not in data.rstrip(b"\n") and start > 0:  # a very long last line
            start = max(0, start - 65536)
            data = os.pread(fd, size - start, start)
        last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            entry = json.loads(last)
            return int(entry["seq"]), str(entry["hash"])
        except (ValueError, KeyError, TypeError):
            raise AuditError(
                f"{self.path}: its newest line is damaged, so nothing more can be logged "
                "(`selfimprove audit RUN` says where)"
            ) from None

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry, unchecked (use `verify` first when it matters)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            for raw in f:
                if raw.strip():
                    yield json.loads(raw)

    def verify(self, expected_entries: int | None = None) -> Check:
        """Recompute the chain; `expected_entries` (the count the review queue recorded) also
        catches entries cut from the end."""
        prev, count = GENESIS, 0
        if not self.path.exists():
            ok = not expected_entries
            return Check(ok, 0, prev, "" if ok else f"{AUDIT_FILE} is missing")
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                problem, entry = _parse(raw)
                if entry is None:
                    return Check(False, count, prev, f"line {number}: {problem}")
                stated = entry.pop("hash")
                if entry.get("prev") != prev:
                    problem = f"does not follow line {number - 1}"
                elif entry.get("seq") != count + 1:
                    problem = f"sequence {entry.get('seq')!r}, expected {count + 1}"
                elif _digest(prev, entry) != stated:
                    problem = "its hash does not match its content (edited)"
                if problem:
                    return Check(False, count, prev, f"line {number}: {problem}")
                prev, count = stated, count + 1
        if expected_entries is not None and count < expected_entries:
            missing = expected_entries - count
            lost = f"{missing} {'entry' if missing == 1 else 'entries'} missing from the end"
            return Check(False, count, prev, lost)
        return Check(True, count, prev)
