"""Score label-free choices among candidate partitions (the design study behind ``model=auto``).

Reads the partitions that ``scripts/collect_partitions.py`` saved (``DIR/<dataset>.npz``: every
candidate's own labels per seed, the features and the autoencoder's embedding) and, per dataset
and seed, lets each rule pick one candidate without labels:

* ``agreement``: the highest mean NMI with the other candidates (``model=auto``'s rule,
  :func:`deepseg.auto.agreement_scores`);
* ``silhouette_features``: the highest silhouette in the feature matrix (one space for all);
* ``silhouette_latent``: the highest silhouette in the shared autoencoder's embedding;
* ``oracle``: the best candidate by ACC, which no run can know (the ceiling of any rule).

Labels only score the picks. Writes ``OUT.csv`` (dataset, seed, rule, pick, acc) and prints the
medians over seeds per dataset and the means over datasets.

    python scripts/bench_auto.py PARTITIONS_DIR --out auto_rules.csv [--candidates kmeans gmm ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_score

from deepseg.auto import agreement_scores
from deepseg.metrics import acc

CANDIDATES = ["kmeans", "gmm", "agglomerative", "spectral", "ae_kmeans", "dec", "idec", "n2d"]
SAMPLE = 3000  # rows for the silhouettes


def silhouettes(Z: np.ndarray, parts: dict[str, np.ndarray], seed: int) -> dict[str, float]:
    idx = np.random.default_rng(seed).choice(len(Z), min(len(Z), SAMPLE), replace=False)
    out = {}
    for name, labels in parts.items():
        ok = len(np.unique(labels[idx])) > 1
        out[name] = float(silhouette_score(Z[idx], labels[idx])) if ok else -1.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("partitions", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--candidates", nargs="*", default=CANDIDATES)
    args = parser.parse_args()
    rows = []
    for root in args.partitions:
        for path in sorted(root.glob("*.npz")):
            data = np.load(path)
            y, X = data["y"], data["X"]
            seeds = sorted({int(n.split("/")[1]) for n in data.files if n.startswith("kmeans/")})
            for seed in seeds:
                parts = {m: data[f"{m}/{seed}"] for m in args.candidates if f"{m}/{seed}" in data}
                scores = {
                    "agreement": agreement_scores(parts),
                    "silhouette_features": silhouettes(X, parts, seed),
                    "silhouette_latent": silhouettes(data[f"latent/{seed}"], parts, seed),
                    "oracle": {m: acc(y, labels) for m, labels in parts.items()},
                }
                for name, labels in parts.items():
                    rows.append({"dataset": path.stem, "seed": seed, "rule": name,
                                 "pick": name, "acc": acc(y, labels)})  # fmt: skip
                for rule, values in scores.items():
                    order = list(parts)  # ties to the first candidate, as in AutoCluster
                    pick = max(values, key=lambda n, v=values: (v[n], -order.index(n)))
                    rows.append({"dataset": path.stem, "seed": seed, "rule": rule,
                                 "pick": pick, "acc": acc(y, parts[pick])})  # fmt: skip
            print(path.stem, "done", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out, index=False)
    medians = table.pivot_table(index="dataset", columns="rule", values="acc", aggfunc="median")
    print(medians.round(3).to_string())
    print("mean over datasets:")
    print(medians.mean().round(3).sort_values(ascending=False).to_string())
    if "kmeans" in medians:
        print("worst gap to kmeans:")
        print((medians.sub(medians["kmeans"], axis=0)).min().round(3).to_string())


if __name__ == "__main__":
    main()
