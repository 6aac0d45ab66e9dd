"""The shipped recipes, found without importing any experiment (so `--help` stays fast):
each YAML file under `configs/` with its `kind` and the first line of its header comment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_KIND = re.compile(r"^kind:\s*([\w.]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Recipe:
    path: Path
    kind: str
    summary: str


def find_recipes(root: Path) -> list[Recipe]:
    """Every recipe under `root`, by path; a file without a `kind:` line (the tour's) is none."""
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
        recipes.append(Recipe(path, kind.group(1), header[0] if header else ""))
    return recipes
