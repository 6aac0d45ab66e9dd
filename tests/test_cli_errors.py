"""Every command of the command line, given bad arguments as a careless user would: each case
is one line on stderr that starts `selfimprove: error:`, exit code 2, no traceback, nothing on
stdout, and no file written or changed (a scratch working directory stays empty, an existing
run folder keeps every byte). Mistyped names get a "did you mean"."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfimprove.cli import KINDS, _parser, main
from tests.conftest import CONFIGS

GAUSSIAN = str(CONFIGS / "collapse/gaussian.yaml")
SELF_PLAY = str(CONFIGS / "games/tictactoe.yaml")
RAY_ON = ["run", "--set", "executor.kind=ray"]
TINY = ["--set", "generations=2", "--set", "num_seeds=4", "--set", "monitor_every=1"]

CASES: list[tuple[str, list[str], str]] = [
    # the program itself
    ("no command", [], "required: command"),
    ("a mistyped command", ["rnu"], "did you mean 'run'?"),
    ("--runs-dir without a value", ["--runs-dir"], "expected one argument"),
    # run
    ("run: no recipe", ["run"], "give a recipe"),
    ("run: a missing recipe", ["run", "no/such.yaml"], "config file not found"),
    ("run: a folder as recipe", ["run", str(CONFIGS)], str(CONFIGS)),
    ("run: a mistyped key", ["run", GAUSSIAN, "--set", "generashuns=3"], "'generations'?"),
    ("run: a nested mistyped key", ["run", GAUSSIAN, "--set", "arms.0.polcy.mix=x"], "'policy'?"),
    ("run: a wrong type", ["run", GAUSSIAN, "--set", "generations=many"], "valid integer"),
    ("run: no KEY=VALUE", ["run", GAUSSIAN, "--set", "generations"], "expected KEY=VALUE"),
    ("run: an index too far", ["run", GAUSSIAN, "--set", "arms.9.name=x"], "not an index"),
    ("run: a mistyped kind", ["run", "--explain", "collapse.gausian"], "'collapse.gaussian'?"),
    ("run: a mistyped flag", ["run", GAUSSIAN, "--chek"], "did you mean '--check'?"),
    ("run: an executor a loop cannot use", [*RAY_ON[:1], GAUSSIAN, *RAY_ON[1:]], "one process"),
    (
        "run: a Ray cluster nobody runs",
        [*RAY_ON[:1], SELF_PLAY, *RAY_ON[1:], "--set", "executor.address=127.0.0.1:1"],
        "no Ray cluster at '127.0.0.1:1'",
    ),
    (
        "run: a Ray address that is none",
        [*RAY_ON[:1], SELF_PLAY, *RAY_ON[1:], "--set", "executor.address=nowhere"],
        "is not host:port",
    ),
    # recipes
    ("recipes: an argument", ["recipes", "collapse"], "unrecognized arguments: collapse"),
    # resume
    ("resume: no run", ["resume"], "required: run"),
    ("resume: an unknown run", ["resume", "no-such-run"], "no run 'no-such-run'"),
    # runs
    ("runs: an unknown flag", ["runs", "--all"], "unrecognized arguments: --all"),
    # show
    ("show: an unknown run", ["show", "no-such-run"], "no run 'no-such-run'"),
    ("show: --rows 0", ["show", "x", "--rows", "0"], "0 is not between 1 and 1000000"),
    ("show: --rows a word", ["show", "x", "--rows", "many"], "'many' is not a whole number"),
    ("show: a mistyped flag", ["show", "x", "--provenence"], "did you mean '--provenance'?"),
    # report
    ("report: no run", ["report"], "required: run"),
    ("report: an unknown run", ["report", "../../etc"], "no run '../../etc'"),
    # play
    ("play: a mistyped game", ["play", "conect4", "--run", "x"], "did you mean 'connect4'?"),
    ("play: no agent ships", ["play", "othello6"], "no agent ships for othello6"),
    (
        "play: --first robot",
        ["play", "connect4", "--run", "x", "--first", "robot"],
        "(choose from ",
    ),
    ("play: --simulations 0", ["play", "tictactoe", "--run", "x", "--simulations", "0"], "0 is"),
    ("play: an unknown run", ["play", "tictactoe", "--run", "no-such-run"], "no run"),
    # export
    ("export: an unknown run", ["export", "no-such-run"], "no run 'no-such-run'"),
    ("export: --out in no folder", ["export", "x", "--out", "no/k.jsonl"], "does not exist"),
    ("export: --out a folder", ["export", "x", "--out", "."], "is a folder"),
    # tour
    ("tour: a missing tour file", ["tour", "--file", "no/tour.yaml"], "config file not found"),
    ("tour: a mistyped flag", ["tour", "--quik"], "did you mean '--quick'?"),
    ("tour: --only that matches no study", ["tour", "--only", "chess"], "no study matches"),
    ("tour: a recipe as tour file", ["tour", "--file", GAUSSIAN], "studies: Field required"),
    # gc
    ("review: an unknown run", ["review", "no-such-run"], "no run"),
    ("review: a mistyped flag", ["review", "x", "--adjudcate"], "did you mean '--adjudicate'?"),
    ("audit: an unknown run", ["audit", "no-such-run"], "no run"),
    ("audit: a mistyped flag", ["audit", "x", "--trainde", "a:1"], "did you mean '--trained'?"),
    ("serve: a port out of range", ["serve", "--port", "70000"], "is not a port"),
    ("serve: a port that is a word", ["serve", "--port", "http"], "is not a port"),
    ("serve-model: an unknown model", ["serve-model", "gpt-7", "--port", "0"], "no chat model"),
    ("serve-model: --batch-size 0", ["serve-model", "tiny-random", "--batch-size", "0"], "0 is"),
    ("refine: an unknown model", ["refine", "--model", "gpt-7"], "no chat model"),
    (
        "run: an SL-CAI generator that is no chat model",
        ["run", "constitutional/sl_cai_quick", "--set", "generator=gpt-7"],
        "no chat model 'gpt-7'",
    ),
    (
        "run: an RL-CAI labeller folder with no model in it",
        ["run", "constitutional/rl_cai_quick", "--set", "feedback=hf:/tmp"],
        "not a Hugging Face model folder",
    ),
    ("refine: a bad prompt slice", ["refine", "--prompts", "red_team:dev"], "KIND:SPLIT"),
    ("refine: --rounds 0", ["refine", "--rounds", "0"], "0 is"),
    (
        "export: a mistyped format",
        ["export", "x", "--format", "prodigi"],
        "did you mean 'prodigy'?",
    ),
    ("gc: --keep-last 0", ["gc", "--keep-last", "0"], "keep at least 1 snapshot"),
    ("gc: --keep-last a word", ["gc", "--keep-last", "x"], "invalid int value"),
    ("gc: a mistyped flag", ["gc", "--dryrun"], "did you mean '--dry-run'?"),
]


def cli(args: list[str]) -> tuple[int, str, str]:
    """The CLI in this process: (exit code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(args)
        except SystemExit as done:  # argparse's usage errors
            code = int(done.code or 0)
    return code, stdout.getvalue(), stderr.getvalue()


def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def assert_refused(code: int, out: str, err: str, message: str) -> None:
    assert code == 2, (code, err)
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("selfimprove: error: "), err
    assert "Traceback" not in err and out == "", (out, err)
    assert message in err, err


@pytest.mark.parametrize(("name", "args", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_arguments_are_one_line_exit_2_and_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths (runs/, kept.jsonl) land here, if anywhere
    code, out, err = cli(args)
    assert_refused(code, out, err, message)
    assert list(tmp_path.iterdir()) == [], f"{name}: files left behind"


def test_the_cases_drive_every_command() -> None:
    assert len(CASES) >= 30
    subparsers = next(a for a in _parser()._actions if a.dest == "command")
    commands = set(subparsers.choices)  # type: ignore[arg-type]
    driven = {args[0] for _, args, _ in CASES if args and args[0] in commands}
    assert driven == commands, commands - driven


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    runs = tmp_path_factory.mktemp("cli") / "runs"
    code, out, err = cli(["--runs-dir", str(runs), "run", GAUSSIAN, *TINY])
    assert code == 0, err
    return runs, out.strip()


RUN_CASES: list[tuple[str, list[str], str]] = [
    ("show: metrics that match none", ["show", "RUN", "--metrics", "collapse/sigmaa*"], "none"),
    ("export: a run that keeps no text", ["export", "RUN", "--out", "k.jsonl"], "RUN"),
    ("play: a run of another kind", ["play", "connect4", "--run", "RUN"], "collapse.gaussian"),
]


@pytest.mark.parametrize(("name", "args", "message"), RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_bad_arguments_about_an_existing_run_change_none_of_its_files(
    one_run: tuple[Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    args: list[str],
    message: str,
) -> None:
    runs, run_id = one_run
    monkeypatch.chdir(tmp_path)
    before = files_under(runs)
    args = [a.replace("RUN", run_id) for a in args]
    code, out, err = cli(["--runs-dir", str(runs), *args])
    assert_refused(code, out, err, message.replace("RUN", run_id))
    assert files_under(runs) == before, f"{name}: the run folder changed"
    assert list(tmp_path.iterdir()) == [], f"{name}: files left behind"


def test_did_you_mean_reads_choices_quoted_or_not() -> None:
    """Python 3.12.8+ lists argparse's choices without quotes; the hint must not depend on it."""
    for listed in ("'run', 'recipes', 'resume'", "run, recipes, resume"):
        code, _, err = cli_error(f"argument command: invalid choice: 'rnu' (choose from {listed})")
        assert code == 2 and "did you mean 'run'?" in err


def cli_error(message: str) -> tuple[int, str, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            _parser().error(message)
        except SystemExit as done:
            return int(done.code or 0), "", stderr.getvalue()
    raise AssertionError("error() returned")


def test_the_kinds_help_names_are_the_experiments() -> None:
    from selfimprove.experiments import KINDS as EXPERIMENT_KINDS

    assert sorted(EXPERIMENT_KINDS) == list(KINDS)


def test_help_answers_in_under_a_second_and_imports_no_torch() -> None:
    """`--help` parses arguments only: no experiment, no torch (they took 3-14 s)."""
    for args in (["--help"], ["run", "--help"]):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "selfimprove", *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        seconds = time.perf_counter() - started
        assert result.returncode == 0 and "usage: selfimprove" in result.stdout
        imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
        assert not imported & {"torch", "numpy", "pydantic", "selfimprove.experiments"}
        assert seconds < 1.0, seconds
    assert "  collapse/gaussian  " in result.stdout and "  games.alphazero\n" in result.stdout


def test_ray_auto_that_points_at_a_dead_cluster_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`auto` resolves as Ray does (here `RAY_ADDRESS`); Ray itself retried for minutes."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    args = [*RAY_ON[:1], SELF_PLAY, *RAY_ON[1:], "--set", "executor.address=auto"]
    assert_refused(*cli(args), "no Ray cluster at '127.0.0.1:1'")
    assert list(tmp_path.iterdir()) == []
