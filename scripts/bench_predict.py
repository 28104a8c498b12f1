"""Throughput and peak memory of ``deepseg-predict`` on 1,000,000 synthetic customers.

Generates ``--rows`` customers with ``--features`` numeric columns (six segments, some columns
heavy-tailed) as a CSV in a temporary directory, trains a DEC bundle with a small MLP encoder on
the first ``--train-rows`` rows, then runs ``deepseg-predict`` on the whole file in a
subprocess and records its wall time, rows per second and peak resident memory (the child's
``ru_maxrss``). Nothing is written into the repository unless ``--out`` points there.

    nice -n 5 python scripts/bench_predict.py --out outputs/bench_predict.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_customers(path: Path, rows: int, features: int, seed: int, chunk: int = 100_000) -> None:
    """Six segments: Gaussian columns around segment means, a quarter of them log-normal."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 2.0, size=(6, features))
    skewed = np.arange(features) % 4 == 0
    columns = [f"f{j:02d}" for j in range(features)]
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        segment = rng.integers(0, 6, size=n)
        values = means[segment] + rng.normal(0.0, 1.0, size=(n, features))
        values[:, skewed] = np.exp(values[:, skewed] / 2.0)
        frame = pd.DataFrame(values.astype(np.float32), columns=columns)
        frame.insert(0, "customer_id", np.arange(start, start + n))
        frame.to_csv(path, mode="w" if start == 0 else "a", header=start == 0, index=False,
                     float_format="%.5g")  # fmt: skip


def train_bundle(csv: Path, bundle: Path, train_rows: int, seed: int) -> dict:
    import torch

    from deepseg.bundle import save_bundle
    from deepseg.data.table import dataset_from_frame
    from deepseg.deep import DEC
    from deepseg.features.pipeline import FeaturePipeline

    torch.set_num_threads(2)
    frame = pd.read_csv(csv, nrows=train_rows)
    numeric = [c for c in frame.columns if c != "customer_id"]
    dataset = dataset_from_frame(frame, name="bench", id_column="customer_id", numeric=numeric,
                                 infer=False)  # fmt: skip
    pipeline = FeaturePipeline()
    X = pipeline.fit_transform(dataset)
    start = time.perf_counter()
    est = DEC(
        n_clusters=6,
        epochs=5,
        autoencoder={"hidden_dims": [128, 64], "latent_dim": 10},
        pretrain={"epochs": 5, "min_steps": 0, "batch_size": 256},
        trainer={"accelerator": "cpu", "enable_progress_bar": False},
        random_state=seed,
    ).fit(X)
    seconds = time.perf_counter() - start
    data_config = {"_target_": "deepseg.data.table.load_table", "id_column": "customer_id"}
    save_bundle(bundle, estimator=est, pipeline=pipeline, dataset=dataset, X=X, method="dec",
                method_config={"_target_": "deepseg.deep.dec.DEC"},
                data_config=data_config)  # fmt: skip
    return {"train_rows": train_rows, "train_seconds": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drift", action="store_true", help="also run the drift check")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_predict.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="deepseg-bench-predict-") as tmp:
        work = Path(tmp)
        csv = work / "customers.csv"
        start = time.perf_counter()
        write_customers(csv, args.rows, args.features, args.seed)
        gen_seconds = time.perf_counter() - start
        training = train_bundle(csv, work / "bundle", args.train_rows, args.seed)
        command = [
            "deepseg-predict", f"bundle={work / 'bundle'}", f"input={csv}",
            f"output={work / 'assignments.csv'}", f"chunk_size={args.chunk_size}",
        ]  # fmt: skip
        if args.drift:
            command.append("drift=true")
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"deepseg-predict failed:\n{result.stderr[-3000:]}")
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
        n_out = sum(1 for _ in open(work / "assignments.csv")) - 1
        numbers = {
            "rows": args.rows,
            "features": args.features,
            "rows_written": n_out,
            "chunk_size": args.chunk_size,
            "drift": args.drift,
            "input_mb": round(csv.stat().st_size / 2**20, 1),
            "generate_seconds": round(gen_seconds, 1),
            **training,
            "predict_seconds": round(seconds, 2),
            "rows_per_second": round(args.rows / seconds),
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "command": " ".join(
                command[:1] + [c.split("=")[0] + "=..." for c in command[1:4]] + command[4:]
            ),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(numbers, indent=1) + "\n")
    print(json.dumps(numbers, indent=1))


if __name__ == "__main__":
    main()
