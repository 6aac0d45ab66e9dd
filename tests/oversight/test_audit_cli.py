"""`selfimprove audit RUN`: an intact chain exits 0 and prints its head; any flipped byte or
any deleted line exits 1 with one stderr line naming the first line that does not verify;
`--trained ARM:GEN` lists what review decided for that generation, and a bad value is one
line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfimprove.cli import main
from selfimprove.core.store import RunStore
from selfimprove.oversight.audit import AuditLog
from selfimprove.oversight.queue import Item, Outcome, ReviewQueue


@pytest.fixture()
def run(tmp_path: Path) -> tuple[Path, list[str]]:
    """A run (no loop ran it) with four items: accepted, rejected, edited, dropped unreviewed,
    and generation 1 of arm `star` resolved on them. Its log has 5 entries."""
    store = RunStore.create(tmp_path / "runs", "reasoning.star", {}, 0, "test")
    store.close()
    items = [
        Item.new("rationale", "star", 1, {"prompt": "1+1=", "completion": text}, ("completion",),
                 {"source": "synthetic"}, {"verifier/passed": True})
        for text in ("2", "3", "4", "5")
    ]  # fmt: skip
    with ReviewQueue.open(store.run_dir) as queue:
        queue.add(items)
        queue.decide(items[0].id, "ann", "accept")
        queue.decide(items[1].id, "bob", "reject", "incorrect")
        queue.decide(items[2].id, "ann", "edit", edit={"completion": "1+1=2\n4"})
        outcomes = {item.id: queue.outcome(item.id) for item in items[:3]}
        queue.resolve("star", 1, outcomes | {items[3].id: Outcome("drop")}, {"review/rate": 0.5})
    return store.run_dir, [item.id for item in items]


def _audit(run_dir: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(["--runs-dir", str(run_dir.parent), "audit", run_dir.name, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _line_of(data: bytes, position: int) -> int:
    """The 1-based line holding byte `position` (a newline belongs to the line it ends)."""
    return data.count(b"\n", 0, position) + 1


def test_an_intact_log_exits_0_and_prints_its_head(
    run: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, _ = run
    code, out, err = _audit(run_dir, capsys)
    head = AuditLog(run_dir).verify().head
    assert (code, err) == (0, "")
    assert f"5 entries, chain intact, head {head}" in out
    assert len(head) == 64 and head == list(AuditLog(run_dir).entries())[-1]["hash"]


def test_any_flipped_byte_exits_1_naming_its_line(
    run: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, _ = run
    path = run_dir / "audit.jsonl"
    data = path.read_bytes()
    newlines = [i for i, byte in enumerate(data) if byte == ord("\n")]
    assert len(newlines) == 5 and len(data) > 1000
    # every newline and 250 positions spread evenly over the file, through the command
    positions = sorted(set(newlines) | {i * (len(data) - 1) // 249 for i in range(250)})
    for position in positions:
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        path.write_bytes(bytes(flipped))
        code, _, err = _audit(run_dir, capsys)
        line = _line_of(data, position)
        assert code == 1, f"byte {position} flipped went unseen"
        assert err.count("\n") == 1 and f"does not verify: line {line}:" in err, (position, err)
    path.write_bytes(data)
    assert _audit(run_dir, capsys)[0] == 0


def test_every_byte_of_the_log_is_pinned(run: tuple[Path, list[str]]) -> None:
    """The check the command makes, on every byte (one bit flipped; every fourth byte also
    with its top bit set, which is not UTF-8 any more)."""
    run_dir, _ = run
    path = run_dir / "audit.jsonl"
    data = path.read_bytes()
    log = AuditLog(run_dir)
    for position in range(len(data)):
        for mask in (0x01, 0x80) if position % 4 == 0 else (0x01,):
            flipped = bytearray(data)
            flipped[position] ^= mask
            path.write_bytes(bytes(flipped))
            check = log.verify(expected_entries=5)
            assert not check.ok, (position, mask)
            assert check.problem.startswith(f"line {_line_of(data, position)}:"), check.problem


def test_a_deleted_line_is_caught_wherever_it_was(
    run: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, _ = run
    path = run_dir / "audit.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))  # the newest entry: only the queue's count shows it
    code, _, err = _audit(run_dir, capsys)
    assert code == 1 and err.count("\n") == 1
    assert "1 entry missing from the end" in err
    for gone in range(len(lines) - 1):  # any other: the line after it no longer follows
        path.write_bytes(b"".join(lines[:gone] + lines[gone + 1 :]))
        code, _, err = _audit(run_dir, capsys)
        assert code == 1 and err.count("\n") == 1
        assert f"line {gone + 1}: does not follow line {gone}" in err, err


def test_trained_lists_each_item_with_its_outcome(
    run: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, ids = run
    code, out, err = _audit(run_dir, capsys, "--trained", "star:1")
    assert (code, err) == (0, "")
    cells = [line.split() for line in out.splitlines()]
    rows = {row[0]: row[1:] for row in cells if row and row[0] in ids}
    assert rows == {
        ids[0]: ["accept", "ann", "yes"],
        ids[1]: ["reject", "bob", "no"],
        ids[2]: ["edit", "ann", "yes"],
        ids[3]: ["drop", "-", "no"],
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("star", "give ARM:GENERATION"),
        ("star:x", "give ARM:GENERATION"),
        (":3", "give ARM:GENERATION"),
        ("star:-1", "give ARM:GENERATION"),
        ("star:2", "no review decided generation 2 of arm 'star'"),
        ("other:1", "no review decided generation 1 of arm 'other'"),
    ],
)
def test_a_bad_trained_value_is_one_line_and_exit_2(
    run: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    run_dir, _ = run
    code, _, err = _audit(run_dir, capsys, "--trained", value)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("selfimprove: error: --trained") and message in err


def test_a_run_without_a_queue_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = RunStore.create(tmp_path, "collapse.gaussian", {}, 0, "test")
    store.close()
    code, _, err = _audit(store.run_dir, capsys)
    assert code == 2 and err.count("\n") == 1 and "has no review queue" in err
    assert not (store.run_dir / "review.sqlite").exists()  # looking created nothing
