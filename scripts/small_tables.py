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


def compare(
    variants: dict[int, dict], key: str, seeds: list[int], tables: list[str]
) -> list[dict]:
    """ACC of K-Means (10 restarts, the reference row, ``key`` 0) and of ae_kmeans and dec for
    each variant: ``{value: keyword arguments of AEKMeans and DEC}``, recorded under ``key``.
    dec starts from ae_kmeans's pretrained network; ``pretrain_seconds`` is ae_kmeans's fit."""
    import time

    from sklearn.cluster import KMeans

    from deepseg import DEC, AEKMeans
    from deepseg.metrics import acc

    rows = []
    for name in tables:
        X, y, k = load(name)
        for seed in seeds:
            labels = KMeans(k, n_init=10, random_state=seed).fit_predict(X)
            rows.append({"table": name, "n": len(X), "seed": seed, "method": "kmeans", key: 0,
                         "acc": acc(y, labels)})  # fmt: skip
            for value, kwargs in variants.items():
                start = time.perf_counter()
                ae = AEKMeans(k, random_state=seed, **kwargs).fit(X)
                seconds = time.perf_counter() - start
                dec = DEC(k, pretrained=ae.autoencoder_, random_state=seed, **kwargs).fit(X)
                for method, est in (("ae_kmeans", ae), ("dec", dec)):
                    rows.append({"table": name, "n": len(X), "seed": seed, "method": method,
                                 key: value, "acc": acc(y, est.labels_),
                                 "pretrain_seconds": seconds})  # fmt: skip
            print(name, seed, "done", flush=True)
    return rows
