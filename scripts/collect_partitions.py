"""Fit the candidate methods of ``model=auto`` on a suite's datasets and keep their partitions.

For each dataset of a suite (``suite=dev`` by default), each seed and each method, the method
runs once with the suite's default features, exactly as ``deepseg-suite`` runs it, and its own
labels are saved. ``scripts/bench_auto_lodo.py`` then scores label-free choices over these
partitions without fitting anything again. Labels are stored to score the choices, never to
make them.

Layout (resumable: a file that exists is not computed again, so a killed run goes on where it
stopped)::

    OUT/<dataset>/data.npz            y (the reference labels), X (the features), k
    OUT/<dataset>/<method>__<seed>.npz labels, seconds (latent: a deep method's embedding;
                                       manifold: n2d's UMAP embedding)

The deep methods of one dataset and seed share one pretrained autoencoder, as in the benchmark,
so their times exclude it (it is in ``pretrain_seconds``). ``<model>_umap`` runs a deep model
with ``init=umap`` (DEC or IDEC started from the manifold, the issue's manifold family).

    python scripts/collect_partitions.py --out PARTITIONS_DIR [--suite dev] [--only wine glass]
        [--seeds 0 1 2] [--methods kmeans dec n2d dec_umap]
"""

from __future__ import annotations

import argparse
import copy
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

METHODS = ["kmeans", "gmm", "agglomerative", "spectral", "ae_kmeans", "dec", "idec", "n2d"]
DEEP = {"ae_kmeans", "dec", "idec", "n2d", "dec_umap", "idec_umap"}


def method_config(available: dict, method: str) -> dict:
    """The config of a method; ``<model>_umap`` is that model with ``init=umap``."""
    if method in available:
        return available[method]
    if method.endswith("_umap") and method[: -len("_umap")] in available:
        node = copy.deepcopy(available[method[: -len("_umap")]])
        node["init"] = "umap"
        return node
    raise SystemExit(f"Unknown method {method!r}; known: {sorted(available)}")


def save(path: Path, **arrays: np.ndarray) -> None:
    """Write atomically, so a killed run leaves no half file that would count as done."""
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--suite", default="dev")
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
    configs = {m: method_config(available, m) for m in args.methods}
    for key, entry in selected_datasets(cfg).items():
        if skip_reason(entry):
            print(key, "skipped:", skip_reason(entry), flush=True)
            continue
        folder = args.out / key
        todo = [
            (seed, m)
            for seed in args.seeds
            for m in args.methods
            if not (folder / f"{m}__{seed}.npz").exists()
        ]
        if not todo:
            continue
        bench = benchmark_config(cfg, entry)
        dataset = load_dataset(to_container(bench.data))
        X = FeaturePipeline(**to_container(bench.features)).fit_transform(dataset)
        k = resolve_n_clusters(bench.n_clusters, dataset)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "data.npz").exists():
            # the reference labels as integer codes (a class column may hold strings)
            y = np.unique(np.asarray(dataset.labels).astype(str), return_inverse=True)[1]
            save(folder / "data.npz", y=y, X=X, k=np.array(k))
        for seed in args.seeds:
            cache: dict = {}
            for method in args.methods:
                if (seed, method) not in todo:
                    continue
                kept: dict = {}
                start = time.perf_counter()
                row = run_one(X, dataset, method, configs[method], k, seed, "singletons",
                              cache, keep=kept)  # fmt: skip
                if row["status"] != "ok":
                    print(key, method, seed, "failed:", row["error"], flush=True)
                    continue
                arrays = {
                    "labels": np.asarray(kept["labels"]),
                    # the method's own time (the shared pretraining is in pretrain_seconds)
                    "seconds": np.array(row["seconds"]),
                    "wall_seconds": np.array(time.perf_counter() - start),
                    "pretrain_seconds": np.array(row.get("pretrain_seconds", np.nan)),
                }
                estimator = kept["estimator"]
                if method in DEEP and hasattr(estimator, "transform"):
                    # the candidate's own space (its autoencoder's embedding, the manifold for
                    # n2d), where label-free scores of every partition can be computed
                    arrays["latent"] = np.asarray(estimator.transform(X), dtype=np.float32)
                if getattr(estimator, "embedding_", None) is not None:
                    arrays["manifold"] = np.asarray(estimator.embedding_, dtype=np.float32)
                save(folder / f"{method}__{seed}.npz", **arrays)
                print(key, method, seed, f"acc={row['acc']:.3f}",
                      f"{arrays['seconds']:.1f}s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
