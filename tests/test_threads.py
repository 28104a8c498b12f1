"""UMAP leaves torch's thread count alone (deepseg.threads)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deepseg.threads import THREADING_LAYER, keep_torch_threads, prefer_workqueue


def test_keep_torch_threads_restores_a_changed_count() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with keep_torch_threads():
            torch.set_num_threads(2)  # what numba's OpenMP layer does to the shared runtime
        assert torch.get_num_threads() == 1
        with pytest.raises(RuntimeError), keep_torch_threads():
            torch.set_num_threads(2)
            raise RuntimeError("a failed fit")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_prefer_workqueue_reaches_a_numba_imported_before(monkeypatch: pytest.MonkeyPatch) -> None:
    numba = pytest.importorskip("numba")
    # set, then removed: monkeypatch restores the variable as it was, whatever prefer_workqueue
    # writes into the environment
    monkeypatch.setenv("NUMBA_THREADING_LAYER", "unset")
    monkeypatch.delenv("NUMBA_THREADING_LAYER")
    monkeypatch.setattr(numba.config, "THREADING_LAYER", "default")
    prefer_workqueue()
    assert numba.config.THREADING_LAYER == THREADING_LAYER
    # a user's own choice wins: through the environment (numba read it on import), or in code
    monkeypatch.setenv("NUMBA_THREADING_LAYER", "omp")
    monkeypatch.setattr(numba.config, "THREADING_LAYER", "omp")
    prefer_workqueue()
    assert numba.config.THREADING_LAYER == "omp"
    monkeypatch.delenv("NUMBA_THREADING_LAYER")
    monkeypatch.setattr(numba.config, "THREADING_LAYER", "tbb")
    prefer_workqueue()
    assert numba.config.THREADING_LAYER == "tbb"


@pytest.mark.slow
def test_umap_imported_before_deepseg_leaves_one_torch_thread() -> None:
    """The case that made a benchmark's n2d labels depend on the test order: umap imported
    first (numba on its OpenMP layer), then an N2D-style fit with one torch thread."""
    pytest.importorskip("umap")
    code = (
        "import umap, numba, torch, numpy as np\n"
        "torch.set_num_threads(1)\n"
        "from deepseg.deep.init import make_umap_gmm\n"
        "X = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)\n"
        "make_umap_gmm(3, 0).fit(X)\n"
        "print(torch.get_num_threads(), numba.threading_layer())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["1", THREADING_LAYER]
