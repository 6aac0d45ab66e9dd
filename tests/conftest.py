"""Shared test settings: one torch thread (when torch is installed), paths to shared data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

if importlib.util.find_spec("torch") is not None:
    import torch

    torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "src" / "selfimprove" / "recipes"


@pytest.fixture
def configs() -> Path:
    return CONFIGS
