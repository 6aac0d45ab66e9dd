import sqlite3
from pathlib import Path

import pytest

from selfimprove.core.records import Decision, Event, GenerationRecord
from selfimprove.core.snapshot import SnapshotError
from selfimprove.core.store import RunNotFoundError, RunStore, list_runs


def make_store(tmp_path: Path) -> RunStore:
    return RunStore.create(tmp_path, "collapse.gaussian", {"kind": "collapse.gaussian"}, 7, "test")


def test_generation_round_trips_exactly(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    metrics = {"a/x": 0.1 + 0.2, "a/nan": float("nan"), "a/tiny": 4.0e-305}
    store.commit_generation(GenerationRecord("arm", 0, metrics, Decision("accept", "ok")))
    read = store.metrics("arm")[0]
    assert read["a/x"] == 0.1 + 0.2 and read["a/tiny"] == 4.0e-305
    assert read["a/nan"] != read["a/nan"]
    assert store.last_generation("arm") == 0 and store.last_generation("other") == -1


def test_a_generation_is_committed_whole_or_not_at_all(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.commit_generation(GenerationRecord("arm", 0, {"m": 1.0}, Decision("accept", "ok")))
    with pytest.raises(sqlite3.IntegrityError):  # generation 0 again: the whole insert fails
        store.commit_generation(GenerationRecord("arm", 0, {"n": 2.0}, Decision("accept", "ok")))
    assert store.metrics("arm") == {0: {"m": 1.0}}


def test_event_log_is_append_only(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.log_event(Event("alarm", "sigma too low", "arm", 3))
    db = sqlite3.connect(store.run_dir / "run.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE events SET message = 'nothing happened'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM events")
    assert [e[4] for e in store.events()] == ["sigma too low"]


def test_snapshots_keep_the_newest_two_and_ignore_uncommitted_ones(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    for generation in range(5):
        store.save_snapshot("arm", generation, {"g": generation})
    assert len(list(store.arm_dir("arm").glob("gen-*/snapshot.json"))) == 2
    assert len(list(store.arm_dir("arm").glob("gen-*"))) == 2  # pruned folders go whole
    assert store.load_snapshot("arm", at_most=4) == (4, {"g": 4})
    assert store.load_snapshot("arm", at_most=3) == (3, {"g": 3})  # 4 was never committed
    assert store.load_snapshot("arm", at_most=2) is None
    assert not list(store.arm_dir("arm").glob(".gen-*"))  # no temporary folders left


def test_a_damaged_snapshot_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.save_snapshot("arm", 1, {"g": 1})
    store.save_snapshot("arm", 2, {"g": 2})
    arrays = store.arm_dir("arm") / "gen-00002" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:-3] + b"xyz")
    with pytest.raises(SnapshotError, match=r"gen-00002.*checksum") as caught:
        store.load_snapshot("arm", at_most=2)
    assert "\n" not in str(caught.value)
    assert store.load_snapshot("arm", at_most=1) == (1, {"g": 1})


def test_open_unknown_run(tmp_path: Path) -> None:
    with pytest.raises(RunNotFoundError, match="no run 'missing'"):
        RunStore.open("missing", tmp_path)


def test_list_runs(tmp_path: Path) -> None:
    first = make_store(tmp_path)
    assert [info.id for info in list_runs(tmp_path)] == [first.run_dir.name]
    assert list_runs(tmp_path)[0].seed == 7
