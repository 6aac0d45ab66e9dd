"""The shipped recipes: YAML files in this folder, installed with the package, addressed by
name (`collapse/gaussian`) or by path (`./my.yaml`).

Found without YAML or any experiment (so `--help` stays fast): each file's `kind:` line and
the first line of its header comment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from selfimprove.core.names import did_you_mean

ROOT = Path(__file__).resolve().parent
TOUR = ROOT / "tour.yaml"
_KIND = re.compile(r"^kind:\s*([\w.]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Recipe:
    name: str  # e.g. collapse/gaussian
    path: Path
    kind: str
    summary: str


def find_recipes(root: Path = ROOT) -> list[Recipe]:
    """Every recipe under `root`, by name; a file without a `kind:` line (the tour) is none."""
    recipes = []
    for path in sorted(root.rglob("*.yaml")) if root.is_dir() else []:
        try:
            text = path.read_text(encoding="utf-8")[:4000]
        except (OSError, UnicodeDecodeError):
            continue
        kind = _KIND.search(text)
        if kind is None:
            continue
        header = [line.lstrip("# ").rstrip() for line in text.splitlines() if line.startswith("#")]
        name = path.relative_to(root).with_suffix("").as_posix()
        recipes.append(Recipe(name, path, kind.group(1), header[0] if header else ""))
    return recipes


def recipe_path(text: str | Path) -> Path:
    """A recipe's file: `text` itself when it names a file, else the shipped recipe of that
    name (`collapse/gaussian`, with or without `.yaml`). Raises `LookupError` with a
    one-line message (and a "did you mean") when it is neither."""
    given = Path(text)
    if given.is_file():
        return given
    name = str(text).removesuffix(".yaml").removeprefix("configs/")
    by_name = {r.name: r.path for r in find_recipes()}
    if name in by_name:
        return by_name[name]
    if name == "tour":
        return TOUR
    hint = did_you_mean(name, by_name) or "; `selfimprove recipes` lists them"
    raise LookupError(f"config file not found: {text} (no file, and no recipe of that name{hint})")
