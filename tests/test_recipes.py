"""The shipped recipes: they travel with the package, are addressed by name from any folder,
and every one of them loads (validated, not run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfimprove.core.config import ConfigError
from selfimprove.experiments import load_config
from selfimprove.recipes import ROOT, TOUR, find_recipes, recipe_path
from tests.conftest import REPO

NAMES = [r.name for r in find_recipes()]
NEEDS_SHARED = {"games/connect4"}  # reads ../shared/data, which is not ours to ship


def test_every_yaml_but_the_tour_is_a_recipe_with_a_kind_and_a_summary() -> None:
    files = sorted(p for p in ROOT.rglob("*.yaml") if p != TOUR)
    assert [r.path for r in find_recipes()] == files and len(files) == 44
    assert all(r.summary and "." in r.kind for r in find_recipes())


@pytest.mark.parametrize("name", NAMES)
def test_every_recipe_loads_by_name(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # where ../shared/data is, as in CI
    config = load_config(name)
    assert config.kind == next(r.kind for r in find_recipes() if r.name == name)


def test_recipes_load_from_any_folder_and_shared_data_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in NAMES:
        if name not in NEEDS_SHARED:
            load_config(name)
    with pytest.raises(ConfigError) as refused:
        load_config("games/connect4")
    message = str(refused.value)
    assert (
        "pons_move_scores.tsv is not a file" in message and "--set evaluation.pons_table" in message
    )
    assert "\n" not in message
    assert load_config("games/connect4", ["evaluation.pons_table=null"]).kind == "games.alphazero"


def test_a_recipe_is_found_by_path_name_or_old_path(tmp_path: Path) -> None:
    own = tmp_path / "mine.yaml"
    own.write_text("kind: collapse.gaussian\n")
    assert recipe_path(own) == own
    gaussian = ROOT / "collapse" / "gaussian.yaml"
    for text in ("collapse/gaussian", "collapse/gaussian.yaml", "configs/collapse/gaussian.yaml"):
        assert recipe_path(text) == gaussian
    with pytest.raises(LookupError, match="did you mean 'collapse/gaussian'"):
        recipe_path("collapse/gausian")
