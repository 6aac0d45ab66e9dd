"""Bad input, tried as a careless user and an attacker would: every case is one line on
stderr, exit 2, no traceback, nothing written. The named cases are the ones the hardening
review reproduced (tracebacks, an out-of-memory kill, values accepted silently); the fuzz
tests throw random values at every config field of every recipe, and random arguments at
the command line."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfimprove.cli import main
from selfimprove.core.config import field_docs, read_yaml
from selfimprove.experiments import experiment_of
from tests.conftest import CONFIGS

RECIPES = sorted(p for p in CONFIGS.rglob("*.yaml") if p.name != "tour.yaml")
C = {name: str(CONFIGS / name) for name in ("collapse/gaussian.yaml", "games/tictactoe.yaml")}
GAUSSIAN, TICTACTOE = C["collapse/gaussian.yaml"], C["games/tictactoe.yaml"]


def cli(args: list[str], runs: Path) -> tuple[int, str, str]:
    """Runs the CLI in this process: (exit code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(["--runs-dir", str(runs), *args])
        except SystemExit as done:  # argparse's --help / usage errors
            code = int(done.code or 0)
    return code, stdout.getvalue(), stderr.getvalue()


def assert_refused(code: int, err: str, runs: Path, message: str = "") -> None:
    assert code == 2, err
    assert err.startswith("selfimprove: error:"), err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert not runs.exists() or not any(runs.iterdir()), "a refused command left files"


@contextlib.contextmanager
def empty_folder() -> Iterator[Path]:
    """A scratch working directory that must stay empty."""
    with tempfile.TemporaryDirectory() as tmp:
        here = Path.cwd()
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(here)
        left = sorted(p.name for p in Path(tmp).iterdir() if p.name != "runs")
        assert not left, f"files left behind: {left}"


def written(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


CASES: list[tuple[str, list[str], str]] = [
    ("kind a list", ["run", GAUSSIAN, "--set", "kind=[a]"], "unknown experiment"),
    (
        "a spread that overflows (was an OverflowError traceback)",
        [
            "run",
            str(CONFIGS / "collapse/gmm.yaml"),
            "--set",
            "component_std=1.3407807929942597e+154",
        ],
        "cannot be built",
    ),
    ("seed -1", ["run", GAUSSIAN, "--set", "seed=-1"], "seed"),
    ("seed 2**70", ["run", GAUSSIAN, "--set", f"seed={2**70}"], "seed"),
    ("num_seeds 1e13", ["run", GAUSSIAN, "--set", f"num_seeds={10**13}"], "GiB available"),
    (
        "samples 1e9",
        ["run", GAUSSIAN, "--set", f"arms.0.samples_per_generation={10**9}"],
        "GiB available",
    ),
    ("monitor 1e12", ["run", GAUSSIAN, "--set", f"monitor_samples={10**12}"], "GiB available"),
    (
        "simulations 1e9",
        ["run", TICTACTOE, "--set", f"self_play.num_simulations={10**9}"],
        "GiB available",
    ),
    (
        "a 1e8-wide student (was a torch traceback)",
        ["run", str(CONFIGS / "distill/low_data.yaml"), "--set", "arms.0.hidden=[100000000]"],
        "GiB available",
    ),
    (
        "games 1e9 (was an out-of-memory kill)",
        ["run", TICTACTOE, "--set", f"self_play.games_per_generation={10**9}"],
        "GiB available",
    ),
    (
        "STaR heads 3",
        ["run", str(CONFIGS / "reasoning/star.yaml"), "--set", "model.heads=3"],
        "not a multiple of heads 3",
    ),
    (
        "STaR 40 digits",
        ["run", str(CONFIGS / "reasoning/star.yaml"), "--set", "train_digits=[40]"],
        "train_digits.0",
    ),
    (
        "STaR rationale longer than the context",
        ["run", str(CONFIGS / "reasoning/star_quick.yaml"), "--set", "train_digits=[1,2,3,4]"],
        "model.context is 64",
    ),
    ("play --simulations -5", ["play", "connect4", "--run", "x", "--simulations", "-5"], "-5"),
    ("show --rows 0", ["show", "x", "--rows", "0"], "--rows"),
    ("an unknown command", ["bogus"], "invalid choice"),
    ("an unknown flag", ["runs", "--fast"], "unrecognized arguments"),
    (
        "noise_scale inf (was stored as NULL)",
        ["run", str(CONFIGS / "collapse/policies.yaml"), "--set", "arms.0.policy.noise_scale=.inf"],
        "finite number",
    ),
    (
        "hidden [0] (was accepted)",
        ["run", str(CONFIGS / "distill/low_data.yaml"), "--set", "arms.0.hidden=[0]"],
        "hidden.0",
    ),
    ("temperature nan", ["run", GAUSSIAN, "--set", "arms.0.policy.temperature=.nan"], "finite"),
    (
        "a surrogate in a path (found by the long fuzz: was a UnicodeEncodeError traceback)",
        ["run", TICTACTOE, "--set", 'evaluation.pons_table="\\udcff"'],
        "\\udcff is not a file",
    ),
]


@pytest.mark.parametrize(("name", "args", "message"), CASES, ids=[c[0] for c in CASES])
def test_each_reported_case_is_one_line_and_exit_2(
    tmp_path: Path, name: str, args: list[str], message: str
) -> None:
    runs = tmp_path / "runs"
    code, _, err = cli(args, runs)
    assert_refused(code, err, runs, message)


def test_bad_files_are_one_line_and_exit_2(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    files = {
        "binary": (os.urandom(2000) + b"\xff\xfe", "not a text file"),
        "5,000 deep": (b"a: " + b"[" * 5000 + b"]" * 5000, "nested deeper than 32"),
        "200 deep, block style": (
            "".join(f"{'  ' * i}k{i}:\n" for i in range(200)).encode(),
            "nested deeper than 32",
        ),
        "a duplicate key (was: last wins)": (
            b"kind: collapse.gaussian\nseed: 1\nseed: 2\n",
            "duplicate key 'seed' at line 3",
        ),
        "10 MB": (b"kind: collapse.gaussian\n" + b"#" * 10**7, "a config is at most"),
    }
    for content, message in files.values():  # keys: what each file is
        code, _, err = cli(["run", written(tmp_path, "bad.yaml", content)], runs)
        assert_refused(code, err, runs, message)


def test_a_deep_override_value_is_refused(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    code, _, err = cli(["run", GAUSSIAN, "--set", "seed=" + "[" * 3000 + "]" * 3000], runs)
    assert_refused(code, err, runs, "nested deeper")


def test_runs_dir_that_is_a_file_and_out_paths_that_cannot_be_written(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for args in (["runs"], ["run", GAUSSIAN]):
        code, _, err = cli(args, a_file)
        assert code == 2 and "not a folder" in err and len(err.splitlines()) == 1
    runs = tmp_path / "runs"
    code, _, err = cli(["export", "x", "--out", str(tmp_path / "no" / "k.jsonl")], runs)
    assert_refused(code, err, runs, "does not exist")
    code, _, err = cli(["export", "x", "--out", str(tmp_path)], runs)
    assert_refused(code, err, runs, "is a folder")


def test_a_runs_dir_the_file_system_refuses_is_one_line(tmp_path: Path) -> None:
    """Found in review: `--runs-dir /proc/nope run ...` was a FileNotFoundError traceback."""
    code, _, err = cli(["run", TICTACTOE], Path("/proc/selfimprove-nope"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "/proc/selfimprove-nope" in err


def test_a_missing_runs_dir_lists_nothing_and_says_where_it_looked(tmp_path: Path) -> None:
    code, out, err = cli(["runs"], tmp_path / "missing" / "runs")
    assert code == 0 and out == ""
    assert err == f"no runs in {tmp_path / 'missing' / 'runs'}; `--runs-dir` names another folder\n"
    assert not (tmp_path / "missing").exists()


def test_check_validates_and_builds_without_writing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    code, out, err = cli(["run", TICTACTOE, "--check"], runs)
    assert code == 0, err
    assert out.startswith("ok: games.alphazero") and "GiB at peak" in out
    assert not runs.exists()


def test_every_loop_estimates_its_memory_and_every_recipe_fits_an_8_gib_machine() -> None:
    """Each experiment's config estimates its peak (none relies on the base's 0), and the
    check would refuse no shipped recipe on a laptop with 8 GiB available."""
    from selfimprove.core.config import LoopConfig
    from selfimprove.core.memory import SHARE
    from selfimprove.experiments import EXPERIMENTS, load_config

    for experiment in EXPERIMENTS:
        assert experiment.config.memory_bytes is not LoopConfig.memory_bytes, experiment.kind
    for recipe in RECIPES:
        needed = load_config(recipe).memory_bytes()
        assert 0 < needed < SHARE * 8 * 2**30, (recipe, needed)


# --- fuzzing ---------------------------------------------------------------------------


def _paths(recipe: Path) -> list[str]:
    kind = read_yaml(recipe)["kind"]
    return [d.path.replace("[]", ".0") for d in field_docs(experiment_of(kind, "t").config)]


PATHS = {recipe: _paths(recipe) for recipe in RECIPES}

VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["0", "1", "-1", "1e400", "10**9", f"{10**13}", f"{2**63}", f"{2**64}"]),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda x: (
            ".nan"
            if math.isnan(x)
            else (".inf" if x > 0 else "-.inf")
            if math.isinf(x)
            else repr(x)
        )
    ),
    st.sampled_from(["null", "true", "~", "[]", "{}", "[0]", "[-1]", "[1, 1, 1]", "''", "{a: 1}"]),
    st.text(max_size=12).map(json.dumps),
    st.lists(st.integers(min_value=-5, max_value=10**10), max_size=4).map(json.dumps),
    st.sampled_from(["[" * 40 + "]" * 40, "&a [*a]", "!!python/object:os.system x", "\x00"]),
)


def _fuzz_override(recipe: Path, path: str, value: str) -> None:
    with empty_folder() as here:
        runs = here / "runs"
        code, _, err = cli(["run", str(recipe), "--set", f"{path}={value}", "--check"], runs)
        assert code in (0, 2), (code, err)
        if code == 2:
            assert_refused(code, err, runs)
        assert not runs.exists()


@st.composite
def _overrides(draw: st.DrawFn) -> tuple[Path, str, str]:
    recipe = draw(st.sampled_from(RECIPES))
    return recipe, draw(st.sampled_from(PATHS[recipe])), draw(VALUES)


FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(FUZZ, derandomize=True)  # make test: the same examples every run


@settings(QUICK, max_examples=300)
@given(_overrides())
def test_fuzz_config_fields_are_valid_or_one_line(case: tuple[Path, str, str]) -> None:
    _fuzz_override(*case)


@pytest.mark.slow
@settings(FUZZ, max_examples=5000)
@given(_overrides())
def test_fuzz_config_fields_long(case: tuple[Path, str, str]) -> None:
    _fuzz_override(*case)


WORDS = st.sampled_from(
    [
        "run",
        "resume",
        "runs",
        "show",
        "report",
        "play",
        "export",
        "--rows",
        "--provenance",
        "--run",
        "--simulations",
        "--first",
        "--out",
        "--arm",
        "--set",
        "--explain",
        "--check",
        "connect4",
        "tictactoe",
        "chess",
        "x",
        "-5",
        "0",
        "1e9",
        "..",
        "/",
        "",
        "--",
        "-h",
    ]
)
ARGV = st.lists(st.one_of(WORDS, st.text(max_size=8)), max_size=6).filter(
    lambda argv: "tour" not in argv  # no word reaches a real recipe, so `run` cannot start one
)


RUNS_DIRS = st.one_of(
    st.just("runs"),
    st.sampled_from(["/proc/nope", "/proc/self/status", "/dev/null", "/", "."]),
    st.text(min_size=1, max_size=8).filter(lambda t: "\x00" not in t),
)


def _listing(folder: Path) -> list[str] | None:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else None


def _fuzz_argv(argv: list[str], runs_dir: str) -> None:
    with empty_folder() as here:
        runs = here / runs_dir  # an absolute runs_dir replaces `here`
        before = _listing(runs)
        code, _, err = cli(argv, runs)
        assert code in (0, 2), (argv, code, err)
        if code == 2:
            assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert _listing(runs) in (before, []), "a command wrote into the runs folder"


@settings(QUICK, max_examples=300)
@given(ARGV, RUNS_DIRS)
def test_fuzz_command_lines_are_handled_or_one_line(argv: list[str], runs_dir: str) -> None:
    _fuzz_argv(argv, runs_dir)


@pytest.mark.slow
@settings(FUZZ, max_examples=5000)
@given(ARGV, RUNS_DIRS)
def test_fuzz_command_lines_long(argv: list[str], runs_dir: str) -> None:
    _fuzz_argv(argv, runs_dir)


UNBOUNDED = {"alarms.below", "alarms.above", "arms.start_mean", "evaluation.ladder_anchors.elo"}
"""Numbers that may be any finite value (thresholds, a mean, a rating)."""


def test_every_number_in_every_config_has_a_lower_bound_and_is_finite() -> None:
    from annotated_types import Ge, Gt
    from pydantic import BaseModel

    from selfimprove.core.config import ConfigModel, _nested_model
    from selfimprove.experiments import EXPERIMENTS

    missing: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        assert issubclass(model, ConfigModel) and model.model_config.get("allow_inf_nan") is False
        for name, info in model.model_fields.items():
            nested, _ = _nested_model(info.annotation)
            if nested is not None:
                walk(nested, f"{prefix}{name}.")
            elif info.annotation in (int, float, int | None, float | None):
                bounded = any(isinstance(m, Ge | Gt) for m in info.metadata)
                if not bounded and f"{prefix}{name}" not in UNBOUNDED:
                    missing.append(f"{model.__name__}.{name}")

    for experiment in EXPERIMENTS:
        walk(experiment.config, "")
    assert not missing, missing


def test_a_line_break_in_user_text_stays_on_one_line(tmp_path: Path) -> None:
    """Found by the command-line fuzz: a path with a line break made a two-line error."""
    runs = tmp_path / "runs"
    code, _, err = cli(["run", "0\nsecond line\u2028\x1b[31m"], runs)
    assert_refused(code, err, runs, "config file not found: 0\\nsecond line\\u2028\\x1b[31m")
    code, _, err = cli(["show", "x", "--rows", "1\n2"], runs)
    assert_refused(code, err, runs, "--rows")
