"""The run store as the command line shows it: broken and damaged runs are one-line errors,
`runs` lists every run folder, and `gc` frees only what no command needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfimprove.cli import main
from selfimprove.core.store import RunStore
from tests.core.test_store_integrity import break_run, mark_running, small_run, zero_a_page_of

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
    assert cli(tmp_path, "runs") == 0
    rows = table_rows(capsys.readouterr().out)
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
