"""Shared fixtures: where the real datasets are (skip cleanly when they are absent)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _own_outputs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own ``paths.output_dir`` (run dirs and job stores): no test resumes
    another's jobs, and none writes into the checkout."""
    monkeypatch.setenv("DEEPSEG_OUTPUT_DIR", str(tmp_path_factory.mktemp("outputs")))


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


@pytest.fixture(autouse=True, scope="session")
def _embedding_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Sentence embeddings are cached in one folder of the test session (shared by the console
    scripts the tests start), never in the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPSEG_CACHE_DIR", str(tmp_path_factory.mktemp("embedding-cache")))
        yield


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every socket connection and name lookup fails, and the Hugging Face offline switches are
    unset: what runs under it must need no network on its own."""
    import socket

    def blocked(*args: object, **kwargs: object) -> None:
        raise OSError("network blocked by the test")

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket.socket, "connect", blocked)
    monkeypatch.setattr(socket.socket, "connect_ex", blocked)
    monkeypatch.setattr(socket, "create_connection", blocked)
    monkeypatch.setattr(socket, "getaddrinfo", blocked)
