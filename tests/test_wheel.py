"""The package as a user installs it: a wheel built from this source, installed into a fresh
virtual environment outside the repository, run from an empty folder with no `configs/`.

The wheel is built without network (`pip wheel --no-build-isolation` with this environment's
setuptools); the fresh environment borrows this one's dependencies (torch and the rest) by a
path file, so that only `selfimprove` itself comes from the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import selfimprove
from tests.conftest import REPO

TINY_TICTACTOE = [
    "generations=1",
    "self_play.games_per_generation=8",
    "self_play.num_simulations=8",
    "train.steps=5",
    "evaluation.num_simulations=8",
    "evaluation.random_games=4",
]


def sh(argv: list[str | Path], cwd: Path) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with the wheel installed; returns its `bin/` folder."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy, so that building writes nothing into the repository
    shutil.copytree(
        REPO / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    wheels = root / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    sh([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source], root)
    (wheel,) = wheels.glob("selfimprove-*.whl")
    venv = root / "venv"
    sh([sys.executable, "-m", "venv", "--without-pip", venv], root)
    (site,) = venv.glob("lib/python3*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    sh(
        [*pip, "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index", wheel],
        root,
    )
    return venv / "bin"


def test_the_wheel_runs_recipes_by_name_and_the_tour_from_an_empty_folder(
    installed: Path, tmp_path: Path
) -> None:
    here = tmp_path / "elsewhere"
    here.mkdir()
    where = sh(
        [installed / "python", "-c", "import selfimprove; print(selfimprove.__file__)"], here
    )
    assert where.startswith(str(installed.parent)) and str(REPO) not in where
    cli = installed / "selfimprove"
    assert sh([cli, "--version"], here).strip() == f"selfimprove {selfimprove.__version__}"
    listed = sh([cli, "recipes"], here)
    assert "collapse/gaussian" in listed and "games/tictactoe" in listed
    overrides = [part for o in TINY_TICTACTOE for part in ("--set", o)]
    run_id = sh([cli, "run", "games/tictactoe", *overrides], here).strip()
    assert (here / "runs" / run_id / "report.html").is_file()
    page = Path(sh([cli, "tour", "--quick", "--only", "collapse/regression"], here).strip())
    assert page.parent == here / "runs" and page.is_file()
    assert "Left out by <code>--only</code>" in page.read_text()
    assert sorted(p.name for p in here.iterdir()) == ["runs"]  # no configs/, nothing else


def test_the_wheel_ships_the_agent_and_the_web_pages(installed: Path, tmp_path: Path) -> None:
    played = subprocess.run(
        [installed / "selfimprove", "play", "connect4", "--simulations", "4"],
        cwd=tmp_path,
        input="4\nq\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert played.returncode == 0, played.stderr[-2000:]
    assert "the shipped agent (run games-alphazero-" in played.stdout
    code = (
        "from importlib.resources import files; "
        "print(sorted(p.name for p in files('selfimprove.web').joinpath('templates').iterdir()))"
    )
    templates = sh([installed / "python", "-c", code], tmp_path)
    assert "review.html" in templates and "dashboard.html" in templates
