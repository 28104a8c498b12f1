"""The labels of every deep method on digits and synthetic_customers, for comparing two versions.

Fits each deep method with its defaults (seed ``--seed``) on the same feature matrices and writes
the labels to a JSON file. The matrices are built once and cached in ``--features`` (an ``.npz``),
so that two versions of the training code (for example ``main`` and a branch, each put first on
``PYTHONPATH``) are compared on identical input, whatever their feature code does. Run it with one
thread (``OMP_NUM_THREADS=1``) for both versions, then compare with ``--compare``.

Usage:
    OMP_NUM_THREADS=1 PYTHONPATH=/path/to/main python scripts/check_labels.py \
        --features labels_features.npz --out main.json
    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python scripts/check_labels.py \
        --features labels_features.npz --out branch.json
    python scripts/check_labels.py --compare main.json branch.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

DATASETS = ("digits", "synthetic_customers")
METHODS = ("dec", "idec", "dcn", "vade", "ae_kmeans", "ae_gmm", "n2d")


def features(path: Path) -> dict[str, tuple[np.ndarray, int]]:
    """The feature matrix and cluster count of each dataset, built once and cached in ``path``."""
    if path.exists():
        saved = np.load(path)
        return {name: (saved[name], int(saved[f"{name}_k"])) for name in DATASETS}
    from deepseg.data.images import load_digits
    from deepseg.data.synthetic import make_synthetic_customers
    from deepseg.features.pipeline import FeaturePipeline

    out: dict[str, tuple[np.ndarray, int]] = {}
    for name, data in (("digits", load_digits()), ("synthetic_customers",
                                                    make_synthetic_customers())):  # fmt: skip
        out[name] = (FeaturePipeline().fit_transform(data).astype(np.float32), data.n_clusters)
    np.savez(path, **{n: X for n, (X, _) in out.items()},
             **{f"{n}_k": np.array(k) for n, (_, k) in out.items()})  # fmt: skip
    return out


def estimator(method: str, k: int, seed: int):
    from deepseg.deep import AEGMM, DCN, DEC, IDEC, N2D, AEKMeans, VaDE

    classes = {"dec": DEC, "idec": IDEC, "dcn": DCN, "vade": VaDE, "ae_kmeans": AEKMeans,
               "ae_gmm": AEGMM, "n2d": N2D}  # fmt: skip
    return classes[method](n_clusters=k, random_state=seed)


def run(args: argparse.Namespace) -> None:
    import torch

    data = features(Path(args.features))
    results: dict = {"torch_threads": torch.get_num_threads(), "seed": args.seed, "labels": {}}
    for name, (X, k) in data.items():
        for method in args.methods:
            start = time.perf_counter()
            labels = estimator(method, k, args.seed).fit(X).labels_
            results["labels"][f"{name}/{method}"] = [int(v) for v in labels]
            print(f"{name}/{method}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    Path(args.out).write_text(json.dumps(results))


def compare(a: str, b: str) -> int:
    left, right = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
    if left["torch_threads"] != right["torch_threads"]:
        print(f"different thread counts: {left['torch_threads']} vs {right['torch_threads']}")
    differ = 0
    for key in sorted(set(left["labels"]) | set(right["labels"])):
        la, lb = left["labels"].get(key), right["labels"].get(key)
        if la is None or lb is None:
            print(f"{key}: only in one file")
            differ += 1
            continue
        same = la == lb
        changed = int(np.sum(np.asarray(la) != np.asarray(lb)))
        print(f"{key}: {'identical' if same else f'{changed} of {len(la)} labels differ'}")
        differ += not same
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default="labels_features.npz")
    parser.add_argument("--out", default="labels.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"))
    args = parser.parse_args()
    if args.compare:
        sys.exit(1 if compare(*args.compare) else 0)
    run(args)


if __name__ == "__main__":
    main()
