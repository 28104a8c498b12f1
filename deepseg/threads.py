"""UMAP without side effects on torch's thread count.

umap-learn runs on numba. numba's OpenMP threading layer shares the OpenMP runtime with torch's
CPU kernels: the first parallel numba call sets that runtime's thread count to numba's own (the
number of cores), so a process that asked torch for one thread computes every later fit with
two or more, silently, and gives other labels for the same seed. It also keeps its threads
spinning after UMAP returns, which slows later torch fits several-fold on a small machine.
numba's workqueue layer has neither effect.

:func:`import_umap` makes the workqueue layer numba's default (a user's own
``NUMBA_THREADING_LAYER`` wins), even when numba or umap was imported before deepseg, as long as
no parallel numba code has run yet. :func:`keep_torch_threads` restores torch's thread count
after a UMAP fit or transform, whatever layer runs it.

The workqueue layer is not thread-safe: parallel numba code (UMAP without a seed, the density
baselines' unseeded UMAP space, the report's map) must not run from several Python threads at
once in one process; numba aborts the process if it does. deepseg runs them one at a time; a
program that calls them from threads can set ``NUMBA_THREADING_LAYER=omp`` (and give up the
thread-count guarantee) or ``tbb``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

#: numba's threading layer unless the user names another (``NUMBA_THREADING_LAYER``)
THREADING_LAYER = "workqueue"


def prefer_workqueue() -> None:
    """Make numba's default threading layer the workqueue, unless the user chose one."""
    chosen = os.environ.setdefault("NUMBA_THREADING_LAYER", THREADING_LAYER)
    numba = sys.modules.get("numba")
    # imported before: its config read the environment without us. Only its own default is
    # replaced (a layer set in code stays), and only until parallel numba code has run.
    if numba is not None and numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = chosen


def import_umap() -> Any:
    """The ``umap`` module, with numba's threading layer chosen first (ImportError if absent)."""
    prefer_workqueue()
    import umap

    return umap


@contextlib.contextmanager
def keep_torch_threads() -> Iterator[None]:
    """Restore torch's intra-op thread count on exit (when torch is imported): code running on
    numba's OpenMP layer may change it."""
    torch = sys.modules.get("torch")
    before = None if torch is None else torch.get_num_threads()
    try:
        yield
    finally:
        if torch is not None and before is not None and torch.get_num_threads() != before:
            torch.set_num_threads(before)
