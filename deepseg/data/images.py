"""Image benchmarks as matrices: scikit-learn's digits and MNIST from IDX files."""

from __future__ import annotations

import gzip
import logging
import struct
from pathlib import Path

import numpy as np

from deepseg.data.base import Dataset

logger = logging.getLogger(__name__)

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_digits(
    name: str = "digits",
    n_clusters: int = 10,
    n_samples: int | None = None,
    random_state: int = 0,
) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, pixel values 0..16).

    Args:
        name: dataset name.
        n_clusters: number of classes.
        n_samples: optional seeded random subset size, for quick runs.
        random_state: seed of the subset draw.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    X = bunch.data.astype(np.float32)
    y = bunch.target.astype(np.int64)
    ids = np.arange(len(X))
    if n_samples is not None and n_samples < len(X):
        idx = np.sort(np.random.default_rng(random_state).choice(len(X), n_samples, replace=False))
        X, y, ids = X[idx], y[idx], ids[idx]
    return Dataset(
        name=name,
        ids=ids,
        X=X,
        labels=y,
        n_clusters=n_clusters,
        feature_names=[f"pixel_{i}" for i in range(X.shape[1])],
    )


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a numpy array.

    Raises:
        FileNotFoundError: when neither ``path`` nor ``path + '.gz'`` exists.
        ValueError: when the file is not a valid IDX file.
    """
    path = Path(path)
    if not path.exists():
        gz = path.with_name(path.name + ".gz")
        if not gz.exists():
            raise FileNotFoundError(f"IDX file not found: '{path}' (nor '{gz.name}').")
        path = gz
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"'{path}' is not an IDX file: bad magic number.")
    dtype_code, ndim = data[2], data[3]
    dtypes: dict[int, str] = {
        0x08: "u1",
        0x09: "i1",
        0x0B: ">i2",
        0x0C: ">i4",
        0x0D: ">f4",
        0x0E: ">f8",
    }
    if dtype_code not in dtypes:
        raise ValueError(f"'{path}': unknown IDX data type 0x{dtype_code:02x}.")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.dtype(dtypes[dtype_code]), offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(
            f"'{path}' is truncated: expected {int(np.prod(shape))} values, got {arr.size}."
        )
    return arr.reshape(shape)


def load_mnist(
    path: str | Path,
    split: str = "all",
    n_samples: int | None = None,
    name: str = "mnist",
    n_clusters: int = 10,
    random_state: int = 0,
) -> Dataset:
    """MNIST from the four standard IDX files in directory ``path``.

    Args:
        path: directory holding the (optionally gzipped) IDX files.
        split: "train" (60,000), "test" (10,000) or "all" (70,000, train then test).
        n_samples: optional seeded random subset size, for quick runs.
        name: dataset name.
        n_clusters: number of classes.
        random_state: seed of the subset draw.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"MNIST directory not found: '{path}'. Set data.path to a folder with the IDX files."
        )
    if split not in ("train", "test", "all"):
        raise ValueError(f"The 'split' of mnist must be 'train', 'test' or 'all'. Got {split!r}.")
    parts = ["train", "test"] if split == "all" else [split]
    images, labels = [], []
    for part in parts:
        img_file, lab_file = _MNIST_FILES[part]
        images.append(read_idx(path / img_file))
        labels.append(read_idx(path / lab_file))
    X = np.concatenate(images).reshape(-1, 28 * 28)
    y = np.concatenate(labels).astype(np.int64)
    if len(X) != len(y):
        raise ValueError(f"MNIST in '{path}': {len(X)} images but {len(y)} labels.")
    ids = np.arange(len(X))
    if n_samples is not None and n_samples < len(X):
        idx = np.sort(np.random.default_rng(random_state).choice(len(X), n_samples, replace=False))
        X, y, ids = X[idx], y[idx], ids[idx]
    return Dataset(
        name=name,
        ids=ids,
        X=X,  # uint8: the pipeline scales it, keeping 70,000 x 784 small in memory
        labels=y,
        n_clusters=n_clusters,
        feature_names=[f"pixel_{i}" for i in range(X.shape[1])],
    )
