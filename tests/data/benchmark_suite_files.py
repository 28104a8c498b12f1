"""Writing small datasets in the format of Gagolewski's clustering benchmark suite."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def write_dataset(
    folder: Path, name: str, X: np.ndarray, labels: np.ndarray | list[np.ndarray] | None
) -> None:
    """``NAME.data.gz`` (whitespace-separated rows), ``NAME.labels<K>.gz`` and ``NAME.txt``."""
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / f"{name}.data.gz", "wt") as fh:
        for row in np.atleast_2d(X):
            fh.write(" ".join(f"{v:.6g}" for v in row) + "\n")
    partitions = [] if labels is None else labels if isinstance(labels, list) else [labels]
    for k, y in enumerate(partitions):
        with gzip.open(folder / f"{name}.labels{k}.gz", "wt") as fh:
            fh.write("".join(f"{int(v)}\n" for v in y))
    (folder / f"{name}.txt").write_text(f"{name}: a generated test dataset\n")


def blobs(n_per_class: int, n_features: int, n_classes: int, seed: int) -> tuple:
    """Well separated Gaussian blobs; labels 1..n_classes, as the suite numbers its classes."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, size=(n_classes, n_features))
    X = np.concatenate([c + rng.normal(0, 1, size=(n_per_class, n_features)) for c in centres])
    y = np.repeat(np.arange(1, n_classes + 1), n_per_class)
    return X, y
