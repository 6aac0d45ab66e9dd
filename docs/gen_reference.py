"""Generated pages of the documentation site (run by mkdocs-gen-files at build time): the
command-line reference from the parser, the config reference from the config models' field
descriptions, and the list of shipped recipes. Nothing here is written by hand."""

from __future__ import annotations

import argparse

import mkdocs_gen_files

from selfimprove.cli import _parser
from selfimprove.core.config import field_docs
from selfimprove.experiments import EXPERIMENTS
from selfimprove.recipes import find_recipes


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def cli_page() -> str:
    parser = _parser()
    parser.prog = "selfimprove"
    lines = ["# Command line", "", "Generated from the parser (`selfimprove.cli`).", ""]
    lines += ["```", parser.format_help().rstrip(), "```", ""]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        lines += [f"## `selfimprove {name}`", "", "```", sub.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def config_page() -> str:
    lines = [
        "# Config reference",
        "",
        "Every field of every experiment kind, generated from the config models' field "
        "descriptions (`selfimprove run --explain KIND` prints the same table). A recipe sets "
        "any of them; `--set a.b=c` overrides one.",
        "",
    ]
    for experiment in sorted(EXPERIMENTS, key=lambda e: e.kind):
        lines += [f"## `{experiment.kind}`", "", experiment.summary, ""]
        lines += ["| field | type | default | description |", "|---|---|---|---|"]
        for doc in field_docs(experiment.config):
            lines.append(
                f"| `{doc.path}` | {_cell(doc.type)} | {_cell(doc.default)} "
                f"| {_cell(doc.description)} |"
            )
        lines.append("")
    return "\n".join(lines)


def recipes_page() -> str:
    lines = [
        "# Recipes",
        "",
        "The recipes that ship with the package; `selfimprove run NAME` runs one from any "
        "folder, `selfimprove recipes` lists them.",
        "",
        "| recipe | kind | what it runs |",
        "|---|---|---|",
    ]
    for recipe in find_recipes():
        lines.append(f"| `{recipe.name}` | `{recipe.kind}` | {_cell(recipe.summary)} |")
    return "\n".join(lines) + "\n"


for path, page in (
    ("reference/cli.md", cli_page()),
    ("reference/config.md", config_page()),
    ("reference/recipes.md", recipes_page()),
):
    with mkdocs_gen_files.open(path, "w") as file:
        file.write(page)
