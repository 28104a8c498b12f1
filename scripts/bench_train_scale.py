"""``deepseg-train model=dec`` end to end on 100k, 300k and 1M customers: time and peak memory.

The transaction log is the UCI Online Retail log (4,372 customers with an id) replicated with
new customer and invoice ids, one Parquet part per replica (``bench_transactions.generate``):
23 replicas give 100,556 customers (9.4M rows), 69 give 301,668 (28M rows) and 229 give
1,001,188 (93M rows). Each size is one ``deepseg-train model=dec data=transactions`` command,
as a user types it (defaults otherwise), in its own process; its peak resident memory is the
child's own (``os.wait4``), its time is the wall time of the command. The log-log slope of time
against customers is fitted over the sizes run.

Writes the numbers, and the phases from each run's ``results.csv``, to a JSON file.

Usage (from the repository root; data from ../shared/data or $DEEPSEG_DATA_DIR)::

    python scripts/bench_train_scale.py [--work-dir DIR] [--out results.json]
        [--replicas 23 69 229] [--memory-limit 2GB] [extra deepseg-train overrides ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from bench_transactions import ROWS_PER_REPLICA, generate  # noqa: E402

logger = logging.getLogger("bench_train_scale")

#: Columns of results.csv worth keeping (its ``seconds``, the clustering fit after pretraining,
#: is written as ``fit_seconds``).
PHASES = (
    "n_samples",
    "n_features",
    "feature_seconds",
    "pretrain_seconds",
    "seconds",
    "cluster_epochs",
    "cluster_steps",
    "stopped_early",
    "silhouette",
    "status",
)


def _size_dir(work_dir: Path, parts: list[Path]) -> Path:
    """A directory holding links to the first ``len(parts)`` parts (the loader reads a
    directory of parts)."""
    target = work_dir / "sizes" / f"r{len(parts):04d}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for part in parts:
        (target / part.name).symlink_to(part)
    return target


def run_train(
    data_dir: Path, run_dir: Path, memory_limit: str, extra: list[str]
) -> dict[str, object]:
    """One ``deepseg-train`` command; wall time and the child's own peak RSS."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        "deepseg-train",
        "model=dec",
        "data=transactions",
        f"data.path={data_dir}",
        f"data.engine.memory_limit={memory_limit}",
        f"data.engine.temp_directory={run_dir.parent / 'spill'}",
        f"hydra.run.dir={run_dir}",
        f"paths.output_dir={run_dir.parent / 'outputs'}",
        "resume=false",
        "trainer.enable_progress_bar=false",
        *extra,
    ]
    logger.info("%s", " ".join(cmd))
    start = time.perf_counter()
    log = (run_dir.parent / f"{run_dir.name}.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    log.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = (run_dir.parent / f"{run_dir.name}.log").read_text()[-3000:]
        raise RuntimeError(f"deepseg-train on {data_dir} exited {code}:\n{tail}")
    import pandas as pd

    row = pd.read_csv(run_dir / "results.csv").iloc[0].to_dict()
    out: dict[str, object] = {
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(usage.ru_maxrss * 1024 / 1e9, 3),  # KiB on Linux
        "command": " ".join(cmd),
    }
    # the row's own "seconds" is the clustering fit after pretraining: renamed, so that it
    # never replaces the command's wall time
    out.update({("fit_seconds" if k == "seconds" else k): row[k] for k in PHASES if k in row})
    return out


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of log(time) against log(customers)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "deepseg-bench-transactions",
        help="where the Parquet parts and the runs go (default: <tmp>/deepseg-bench-transactions)",
    )
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default: work dir)")
    parser.add_argument("--replicas", type=int, nargs="+", default=[23, 69, 229])
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB memory_limit")
    args, extra = parser.parse_known_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    work_dir: Path = args.work_dir
    paths = generate(work_dir, max(args.replicas) * ROWS_PER_REPLICA)
    runs = []
    for replicas in sorted(args.replicas):
        data_dir = _size_dir(work_dir, paths[:replicas])
        result = run_train(
            data_dir, work_dir / "train_runs" / f"r{replicas:04d}", args.memory_limit, extra
        )
        result["replicas"] = replicas
        result["transaction_rows"] = replicas * ROWS_PER_REPLICA
        logger.info("%s", result)
        runs.append(result)
    results: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "runs": runs,
    }
    if len(runs) > 1:
        points = [(float(r["n_samples"]), float(r["seconds"])) for r in runs]
        results["loglog_slope_seconds_vs_customers"] = round(slope(points), 3)
    out = args.out or work_dir / "bench_train_scale.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    logger.info("Wrote %s", out)


if __name__ == "__main__":
    main()
