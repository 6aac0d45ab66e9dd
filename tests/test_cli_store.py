"""The run store as the command line shows it: broken and damaged runs are one-line errors,
`runs` lists every run folder, and `gc` frees only what no command needs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from selfimprove.cli import main
from selfimprove.core.records import Decision, GenerationRecord
from selfimprove.core.store import RunStore
from selfimprove.experiments import parse_config, resume_run, start_run
from tests.core.test_store_integrity import break_run, mark_running, small_run, zero_a_page_of
from tests.tiny import tiny

BROKEN = ["empty", "no-run-row", "not-sqlite"]


def cli(runs_dir: Path, *args: str) -> int:
    return main(["--runs-dir", str(runs_dir), *args])


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("selfimprove: error: ")
    return line


@pytest.mark.parametrize("how", BROKEN)
@pytest.mark.parametrize(
    "command",
    [
        ["resume"],
        ["show"],
        ["report"],
        ["export", "--out", "kept.jsonl"],
        ["play", "tictactoe", "--run"],
    ],
)
def test_a_broken_run_folder_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str, command: list[str]
) -> None:
    run_dir = break_run(tmp_path, how)
    if command[0] == "export":
        command = ["export", run_dir.name, "--out", str(tmp_path / "kept.jsonl")]
    else:
        command = [*command, run_dir.name]
    assert cli(tmp_path, *command) == 2
    line = one_error_line(capsys)
    assert f"run {run_dir.name} is broken: " in line


def table_rows(text: str) -> dict[str, str]:
    """The rows of a printed table: first cell -> all cells joined by " | "."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells:
            rows[cells[0]] = " | ".join(cells)
    return rows


def test_runs_lists_every_run_folder_and_marks_broken_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = small_run(tmp_path, generations=2)
    broken = {how: break_run(tmp_path, how).name for how in BROKEN}
    (tmp_path / "not-a-run").mkdir()
    killed_start = tmp_path / "collapse-gaussian-20261206-000000-abcd"  # killed after mkdir
    killed_start.mkdir()
    assert cli(tmp_path, "runs") == 0
    rows = table_rows(capsys.readouterr().out)
    assert "broken: no run.sqlite" in rows[killed_start.name]
    assert "finished" in rows[good.name]
    assert "broken: run.sqlite is empty" in rows[broken["empty"]]
    assert "broken: run.sqlite has no run row" in rows[broken["no-run-row"]]
    assert "broken: run.sqlite is not a SQLite database" in rows[broken["not-sqlite"]]
    assert "not-a-run" not in rows


def test_runs_show_and_report_call_a_run_nobody_runs_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = small_run(tmp_path, stop_after=3)
    mark_running(run_dir)  # what a kill -9 leaves
    assert cli(tmp_path, "runs") == 0
    assert "collapse.gaussian | stopped" in table_rows(capsys.readouterr().out)[run_dir.name]
    assert cli(tmp_path, "show", run_dir.name) == 0
    assert "(stopped)" in capsys.readouterr().out
    assert cli(tmp_path, "report", run_dir.name) == 0
    assert "status <b>stopped</b>" in (run_dir / "report.html").read_text()
    store = RunStore.open(run_dir)
    with store.exclusive():
        assert cli(tmp_path, "runs") == 0
        assert "collapse.gaussian | running" in table_rows(capsys.readouterr().out)[run_dir.name]
    store.close()


@pytest.mark.parametrize("command", ["resume", "show", "report"])
def test_a_damaged_database_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    run_dir = small_run(tmp_path, generations=60, checkpoint_every=10, stop_after=40)
    zero_a_page_of(run_dir, "exhibits")  # nothing reads it on resume: only a check sees it
    assert cli(tmp_path, command, run_dir.name) == 2
    assert "run.sqlite is damaged" in one_error_line(capsys)


# -- gc ---------------------------------------------------------------------------------------


