"""The command line as a user meets it: one-line errors with exit 2, and a full happy path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from selfimprove.cli import main
from tests.conftest import CONFIGS

TINY = ["--set", "generations=6", "--set", "num_seeds=8", "--set", "monitor_every=3"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "selfimprove", *args], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "no/such/file.yaml"], "config file not found"),
        (
            ["run", str(CONFIGS / "collapse/gaussian.yaml"), "--set", "generashuns=3"],
            "generashuns: unknown key",
        ),
        (
            ["run", str(CONFIGS / "collapse/gaussian.yaml"), "--set", "generations=many"],
            "generations: Input should be a valid integer",
        ),
        (
            ["run", str(CONFIGS / "collapse/gaussian.yaml"), "--set", "nonsense"],
            "expected KEY=VALUE",
        ),
        (
            [
                "run",
                str(CONFIGS / "games/connect4.yaml"),
                "--set",
                "evaluation.pons_table=/nope.tsv",
            ],
            "evaluation.pons_table: /nope.tsv is not a file: it is Pascal Pons",
        ),
        (
            ["run", str(CONFIGS / "games/tictactoe.yaml"), "--set", "game=chess"],
            "game: Input should be",
        ),
        (["play", "connect4", "--run", "no-such-run"], "no run 'no-such-run'"),
        (["show", "no-such-run"], "no run 'no-such-run'"),
        (["resume", "no-such-run"], "no run 'no-such-run'"),
        (["report", "no-such-run"], "no run 'no-such-run'"),
        (["run", "--explain", "reasoning.stars"], "unknown experiment 'reasoning.stars'"),
        (["run"], "give a recipe"),
        (["run", str(CONFIGS / "collapse/gaussian.yaml"), "--set", "seed=-1"], "seed: Input"),
        (
            ["run", str(CONFIGS / "reasoning/star_quick.yaml"), "--set", "model.heads=3"],
            "width 64 is not a multiple of heads 3",
        ),
        (
            [
                "run",
                str(CONFIGS / "reasoning/star_quick.yaml"),
                "--set",
                "gate.kind=no_regression",
                "--set",
                "gate.metric=null",
            ],
            "a no_regression gate needs a metric",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli("--runs-dir", str(tmp_path), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: collapse.gaussian\narms: [\n")
    result = run_cli("--runs-dir", str(tmp_path), "run", str(bad))
    assert result.returncode == 2 and "not valid YAML" in result.stderr


def test_run_show_runs_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = str(tmp_path)
    assert main(["--runs-dir", runs, "run", str(CONFIGS / "collapse/policies.yaml"), *TINY]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert (tmp_path / run_id / "report.html").is_file()
    assert main(["--runs-dir", runs, "runs"]) == 0
    assert run_id[:20] in capsys.readouterr().out
    assert main(["--runs-dir", runs, "show", run_id]) == 0
    shown = capsys.readouterr().out
    assert "10% fresh real" in shown and "collapse/sigma_median" in shown
    assert main(["--runs-dir", runs, "report", run_id]) == 0
    assert capsys.readouterr().out.strip().endswith("report.html")


def test_play_rejects_illegal_input_and_finishes_a_game(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny = [
        "--set",
        "generations=1",
        "--set",
        "self_play.games_per_generation=8",
        "--set",
        "self_play.num_simulations=8",
        "--set",
        "train.steps=5",
        "--set",
        "evaluation.num_simulations=8",
        "--set",
        "evaluation.random_games=4",
    ]
    assert (
        main(["--runs-dir", str(tmp_path), "run", str(CONFIGS / "games/tictactoe.yaml"), *tiny])
        == 0
    )
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    moves = "\n".join(["0", "abc", *[str(c) for c in range(1, 10)] * 2]) + "\n"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "selfimprove",
            "--runs-dir",
            str(tmp_path),
            "play",
            "tictactoe",
            "--run",
            run_id,
            "--simulations",
            "16",
            "--solver",
        ],
        input=moves,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "not a legal move: '0'" in result.stdout and "not a legal move: 'abc'" in result.stdout
    assert "agent plays" in result.stdout
    assert result.stdout.rstrip().endswith(("X wins", "O wins", "draw"))
    wrong = run_cli("--runs-dir", str(tmp_path), "play", "connect4", "--run", run_id)
    assert wrong.returncode == 2 and "not connect4" in wrong.stderr


def test_a_reader_that_goes_away_gets_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whichever write meets the closed pipe first, there is no traceback: rich handles its
    own writes, main() the rest (input()'s prompt; that path depends on timing, so this test
    cannot force it)."""
    tiny = [
        "--set",
        "generations=0",
        "--set",
        "evaluation.num_simulations=4",
        "--set",
        "evaluation.random_games=2",
    ]
    assert (
        main(["--runs-dir", str(tmp_path), "run", str(CONFIGS / "games/tictactoe.yaml"), *tiny])
        == 0
    )
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "selfimprove",
            "--runs-dir",
            str(tmp_path),
            "play",
            "tictactoe",
            "--run",
            run_id,
            "--simulations",
            "4",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    child.stdout.readline()
    child.stdout.close()  # like `selfimprove play ... | head -1`: the next write has no reader
    child.stdin.write(b"5\nq\n")
    child.stdin.close()
    stderr = child.stderr.read().decode()
    child.stderr.close()
    assert "Traceback" not in stderr, stderr
    assert child.wait() == 1  # stopped early, quietly (rich's convention for a broken pipe)


