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
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from small_tables import TABLES, compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the numbers")
    parser.add_argument("--caps", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--tables", nargs="+", default=TABLES)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    variants = {cap: {"pretrain": {"max_budget_epochs": cap}} for cap in args.caps}
    rows = compare(variants, "cap", args.seeds, args.tables)
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
