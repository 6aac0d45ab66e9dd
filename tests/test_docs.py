"""The documentation site builds offline with warnings as errors, and its references are
generated: the command line from the parser, the config from the models' descriptions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from selfimprove.cli import _parser
from selfimprove.core.config import field_docs
from selfimprove.experiments import EXPERIMENTS
from tests.conftest import REPO


def test_the_site_builds_strict_with_generated_references(tmp_path: Path) -> None:
    site = tmp_path / "site"
    quiet = {"NO_MKDOCS_2_WARNING": "true", "DISABLE_MKDOCS_2_WARNING": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **quiet},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (site / "reference" / "cli" / "index.html").read_text()
    commands = next(a for a in _parser()._actions if a.dest == "command").choices
    assert commands and all(f"selfimprove {name}" in cli for name in commands)  # type: ignore[union-attr]
    config = (site / "reference" / "config" / "index.html").read_text()
    for experiment in EXPERIMENTS:
        assert experiment.kind in config
        for doc in field_docs(experiment.config):
            assert doc.path in config, (experiment.kind, doc.path)
    for page in ("loops/collapse", "loops/selfplay", "loops/star", "loops/distillation"):
        text = (site / page / "index.html").read_text()
        assert "claim" in text and "<img" in text, page
    every = "".join(p.read_text() for p in site.rglob("*.html"))
    assert not re.search(r"""<(?:link|script)[^>]+(?:href|src)=["']https?://""", every)
