"""Fixtures the web tests share: a runs folder and the app serving it, one per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from selfimprove.web.server import background_server


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def server(runs: Path) -> Iterator[tuple[str, str]]:
    """The app on 127.0.0.1 (a free port): its base URL and token."""
    with background_server(runs) as (base, token):
        yield base, token
