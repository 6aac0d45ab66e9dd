"""A run store that never lies: half-created, damaged and abandoned runs are named as such, and
no leftover of an interrupted write outlives the next resume."""

from __future__ import annotations

import fcntl
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from selfimprove.core import store as store_module
from selfimprove.core.engine import ArmProgress
from selfimprove.core.store import CorruptRunError, RunStore, list_runs
from selfimprove.experiments import parse_config, resume_run, start_run
from tests.tiny import tiny

KILLED_AT_THE_RUN_ROW = """
import os, signal, sqlite3, sys
from pathlib import Path
connect = sqlite3.connect
def connect_and_die_at_the_run_row(*args, **kwargs):
    db = connect(*args, **kwargs)
    def trace(statement):
        if statement.lstrip().upper().startswith("INSERT INTO RUN"):
            os.kill(os.getpid(), signal.SIGKILL)
    db.set_trace_callback(trace)
    return db
sqlite3.connect = connect_and_die_at_the_run_row
from selfimprove.core.store import RunStore
RunStore.create(Path(sys.argv[1]), "collapse.gaussian", {}, 0, "test")
"""


def test_a_kill_while_a_run_is_created_commits_nothing_of_it(tmp_path: Path) -> None:
    """The schema and the run row are one transaction: a kill before its end leaves a folder
    that is plainly broken, never a database with tables and no run."""
    child = subprocess.run(
        [sys.executable, "-c", KILLED_AT_THE_RUN_ROW, str(tmp_path)], check=False
    )
    assert child.returncode == -9
    (run_dir,) = tmp_path.iterdir()
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == []
    with pytest.raises(CorruptRunError, match="interrupted while it was created"):
        RunStore.open(run_dir)


def break_run(runs_dir: Path, how: str) -> Path:
    """A run folder as a crash or a careless hand leaves it."""
    if how == "no-run-row":
        store = RunStore.create(runs_dir, "collapse.gaussian", {}, 0, "test")
        store.close()
        with sqlite3.connect(store.run_dir / "run.sqlite") as db:
            db.execute("DELETE FROM run")
        return store.run_dir
    run_dir = runs_dir / f"broken-{how}"
    run_dir.mkdir(parents=True)
    if how == "empty":
        (run_dir / "run.sqlite").touch()
    else:
        (run_dir / "run.sqlite").write_bytes(b"these are not the pages you are looking for\n" * 200)
    return run_dir


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("empty", "interrupted while it was created"),
        ("no-run-row", "no run row"),
        ("not-sqlite", "not a SQLite database"),
    ],
)
def test_a_broken_run_folder_is_a_one_line_error(tmp_path: Path, how: str, reason: str) -> None:
    run_dir = break_run(tmp_path, how)
    before = (run_dir / "run.sqlite").read_bytes()
    with pytest.raises(CorruptRunError, match=reason) as caught:
        RunStore.open(run_dir.name, tmp_path)
    assert "\n" not in str(caught.value) and run_dir.name in str(caught.value)
    assert (run_dir / "run.sqlite").read_bytes() == before  # looking did not change it


def small_run(runs_dir: Path, generations: int = 12, **changes: Any) -> Path:
    """A collapse.gaussian run of `generations`, stopped after generation `stop_after`."""
    stop_after = changes.pop("stop_after", None)
    config = parse_config(tiny("collapse.gaussian", generations, **changes), "test")
    return start_run(config, runs_dir, stop_after=stop_after).run_dir


def mark_running(run_dir: Path) -> None:
    """What a `kill -9` leaves: the run and its arm say running."""
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        db.execute("UPDATE run SET status = 'running'")
        db.execute("UPDATE arms SET status = 'running'")


HOLD_LOCK = """
import fcntl, sys
handle = open(sys.argv[1], "w")
fcntl.flock(handle, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def test_running_means_holding_the_lock(tmp_path: Path) -> None:
    run_dir = small_run(tmp_path, stop_after=3)
    mark_running(run_dir)
    (listed,) = list_runs(tmp_path)
    assert listed.status == "stopped"  # a crash left "running", but nobody runs it
    store = RunStore.open(run_dir)
    assert store.status() == "stopped" and store.current(store.arms()[0][1]) == "stopped"
    with store.exclusive():
        assert list_runs(tmp_path)[0].status == "running"
        assert store.status() == "running"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run_dir / ".lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    try:
        assert list_runs(tmp_path)[0].status == "running"
    finally:
        holder.communicate("")
    assert list_runs(tmp_path)[0].status == "stopped"
    store.close()


def test_a_resumed_run_says_running_while_it_runs(tmp_path: Path) -> None:
    run_dir = small_run(tmp_path, stop_after=3)
    seen: list[str] = []

    def progress(where: ArmProgress) -> None:
        del where
        seen.append(list_runs(tmp_path)[0].status)

    resume_run(run_dir, progress=progress)
    assert seen and set(seen) == {"running"}


def zero_a_page_of(run_dir: Path, table: str) -> None:
    """Overwrite one page of `table` in the run's database with zeros."""
    database = run_dir / "run.sqlite"
    with sqlite3.connect(database) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        (page,) = db.execute("SELECT MIN(pageno) FROM dbstat WHERE name = ?", (table,)).fetchone()
    with database.open("r+b") as file:
        file.seek((page - 1) * page_size)
        file.write(bytes(page_size))


