"""Gagolewski's Benchmark Suite for Clustering Algorithms (version 1), from local files.

A battery is a folder (``uci``, ``fcps``, ``sipu``, ``wut``, ``graves``, ``other``) under the
suite's root; each dataset ``NAME`` in it is ``NAME.data.gz`` (a whitespace-separated matrix, one
row a point), one or more ``NAME.labelsK.gz`` (one integer label a line; several files are several
valid reference partitions) and ``NAME.txt`` (its description). The reference is ``labels0``
unless ``labels`` chooses another. The files are read from disk only: nothing is downloaded.

In a reference partition the label 0 marks noise points (points that belong to no cluster), where a
battery uses it; the classes are 1..k. The suite's own protocol clusters every point and scores a
partition on the non-noise points only. deepseg's metrics know noise only in *predicted* labels
(-1, see :mod:`deepseg.metrics`), so the loader decides what a noise point of the reference is:
``noise="drop"`` (the default) leaves these points out of the dataset, so they are neither
clustered nor scored; ``noise="class"`` keeps them as one more reference class (label 0), which
the metrics then score like any other class. ``n_clusters`` is the number of non-noise classes
either way.

Reference: M. Gagolewski, A framework for benchmarking clustering algorithms, SoftwareX 20 (2022)
101270, https://clustering-benchmarks.gagolewski.com.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from deepseg.data.base import ColumnRoles, Dataset, closest_match

logger = logging.getLogger(__name__)

BATTERIES = ("uci", "fcps", "sipu", "wut", "graves", "other")
NOISE_MODES = ("drop", "class")
NOISE_LABEL = 0
_DATA_SUFFIX = ".data.gz"


def available_datasets(root: str | Path, battery: str) -> list[str]:
    """The dataset names of ``battery`` under ``root`` (those with a ``NAME.data.gz``).

    Raises:
        FileNotFoundError: naming the missing folder and the batteries that are there.
    """
    root = Path(root)
    folder = root / battery
    if not folder.is_dir():
        if not root.is_dir():
            raise FileNotFoundError(
                f"Clustering benchmark suite not found: '{root}' does not exist. Set data.path to "
                "the folder of the batteries (uci, fcps, ...), or DEEPSEG_DATA_DIR to the folder "
                "that holds clustering_benchmarks_v1/."
            )
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        listed = ", ".join(present) or "none"
        raise FileNotFoundError(
            f"Battery '{battery}' not found: '{folder}' does not exist."
            f"{closest_match(battery, present)} Batteries in '{root}': {listed}."
        )
    return sorted(p.name[: -len(_DATA_SUFFIX)] for p in folder.glob(f"*{_DATA_SUFFIX}"))


def read_labels(path: str | Path) -> np.ndarray:
    """One ``NAME.labelsK.gz`` file: an int64 array of shape (n_samples,).

    Raises:
        FileNotFoundError: when the file is missing.
        ValueError: naming the file, when a line is not an integer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Reference labels not found: '{path}' does not exist.")
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except ValueError as exc:
        raise ValueError(f"'{path}': the labels are not one integer a line ({exc}).") from exc
    if values.ndim != 1:
        raise ValueError(f"'{path}': expected one label a line, got {values.shape[1]} columns.")
    if not np.all(values == np.round(values)) or (values < 0).any():
        raise ValueError(f"'{path}': the labels must be integers >= 0 (0 marks noise).")
    return values.astype(np.int64)


def read_matrix(path: str | Path) -> np.ndarray:
    """One ``NAME.data.gz`` file: a float array of shape (n_samples, n_features).

    Raises:
        FileNotFoundError: when the file is missing.
        ValueError: naming the file, when it is not a numeric matrix, or holds NaN or infinity.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Data matrix not found: '{path}' does not exist.")
    try:
        X = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"'{path}': not a whitespace-separated numeric matrix ({exc}).") from exc
    if X.size == 0:
        raise ValueError(f"'{path}' is empty: it has no rows.")
    if not np.isfinite(X).all():
        row = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
        raise ValueError(f"'{path}': row {row + 1} holds a NaN or infinite value.")
    return X


def load_clustering_benchmark(
    path: str | Path,
    battery: str = "uci",
    name: str = "wine",
    labels: int = 0,
    noise: str = "drop",
) -> Dataset:
    """One dataset of Gagolewski's clustering benchmark suite, as a table of numeric columns.

    The columns ``x0 .. x{d-1}`` are declared numeric, so the feature pipeline treats them like
    any numeric table column (``features.numeric``).

    Args:
        path: the suite's root folder, which holds the battery folders.
        battery: the battery folder, e.g. "uci".
        name: the dataset (``NAME.data.gz``); also the dataset's name in results.
        labels: which reference partition to score against (``NAME.labels{labels}.gz``).
        noise: what reference label 0 (noise) becomes: "drop" (rows left out) or "class" (kept
            as one more class); see the module docstring.

    Raises:
        FileNotFoundError: naming the missing file or folder, and the names that are available.
        ValueError: on a bad option or a malformed file.
    """
    if noise not in NOISE_MODES:
        raise ValueError(
            f"The 'noise' parameter of clustering_benchmarks must be one of {NOISE_MODES}. "
            f"Got {noise!r} instead."
        )
    if isinstance(labels, bool) or not isinstance(labels, int) or labels < 0:
        raise ValueError(
            "The 'labels' parameter of clustering_benchmarks must be an int in the range "
            f"[0, inf) (0 reads NAME.labels0.gz). Got {labels!r} instead."
        )
    folder = Path(path) / battery
    names = available_datasets(path, battery)
    data_file = folder / f"{name}{_DATA_SUFFIX}"
    if not data_file.is_file():
        raise FileNotFoundError(
            f"Dataset '{name}' not found in battery '{battery}': '{data_file}' does not exist."
            f"{closest_match(name, names)} Datasets in '{folder}': {', '.join(names) or 'none'}."
        )
    label_file = folder / f"{name}.labels{labels}.gz"
    if not label_file.is_file():
        present = sorted(p.name for p in folder.glob(f"{name}.labels*.gz"))
        raise FileNotFoundError(
            f"Reference labels of '{battery}/{name}' not found: '{label_file}' does not exist. "
            f"Label files of {name}: {', '.join(present) or 'none'}."
        )
    X = read_matrix(data_file)
    y = read_labels(label_file)
    if len(y) != len(X):
        raise ValueError(
            f"'{battery}/{name}': {len(X)} rows in {data_file.name} but {len(y)} labels in "
            f"{label_file.name}."
        )
    ids = np.arange(len(X))
    is_noise = y == NOISE_LABEL
    if is_noise.any():
        if noise == "drop":
            X, y, ids = X[~is_noise], y[~is_noise], ids[~is_noise]
        logger.info(
            "%s/%s: %d of %d points are reference noise (label 0): %s",
            battery, name, int(is_noise.sum()), len(is_noise),
            "left out" if noise == "drop" else "kept as one more class",
        )  # fmt: skip
    n_clusters = int(np.unique(y[y != NOISE_LABEL]).size)
    if n_clusters < 2:
        raise ValueError(
            f"'{label_file}': the reference has {n_clusters} non-noise class(es); a clustering "
            "benchmark needs at least 2."
        )
    columns = [f"x{j}" for j in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns)
    return Dataset(
        name=name,
        ids=ids,
        frame=frame,
        labels=y,
        roles=ColumnRoles(numeric=columns),
        n_clusters=n_clusters,
    )
