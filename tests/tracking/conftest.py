"""MLflow for the tracking tests: telemetry off, and one migrated SQLite tracking store that
each test copies (MLflow's first migration of an empty database takes about 7 s)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # before anything imports MLflow


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tracking = pytest.importorskip("mlflow.tracking", reason="the `mlflow` extra is not installed")
    database = tmp_path_factory.mktemp("mlflow") / "template.db"
    tracking.MlflowClient(tracking_uri=f"sqlite:///{database}").search_experiments()
    return database


@pytest.fixture
def mlflow_uri(migrated_store: Path, tmp_path: Path) -> str:
    """A fresh tracking store for this test: `sqlite:///.../mlflow.db`."""
    database = tmp_path / "mlflow.db"
    shutil.copyfile(migrated_store, database)
    return f"sqlite:///{database}"