@pytest.mark.parametrize("table", ["exhibits", "metrics", "snapshots"])
def test_a_zeroed_page_is_found_before_resuming(tmp_path: Path, table: str) -> None:
    run_dir = small_run(tmp_path, generations=60, checkpoint_every=10, stop_after=40)
    zero_a_page_of(run_dir, table)
    with pytest.raises(CorruptRunError, match=r"run\.sqlite is damaged") as caught:
        resume_run(run_dir)
    assert "\n" not in str(caught.value)


def test_resume_removes_leftovers_of_interrupted_writes(tmp_path: Path) -> None:
    run_dir = small_run(tmp_path, checkpoint_every=2, stop_after=5)
    store = RunStore.open(run_dir)
    arm_dir = store.arm_dir(store.arms()[0][0])
    store.close()
    killed_write = arm_dir / ".gen-00006.tmp-99999"
    killed_write.mkdir()
    (killed_write / "arrays.npz").write_bytes(b"half")
    (arm_dir / "gen-00001").mkdir()  # what a prune interrupted after its files left
    half_pruned = arm_dir / "gen-00003"
    half_pruned.mkdir()
    (half_pruned / "arrays.npz").write_bytes(b"the rest of a pruned snapshot")
    assert resume_run(run_dir).status == "finished"
    assert sorted(p.name for p in arm_dir.iterdir()) == ["gen-00010", "gen-00012"]


def test_resume_never_removes_through_a_link(tmp_path: Path) -> None:
    """Found in review: a run folder someone sent you may link `arms/x` (or a `gen-*`) to a
    folder elsewhere; cleaning leftovers must not follow it."""
    run_dir = small_run(tmp_path, checkpoint_every=2, stop_after=5)
    outside = tmp_path / "outside"
    (outside / "gen-00001").mkdir(parents=True)
    (outside / ".gen-00002.tmp-1").mkdir()
    (run_dir / "arms" / "linked").symlink_to(outside, target_is_directory=True)
    store = RunStore.open(run_dir)
    arm_dir = store.arm_dir(store.arms()[0][0])
    store.close()
    (arm_dir / "gen-00003").symlink_to(outside / "gen-00001", target_is_directory=True)
    assert resume_run(run_dir).status == "finished"
    assert sorted(p.name for p in outside.iterdir()) == [".gen-00002.tmp-1", "gen-00001"]


class Killed(BaseException):
    """A `kill -9` in the middle of removing a folder."""


def test_a_prune_removes_a_folder_whole_even_when_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RunStore.create(tmp_path, "collapse.gaussian", {}, 0, "test")
    store.save_snapshot("arm", 0, {"g": 0})
    store.save_snapshot("arm", 1, {"g": 1})
    remove = store_module.shutil.rmtree

    def killed_after_one_file(path: Any, *args: Any, **kwargs: Any) -> None:
        files = sorted(Path(path).glob("*"))
        if not files:
            return remove(path, *args, **kwargs)
        files[-1].unlink()  # snapshot.json goes, arrays.npz stays
        raise Killed

    monkeypatch.setattr(store_module.shutil, "rmtree", killed_after_one_file)
    with pytest.raises(Killed):
        store.save_snapshot("arm", 2, {"g": 2})  # prunes generation 0
    monkeypatch.setattr(store_module.shutil, "rmtree", remove)
    gens = sorted(store.arm_dir("arm").glob("gen-*"))
    assert [p.name for p in gens] == ["gen-00001", "gen-00002"]  # no half folder named gen-
    assert all(sorted(f.name for f in p.iterdir()) == ["arrays.npz", "snapshot.json"] for p in gens)
    with store.exclusive():
        store.remove_leftovers()
    assert sorted(p.name for p in store.arm_dir("arm").iterdir()) == ["gen-00001", "gen-00002"]
    store.close()


def test_the_lock_is_a_flock_on_the_lock_file(tmp_path: Path) -> None:
    """`is_running` and `exclusive` agree with any process that flocks `.lock`."""
    store = RunStore.create(tmp_path, "collapse.gaussian", {}, 0, "test")
    with (store.run_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert store.is_running()
    assert not store.is_running()
    store.close()
