"""Self-training (deepseg.refine) on the development suite: ACC of K-Means before and after.

Every dataset goes through the default feature pipeline (text: sentence embeddings with the
packaged all-MiniLM-L6-v2, from the embedding cache after the first run); K-Means (10 restarts)
gives the partition that self-training refines. Rows go to a JSON-lines file.

    PYTHONPATH=$PWD python scripts/bench_selftrain.py --out selftrain.jsonl --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

UCI = ["ecoli", "glass", "ionosphere", "sonar", "statlog", "wdbc", "wine", "yeast"]
DATASETS = ["tweet", "ag_news", *UCI, "digits", "synthetic_customers"]


def load(name: str, root: Path):
    from deepseg.data.clustering_benchmarks import load_clustering_benchmark
    from deepseg.data.images import load_digits
    from deepseg.data.synthetic import make_synthetic_customers
    from deepseg.data.table import load_text_corpus

    if name == "tweet":
        return load_text_corpus(root / "tweet" / "tweet.csv", text_columns=["text"], name=name)
    if name == "ag_news":
        return load_text_corpus(
            root / "ag_news" / "test.csv", text_columns=["title", "description"], name=name
        )
    if name == "digits":
        return load_digits()
    if name == "synthetic_customers":
        return make_synthetic_customers(n_samples=5000, n_clusters=6, random_state=0)
    return load_clustering_benchmark(root / "clustering_benchmarks_v1", "uci", name)


def features(data) -> np.ndarray:
    from omegaconf import OmegaConf

    import deepseg
    from deepseg.features.pipeline import FeaturePipeline

    cfg = OmegaConf.load(Path(deepseg.__file__).parent / "configs" / "features" / "default.yaml")
    return FeaturePipeline(**OmegaConf.to_container(cfg)).fit_transform(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--core-fraction", type=float, default=0.8)
    parser.add_argument("--C", type=float, default=0.1)
    parser.add_argument("--max-iter", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from sklearn.cluster import KMeans

    from deepseg.metrics import acc
    from deepseg.refine import self_train

    root = Path(os.environ.get("DEEPSEG_DATA_DIR", "../shared/data"))
    with args.out.open("a") as out:
        for name in args.datasets:
            data = load(name, root)
            start = time.perf_counter()
            X = features(data)
            feature_s = time.perf_counter() - start
            _, y = np.unique(data.labels, return_inverse=True)
            k = int(y.max()) + 1
            for seed in args.seeds:
                base = KMeans(k, n_init=10, random_state=seed).fit_predict(X)
                start = time.perf_counter()
                res = self_train(
                    X, base, core_fraction=args.core_fraction, C=args.C, max_iter=args.max_iter,
                    random_state=seed,
                )  # fmt: skip
                row = {
                    "dataset": name, "n": len(X), "k": k, "seed": seed,
                    "core_fraction": args.core_fraction, "C": args.C, "kmeans": acc(y, base),
                    "selftrain": acc(y, res.labels), "rounds": res.n_iter,
                    "selftrain_s": time.perf_counter() - start, "features_s": feature_s,
                    "clusters_after": len(np.unique(res.labels)),
                }  # fmt: skip
                out.write(json.dumps(row) + "\n")
                out.flush()
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
