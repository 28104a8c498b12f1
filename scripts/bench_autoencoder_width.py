"""ACC and pretraining time of ae_kmeans and dec on the small real tables, per autoencoder width.

The default autoencoder (hidden layers 256-256-512, latent 10) is sized for tens of thousands
of rows; a table of a few hundred rows pretrains it for 200 one-batch epochs, most of a first
report's time. This measures narrower networks on the small tables of Gagolewski's suite (every
one at most 4 batches an epoch), so that a data-size rule for the width is chosen on the whole
set, not on one table (``python scripts/...`` from the project root; the data from
``DEEPSEG_DATA_DIR`` or ``../shared/data``):

    python scripts/bench_autoencoder_width.py --out width.json [--widths 256 128 64 32]

A width w means hidden layers w-w-2w. The features are the columns standardised (the same for
every method and width); K-Means (10 restarts) is the reference row. Labels only score.
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
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 128, 64, 32])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tables", nargs="+", default=TABLES)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import torch

    variants = {w: {"autoencoder": {"hidden_dims": [w, w, 2 * w]}} for w in args.widths}
    rows = compare(variants, "width", args.seeds, args.tables)
    frame = pd.DataFrame(rows)
    table = frame.pivot_table(index="table", columns=["method", "width"], values="acc")
    means = frame.groupby(["method", "width"])["acc"].mean()
    times = frame[frame["method"] == "ae_kmeans"].groupby("width")["pretrain_seconds"].mean()
    print(table.round(3).to_string())
    print(means.round(4).to_string())
    print(times.round(2).to_string())
    args.out.write_text(
        json.dumps(
            {
                "torch_threads": torch.get_num_threads(),
                "rows": rows,
                "mean_acc": {f"{m}@{w}": round(v, 4) for (m, w), v in means.items()},
                "mean_pretrain_seconds": {str(w): round(v, 3) for w, v in times.items()},
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
