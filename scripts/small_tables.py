"""The small real tables of Gagolewski's suite (uci battery) that the pretraining benchmarks use:
every one at most 4 batches of 256 rows, so that pretraining's small-data rules decide them."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

TABLES = ["wine", "glass", "sonar", "ecoli", "ionosphere", "wdbc"]


def load(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(X standardised as float32, labels, number of classes) of one table, from
    ``DEEPSEG_DATA_DIR`` or ``../shared/data``."""
    from sklearn.preprocessing import StandardScaler

    root = Path(os.environ.get("DEEPSEG_DATA_DIR", "../shared/data"))
    root = root / "clustering_benchmarks_v1" / "uci"
    with gzip.open(root / f"{name}.data.gz") as fh:
        X = np.loadtxt(fh)
    with gzip.open(root / f"{name}.labels0.gz") as fh:
        y = np.loadtxt(fh).astype(int)
    return StandardScaler().fit_transform(X).astype(np.float32), y, len(np.unique(y))
