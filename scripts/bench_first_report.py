"""Time to a first report on a small table: a 200-row customer table, every default.

Writes a 200-row table of generated customers (no label column: what a marketer brings), then
times, as a new user would type it,

    deepseg-benchmark data=table data.path=customers.csv data.id_column=customer_id \\
        n_clusters=auto report=default

(the default methods, classic and deep, both default seeds, choose-k and the segment report) in a
subprocess, and writes the wall time, the pretraining epochs and the files produced to a JSON file.

    python scripts/bench_first_report.py --out first_report.json [--rows 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def _script(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the numbers")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from deepseg.data.synthetic import make_synthetic_customers
    from deepseg.deep.skeleton import pretrain_epochs

    work = Path(tempfile.mkdtemp(prefix="deepseg-first-report-"))
    frame = make_synthetic_customers(n_samples=args.rows, random_state=0).frame.copy()
    frame.insert(0, "customer_id", [f"C{i:05d}" for i in range(len(frame))])
    frame.to_csv(work / "customers.csv", index=False)
    command = [
        _script("deepseg-benchmark"),
        "data=table",
        f"data.path={work / 'customers.csv'}",
        "data.id_column=customer_id",
        "n_clusters=auto",
        "report=default",
    ]
    runs = []
    for i in range(args.repeats):
        out = work / f"run{i}"
        start = time.perf_counter()
        proc = subprocess.run(
            [*command, f"hydra.run.dir={out}"], capture_output=True, text=True, cwd=work
        )
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"deepseg-benchmark failed:\n{proc.stderr[-3000:]}")
        results = pd.read_csv(out / "results.csv")
        runs.append(
            {
                "seconds": round(seconds, 2),
                "report": (out / "report.html").is_file(),
                "segments_rows": len(pd.read_csv(out / "segments.csv")),
                "methods": sorted(set(results["method"])),
                "failed": int((results["status"] != "ok").sum()),
                "n_clusters": int(results["n_clusters"].iloc[0]),
            }
        )
    numbers = {
        "rows": args.rows,
        "command": " ".join(
            ["deepseg-benchmark", "data=table", "data.path=customers.csv", *command[3:]]
        ),
        "pretrain_epochs": pretrain_epochs(args.rows, None, int(results["n_features"].iloc[0])),
        "median_seconds": sorted(r["seconds"] for r in runs)[len(runs) // 2],
        "runs": runs,
    }
    args.out.write_text(json.dumps(numbers, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(numbers, indent=1))


if __name__ == "__main__":
    main()
