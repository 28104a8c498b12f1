"""Fit the candidate methods of ``model=auto`` on the suite's datasets and keep their partitions.

For each dataset of a suite (``suite=small`` by default) and each seed, every candidate method
runs once with the suite's default features, exactly as ``deepseg-suite`` runs it, and its own
labels are saved with the autoencoder's embedding of the data (the space that ae_kmeans
clusters) into ``OUT/<dataset>.npz``. ``scripts/bench_auto.py`` then scores label-free choices
over these partitions without fitting anything again. Labels are stored to score the choices,
never to make them.

    python scripts/collect_partitions.py --out PARTITIONS_DIR [--suite small] [--only wine glass]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from deepseg.cli.common import config_dir
from deepseg.features.pipeline import FeaturePipeline
from deepseg.tasks.common import to_container
from deepseg.tasks.run import load_dataset, resolve_n_clusters, run_one
from deepseg.tasks.suite import benchmark_config, selected_datasets, skip_reason

METHODS = ["kmeans", "gmm", "agglomerative", "spectral", "ae_kmeans", "dec", "idec"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--suite", default="small")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="*", default=METHODS)
    parser.add_argument("--override", nargs="*", default=[])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="suite", overrides=[f"suite={args.suite}", *args.override])
    if args.only:
        cfg.only = args.only
    available = {**to_container(cfg.baseline), **to_container(cfg.model or {})}
    args.out.mkdir(parents=True, exist_ok=True)
    for key, entry in selected_datasets(cfg).items():
        if skip_reason(entry):
            print(key, "skipped:", skip_reason(entry), flush=True)
            continue
        bench = benchmark_config(cfg, entry)
        dataset = load_dataset(to_container(bench.data))
        X = FeaturePipeline(**to_container(bench.features)).fit_transform(dataset)
        k = resolve_n_clusters(bench.n_clusters, dataset)
        saved: dict[str, np.ndarray] = {"y": np.asarray(dataset.labels), "X": X}
        for seed in args.seeds:
            cache: dict = {}
            for method in args.methods:
                kept: dict = {}
                start = time.perf_counter()
                row = run_one(X, dataset, method, available[method], k, seed, "singletons",
                              cache, keep=kept)  # fmt: skip
                if row["status"] != "ok":
                    print(key, method, seed, "failed:", row["error"], flush=True)
                    continue
                saved[f"{method}/{seed}"] = kept["labels"]
                saved[f"seconds:{method}/{seed}"] = np.array(time.perf_counter() - start)
                if method == "ae_kmeans":
                    saved[f"latent/{seed}"] = kept["estimator"].transform(X)
                print(key, method, seed, f"acc={row['acc']:.3f}", flush=True)
        np.savez_compressed(args.out / f"{key}.npz", **saved)


if __name__ == "__main__":
    main()
