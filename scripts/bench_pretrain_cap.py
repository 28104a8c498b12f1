"""ACC of ae_kmeans and dec on the small real tables of Gagolewski's suite, per pretraining cap.

``pretrain.max_budget_epochs`` stops the raise of the pretraining epochs (``min_steps``) on small
tables: every table here has at most 4 batches an epoch, so the cap decides its pretraining. This
measures the cap's cost in quality against its cost in time (``python scripts/...`` from the
project root; the data from ``DEEPSEG_DATA_DIR`` or ``../shared/data``):

    python scripts/bench_pretrain_cap.py --out pretrain_cap.json [--caps 50 100 200] [--seeds 0 1]

The features are the columns standardised (the same for every method and cap); K-Means (10
restarts) is the reference row. Labels only score.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from small_tables import TABLES, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the numbers")
    parser.add_argument("--caps", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--tables", nargs="+", default=TABLES)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from sklearn.cluster import KMeans

    from deepseg import DEC, AEKMeans
    from deepseg.metrics import acc

    rows = []
    for name in args.tables:
        X, y, k = load(name)
        for seed in args.seeds:
            labels = KMeans(k, n_init=10, random_state=seed).fit_predict(X)
            rows.append(dict(table=name, seed=seed, method="kmeans", cap=0, acc=acc(y, labels)))
            for cap in args.caps:
                start = time.perf_counter()
                ae = AEKMeans(k, pretrain={"max_budget_epochs": cap}, random_state=seed).fit(X)
                seconds = time.perf_counter() - start
                dec = DEC(k, pretrained=ae.autoencoder_, random_state=seed).fit(X)
                for method, est in (("ae_kmeans", ae), ("dec", dec)):
                    rows.append(
                        dict(table=name, seed=seed, method=method, cap=cap,
                             acc=acc(y, est.labels_), pretrain_seconds=seconds)
                    )  # fmt: skip
            print(name, seed, "done", flush=True)
    frame = pd.DataFrame(rows)
    table = frame.pivot_table(index="table", columns=["method", "cap"], values="acc")
    means = frame.groupby(["method", "cap"])["acc"].mean()
    print(table.round(3).to_string())
    print(means.round(4).to_string())
    args.out.write_text(
        json.dumps(
            {
                "rows": rows,
                "mean_acc": {f"{m}@{c}": round(v, 4) for (m, c), v in means.items()},
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
