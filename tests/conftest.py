"""Shared fixtures: where the real datasets are (skip cleanly when they are absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("DEEPSEG_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return shared_data_dir()


def require_data(*parts: str) -> Path:
    """The path of a shared dataset, or skip the test when it is absent."""
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared dataset not available: {path}")
    return path


@pytest.fixture(autouse=True)
def _embedding_cache_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sentence embeddings are cached in a fresh folder per test, never in the user's cache."""
    monkeypatch.setenv("DEEPSEG_CACHE_DIR", str(tmp_path_factory.mktemp("embedding-cache")))
