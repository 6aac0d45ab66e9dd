"""The review queue: content-hash ids, append-only decisions, outcomes with several
reviewers and adjudication, refused input, gold scores, frozen resolutions; the audit log
is a chain every edit breaks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from selfimprove.oversight.audit import AuditLog
from selfimprove.oversight.queue import (
    Item,
    Outcome,
    ReviewDecision,
    ReviewError,
    ReviewQueue,
    outcome_of,
)


def _item(text: str, needed: int = 1, gold: str | None = None) -> Item:
    return Item.new(
        "rationale", "star", 1, {"prompt": "1+1=", "completion": text}, ("completion",),
        {"source": "synthetic"}, {"verifier/passed": True}, needed, gold,
    )  # fmt: skip


@pytest.fixture()
def queue(tmp_path: Path) -> ReviewQueue:
    with ReviewQueue.open(tmp_path) as q:
        yield q


def test_the_same_content_is_queued_once(queue: ReviewQueue) -> None:
    assert queue.add([_item("2"), _item("2"), _item("3")]) == [_item("2").id, _item("3").id]
    assert queue.add([_item("2")]) == []
    assert _item("2").id != _item("3").id and len(_item("2").id) == 20
    assert queue.counts()["pending"] == 2


def test_outcomes_follow_each_reviewers_newest_decision(queue: ReviewQueue) -> None:
    one, two = _item("2", needed=2), _item("3")
    queue.add([one, two])
    assert queue.decide(one.id, "ann", "accept").status == "pending"  # needs a second voice
    assert queue.decide(one.id, "bob", "reject", "incorrect").status == "disputed"
    assert queue.decide(one.id, "bob", "accept").status == "accept"  # bob changed his mind
    assert queue.decide(one.id, "ann", "skip").status == "pending"  # a skip withdraws
    with pytest.raises(ReviewError, match="only a disputed item is adjudicated"):
        queue.decide(one.id, "cat", "reject", "harmful", role="adjudicate")
    assert queue.decide(one.id, "ann", "reject", "harmful").status == "disputed"
    final = queue.decide(one.id, "cat", "reject", "harmful", role="adjudicate")
    assert final.status == "reject"
    assert queue.decide(one.id, "bob", "accept").status == "reject"  # the adjudicator's word
    assert queue.decide(one.id, "cat", "accept", role="adjudicate").status == "accept"
    edited = queue.decide(two.id, "ann", "edit", edit={"completion": "1+1=2\n2"})
    assert edited == Outcome("edit", {"completion": "1+1=2\n2"}, ("ann",))
    # every decision stays: five on the first item, in order
    assert [d.action for d in queue.decisions(one.id)] == [
        "accept", "reject", "accept", "skip", "reject", "reject", "accept", "accept",
    ]  # fmt: skip
    assert queue.item(one.id).status == "accept" and queue.item(two.id).status == "edit"


def test_decisions_are_append_only_in_the_database(queue: ReviewQueue) -> None:
    item = _item("2")
    queue.add([item])
    queue.decide(item.id, "ann", "accept")
    for statement in ("UPDATE decisions SET action = 'reject'", "DELETE FROM decisions"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            queue.db.execute(statement)
    assert queue.decisions(item.id)[0].action == "accept"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "ann", "accept"), "no item"),
        ((None, "ann", "maybe"), "action 'maybe'"),
        ((None, "ann", "reject", "rude"), "reason 'rude'"),
        ((None, "a b", "accept"), "reviewer 'a b'"),
        ((None, "ann", "edit"), "needs the edited fields"),
        ((None, "ann", "accept", None, "", {"completion": "x"}), "only an edit"),
        ((None, "ann", "edit", None, "", {"prompt": "x"}), "'prompt' cannot be edited"),
        ((None, "ann", "accept", None, "x" * 2001), "at most 2000"),
    ],
)
def test_bad_decisions_are_refused_and_leave_nothing(
    queue: ReviewQueue, args: tuple[object, ...], message: str
) -> None:
    item = _item("2")
    queue.add([item])
    entries = queue.audit_entries()
    ident = item.id if args[0] is None else args[0]
    with pytest.raises(ReviewError, match=message):
        queue.decide(ident, *args[1:])  # type: ignore[arg-type]
    assert queue.decisions() == [] and queue.audit_entries() == entries


def test_gold_items_score_reviewers(queue: ReviewQueue) -> None:
    right, wrong = _item("2", gold="accept"), _item("3", gold="reject")
    queue.add([right, wrong, _item("4")])
    queue.decide(right.id, "ann", "accept")
    queue.decide(wrong.id, "ann", "reject", "incorrect")
    queue.decide(right.id, "bob", "reject", "incorrect")
    queue.decide(wrong.id, "bob", "edit", edit={"completion": "3"})  # an edit accepts
    queue.decide(_item("4").id, "bob", "accept")  # no gold: not scored
    assert queue.reviewer_scores() == {"ann": (2, 2), "bob": (0, 2)}


def test_next_for_skips_what_the_reviewer_decided(queue: ReviewQueue) -> None:
    items = [_item(str(n), needed=2) for n in range(5)]
    queue.add(items)
    queue.decide(items[0].id, "ann", "accept")
    queue.decide(items[1].id, "ann", "skip")
    assert [i.id for i in queue.next_for("ann", 10)] == [i.id for i in items[2:]]
    assert [i.id for i in queue.next_for("bob", 2)] == [i.id for i in items[:2]]


def test_a_resolution_is_frozen_and_logged(queue: ReviewQueue) -> None:
    a, b = _item("2"), _item("3")
    queue.add([a, b])
    outcomes = {a.id: Outcome("accept"), b.id: Outcome("edit", {"completion": "x"})}
    queue.resolve("star", 1, outcomes, {"review/accepted": 1.0})
    assert queue.resolution("star", 1) == (outcomes, {"review/accepted": 1.0})
    with pytest.raises(sqlite3.IntegrityError):
        queue.resolve("star", 1, {a.id: Outcome("reject")}, {})
    entry = list(queue.audit.entries())[-1]
    assert entry["event"] == "resolve" and entry["trains_on"] == sorted([a.id, b.id])


def test_outcome_rules_without_a_database() -> None:
    d = ReviewDecision
    assert outcome_of([], 1).status == "pending"
    assert outcome_of([d("i", "a", "edit", edit={"x": "1"}, seq=1)], 1).edit == {"x": "1"}
    two = [d("i", "a", "accept", seq=1), d("i", "b", "edit", edit={"x": "2"}, seq=2)]
    assert outcome_of(two, 2) == Outcome("edit", {"x": "2"}, ("a", "b"))
    adjudicated = [*two, d("i", "c", "skip", role="adjudicate", seq=3)]
    assert outcome_of(adjudicated, 2).status == "edit"  # a skipped adjudication is no word


def _filled_log(tmp_path: Path) -> AuditLog:
    log = AuditLog(tmp_path)
    for n in range(6):
        log.append("decision", item=f"{n:020x}", reviewer="ann", note="ünïcode <b>")
    return log


def test_every_single_byte_edit_of_the_log_is_caught(tmp_path: Path) -> None:
    log = _filled_log(tmp_path)
    assert log.verify(6).ok and log.verify(6).entries == 6
    original = log.path.read_bytes()
    for position in range(len(original)):
        for replacement in {original[position] ^ 1, ord(" ")} - {original[position]}:
            edited = bytearray(original)
            edited[position] = replacement
            log.path.write_bytes(bytes(edited))
            check = log.verify(6)
            assert not check.ok, (position, replacement)
            assert check.problem.startswith("line ")
    log.path.write_bytes(original)
    assert log.verify(6).ok


def test_removed_lines_are_caught(tmp_path: Path) -> None:
    log = _filled_log(tmp_path)
    lines = log.path.read_bytes().splitlines(keepends=True)
    log.path.write_bytes(b"".join(lines[:2] + lines[3:]))  # one from the middle
    assert "does not follow" in log.verify(6).problem
    log.path.write_bytes(b"".join(lines[:-1]))  # the newest: only the count shows it
    assert log.verify().ok and log.verify(6).problem == "1 entry missing from the end"


def test_a_transaction_keeps_other_writers_out_until_it_ends(tmp_path: Path) -> None:
    with ReviewQueue.open(tmp_path) as queue:
        item = _item("2")
        queue.add([item])
        other = ReviewQueue.open(tmp_path)
        other.db.execute("PRAGMA busy_timeout=200")
        with queue.transaction():
            assert queue.outcome(item.id).status == "pending"
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.decide(item.id, "bob", "reject", "incorrect")
            queue.decide(item.id, "ann", "accept")  # joins the open transaction
        assert other.decide(item.id, "bob", "reject", "incorrect").status == "disputed"
        other.close()
        assert queue.audit.verify(queue.audit_entries()).ok
