"""Shared fixtures: where the real datasets are (skip cleanly when they are absent)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Thread pools of one thread in every test process and every command a test starts. The run
#: spreads its files over 2 processes on 2 cores (pytest-xdist, addopts): with each process's
#: BLAS, OpenMP and torch pools at their default of 2 threads, 4 threads fight over 2 cores, and
#: the default run took 6 min 3 s (11 min 21 s of CPU); with one thread each it took 3 min 4 s
#: (5 min 41 s of CPU), every test passing in both (docs/benchmarks.md). A variable already set
#: is left as it is.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def pytest_configure(config: pytest.Config) -> None:
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    threads = int(os.environ["OMP_NUM_THREADS"])
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)  # BLAS and OpenMP pools already loaded in this process
    import torch

    torch.set_num_threads(threads)


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
