"""Density baselines where density means something: DBSCAN and HDBSCAN on the input as it is,
and in UMAP's 5-dimensional manifold (what ``space=auto`` picks for an input wider than 5
columns), on the development suite's features.

It reads the ``data.npz`` (features X, labels y) that ``scripts/collect_partitions.py`` writes
for each dataset, runs both methods in both spaces (seed 0; labels only score), and writes one
JSON line per dataset and a markdown table with the means. HDBSCAN on the raw input is left out
(``None``) above 100 columns and 5,000 rows, where it runs for many minutes.

    python scripts/collect_partitions.py --out PARTS --seeds 0 --methods dbscan
    python scripts/bench_density.py PARTS --out density.md
    python scripts/bench_density.py --table density.jsonl --out density.md   # table only
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from deepseg.baselines import AutoEpsDBSCAN, DensityHDBSCAN, density_space
from deepseg.metrics import acc

#: HDBSCAN on the raw input is skipped above this width and this many rows (too slow)
SLOW_WIDTH, SLOW_ROWS = 100, 5000


def measure(folder: Path) -> dict:
    data = np.load(folder / "data.npz")
    X, y = data["X"].astype(np.float64), data["y"]
    n, width = X.shape
    out: dict = {"dataset": folder.name, "n": n, "width": width}
    start = time.time()
    spaces = {"input": X}
    if width > 5:
        spaces["umap5"] = density_space(X, "umap", 5, 0)[0]
    out["reduce_s"] = round(time.time() - start, 1)
    for space, Z in spaces.items():
        start = time.time()
        out[f"dbscan_{space}"] = round(acc(y, AutoEpsDBSCAN(space="input").fit(Z).labels_), 3)
        out[f"dbscan_{space}_s"] = round(time.time() - start, 1)
        if Z.shape[1] > SLOW_WIDTH and n > SLOW_ROWS:
            out[f"hdb_{space}"] = None
            continue
        start = time.time()
        out[f"hdb_{space}"] = round(acc(y, DensityHDBSCAN(space="input").fit(Z).labels_), 3)
        out[f"hdb_{space}_s"] = round(time.time() - start, 1)
    return out


def table(rows: list[dict]) -> str:
    frame = pd.DataFrame(rows).set_index("dataset").sort_values("width")
    for method in ("dbscan", "hdb"):  # narrow inputs stay as they are under space=auto
        frame[f"{method}_auto"] = frame[f"{method}_umap5"].where(
            frame["width"] > 5, frame[f"{method}_input"]
        )
    cols = ["n", "width", "dbscan_input", "dbscan_auto", "hdb_input", "hdb_auto"]
    lines = [
        "| dataset | rows | columns | DBSCAN before (input) | DBSCAN now (auto) "
        "| HDBSCAN before (input) | HDBSCAN now (auto) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in frame[cols].iterrows():
        scores = ["-" if pd.isna(v) else f"{v:.3f}" for v in r.tolist()[2:]]
        cells = [f"{int(r['n']):,}", str(int(r["width"])), *scores]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    both = frame.dropna(subset=["hdb_input"])
    lines.append(
        f"| **mean of {len(frame)}** (DBSCAN) / **of {len(both)}** (HDBSCAN, where it ran "
        f"before) | | | {frame['dbscan_input'].mean():.3f} | {frame['dbscan_auto'].mean():.3f} "
        f"| {both['hdb_input'].mean():.3f} | {both['hdb_auto'].mean():.3f} |"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", type=Path, nargs="?")
    parser.add_argument("--table", type=Path, help="a JSON-lines file of an earlier run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.table is not None:
        rows = [json.loads(line) for line in args.table.read_text().splitlines() if line]
    else:
        rows = []
        jsonl = args.out.with_suffix(".jsonl")
        with jsonl.open("w") as fh:
            for folder in sorted(p for p in args.parts.iterdir() if (p / "data.npz").exists()):
                rows.append(measure(folder))
                print(json.dumps(rows[-1]), file=fh, flush=True)
                print(rows[-1], flush=True)
    args.out.write_text(table(rows))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