def gc_lines(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """run id -> what gc said about it."""
    lines = capsys.readouterr().out.strip().splitlines()
    return dict(line.split(": ", 1) for line in lines)


def folders(arm_dir: Path) -> list[str]:
    return sorted(p.name for p in arm_dir.iterdir())


def first_arm_dir(run_dir: Path) -> Path:
    store = RunStore.open(run_dir)
    try:
        return store.arm_dir(store.arms()[0][0])
    finally:
        store.close()


def metrics_of(run_dir: Path) -> dict[str, dict[int, dict[str, float]]]:
    store = RunStore.open(run_dir)
    try:
        return {arm: store.metrics(arm) for arm, _ in store.arms()}
    finally:
        store.close()


def test_gc_leaves_a_stopped_run_that_resumes_to_the_same_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = small_run(tmp_path / "whole", checkpoint_every=2)
    run_dir = small_run(tmp_path / "cut", checkpoint_every=2, stop_after=7)
    arm_dir = first_arm_dir(run_dir)
    assert folders(arm_dir) == ["gen-00004", "gen-00006"]
    shutil.copytree(arm_dir / "gen-00006", arm_dir / "gen-00008")  # written, never committed
    (arm_dir / ".gen-00010.tmp-99999").mkdir()  # a killed write
    (arm_dir / "gen-00002").mkdir()  # an interrupted prune
    assert cli(tmp_path / "cut", "gc") == 0
    said = gc_lines(capsys)[run_dir.name]
    assert said.startswith("freed ") and said.endswith(" bytes in 4 folders")
    assert folders(arm_dir) == ["gen-00006"]  # the one resume reads
    assert resume_run(run_dir).status == "finished"
    assert metrics_of(run_dir) == metrics_of(whole)


def test_gc_dry_run_and_keep_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = small_run(tmp_path, generations=6, checkpoint_every=1)
    arm_dir = first_arm_dir(run_dir)
    assert folders(arm_dir) == ["gen-00005", "gen-00006"]
    assert cli(tmp_path, "gc", "--dry-run") == 0
    assert gc_lines(capsys)[run_dir.name].startswith("would free ")
    assert folders(arm_dir) == ["gen-00005", "gen-00006"]
    assert cli(tmp_path, "gc", "--keep-last", "2") == 0
    assert gc_lines(capsys)[run_dir.name] == "freed 0 bytes in 0 folders"
    assert cli(tmp_path, "gc") == 0
    assert gc_lines(capsys)[run_dir.name].endswith(" bytes in 1 folders")
    assert folders(arm_dir) == ["gen-00006"]
    assert cli(tmp_path, "gc", "--keep-last", "0") == 2
    assert "--keep-last" in one_error_line(capsys)


def test_gc_skips_a_running_run_and_a_broken_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = small_run(tmp_path, generations=6, checkpoint_every=1, stop_after=4)
    broken = break_run(tmp_path, "no-run-row")
    arm_dir = first_arm_dir(run_dir)
    before = folders(arm_dir)
    store = RunStore.open(run_dir)
    with store.exclusive():
        assert cli(tmp_path, "gc") == 0
    store.close()
    said = gc_lines(capsys)
    assert said[run_dir.name] == "skipped: it is running"
    assert said[broken.name] == "skipped: broken: run.sqlite has no run row"
    assert folders(arm_dir) == before


def test_gc_keeps_what_export_and_report_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changes = {"checkpoint_every": 1, "arms": ["direct"]}  # the one that keeps text when tiny
    config = parse_config(tiny("reasoning.star", generations=2, **changes), "test")
    run_dir = start_run(config, tmp_path).run_dir
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    assert cli(tmp_path, "export", run_dir.name, "--out", str(before)) == 0
    capsys.readouterr()
    assert cli(tmp_path, "gc") == 0
    assert gc_lines(capsys)[run_dir.name].endswith(" bytes in 1 folders")
    assert cli(tmp_path, "export", run_dir.name, "--out", str(after)) == 0
    assert after.read_text() == before.read_text() != ""
    assert cli(tmp_path, "report", run_dir.name) == 0


def test_gc_keeps_what_play_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = parse_config(tiny("games.alphazero", generations=1, checkpoint_every=1), "test")
    run_dir = start_run(config, tmp_path).run_dir
    assert cli(tmp_path, "gc") == 0
    assert gc_lines(capsys)[run_dir.name].endswith(" bytes in 1 folders")
    monkeypatch.setattr("builtins.input", lambda prompt: "q")
    assert cli(tmp_path, "play", "tictactoe", "--run", run_dir.name) == 0
    assert "agent from generation 1" in capsys.readouterr().out


def test_gc_frees_nothing_a_finished_run_reports(tmp_path: Path) -> None:
    """Metrics, decisions and events live in the database, which gc never touches."""
    run_dir = small_run(tmp_path, generations=6, checkpoint_every=1)
    database = (run_dir / "run.sqlite").read_bytes()
    assert main(["--runs-dir", str(tmp_path), "gc"]) == 0
    assert (run_dir / "run.sqlite").read_bytes() == database


def test_gc_keeps_a_damaged_snapshot_and_the_good_one_before_it(tmp_path: Path) -> None:
    """A damaged newest snapshot is refused by resume with advice to delete it; gc must not
    have removed the older one that advice falls back to."""
    store = RunStore.create(tmp_path, "collapse.gaussian", {}, 0, "test")
    store.register_arms(["arm"])
    for generation in range(4):
        metrics = {"m": float(generation)}
        store.commit_generation(
            GenerationRecord("arm", generation, metrics, Decision("accept", ""))
        )
        store.save_snapshot("arm", generation, {"g": generation})
    (store.arm_dir("arm") / "gen-00003" / "snapshot.json").write_text("{}")
    assert store.unneeded_snapshots(keep_last=1) == []
    store.close()