def test_run_explain_prints_every_field_of_a_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--explain", "reasoning.star"]) == 0
    out = capsys.readouterr().out
    for field in (
        "verifier",
        "gate.tolerance",
        "model.heads",
        "train.seed_steps",
        "alarms[].metric",
    ):
        assert field in out, field
    assert "whole" not in out and "working" in out


def test_progress_bars_show_wall_time_an_eta_and_why_an_arm_stopped() -> None:
    import io

    from rich.console import Console

    from selfimprove.cli.progress import progress_bars
    from selfimprove.core.engine import ArmProgress

    screen = io.StringIO()
    with progress_bars(Console(file=screen, width=160, force_terminal=False)) as update:
        for generation in range(4):
            update(ArmProgress("r", "replace", generation, 10, "running"))
        update(ArmProgress("r", "replace", 3, 10, "halted"))
        update(ArmProgress("r", "accumulate", 10, 10, "finished"))
    text = screen.getvalue()
    assert "replace (halted by a guard at generation 3)" in text and "3/10" in text
    assert "accumulate" in text and "10/10" in text
    assert "wall 0:00:00" in text and "eta" in text


def test_show_metrics_recipes_and_arm_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = str(tmp_path / "runs")
    tiny = ["--set", "generations=1", "--set", "self_play.games_per_generation=4"]
    tiny += ["--set", "self_play.num_simulations=4", "--set", "train.steps=3"]
    tiny += ["--set", "evaluation.num_simulations=4", "--set", "evaluation.random_games=2"]
    assert main(["--runs-dir", runs, "run", str(CONFIGS / "games/tictactoe.yaml"), *tiny]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["--runs-dir", runs, "runs"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if run_id in line)
    assert row.rstrip(" │").endswith(" 1")  # AlphaZero has one arm (it said 0: no `arms` key)
    assert main(["--runs-dir", runs, "show", run_id]) == 0
    assert "more metrics: `--metrics list` names them" in capsys.readouterr().err
    assert main(["--runs-dir", runs, "show", run_id, "--metrics", "eval/*"]) == 0
    shown = capsys.readouterr()
    assert "eval/value_error" in shown.out and "train/" not in shown.out  # it was dropped
    assert "eval/value_error: " in shown.err  # the legend: each column's title and unit
    assert main(["--runs-dir", runs, "show", run_id, "--metrics", "list"]) == 0
    assert "eval/value_error" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)  # the recipes ship with the package: any folder lists them
    assert main(["recipes"]) == 0
    listed = capsys.readouterr().out
    rows = [line.split("│")[1].strip() for line in listed.splitlines() if line.startswith("│")]
    assert "collapse/gaussian" in rows and "tour" not in rows
    assert listed.count("games.alphazero") == 3


def test_text_that_looks_like_markup_is_shown_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found in review: an arm named `acc [/b] x` ended the run in a markup traceback, and a
    claim's `[never, never, 2]` vanished from the terminal."""
    runs = str(tmp_path)
    arm = "arms=[{policy: {mix: accumulate}, fit: mle, samples_per_generation: 20, name: 'acc [/b] x'}]"
    recipe = str(CONFIGS / "collapse/gaussian.yaml")
    tiny = ["--set", "generations=3", "--set", "num_seeds=4", "--set", arm]
    assert main(["--runs-dir", runs, "run", recipe, *tiny]) == 0
    run_id = capsys.readouterr().out.strip()
    assert main(["--runs-dir", runs, "show", run_id]) == 0
    assert "acc [/b] x (finished)" in capsys.readouterr().out
    from selfimprove.cli.commands import _print_claims
    from selfimprove.core.records import Claim

    _print_claims([Claim("one by one", "without [never, never, 2]", False)])
    assert "without [never, never, 2]" in capsys.readouterr().err
