"""Transaction log -> customer features at scale: the pandas reference against DuckDB.

Generates the UCI Online Retail log (its 406,829 rows with a customer id) replicated with new
customer and invoice ids, one Parquet part per replica, then measures, each in its own
subprocess so that peak resident memory is that run's alone:

* 4,068,290 rows (10 replicas, 43,720 customers): the former pandas implementation
  (``tests/data/reference_transactions.py``, reading the parts with pandas) and DuckDB;
* the same 4,068,290 rows as plain CSV parts (the issue's setting), both again;
* 50,000,000 rows (123 replicas, the last one cut short): DuckDB only, with a memory limit.

Writes the numbers (rows, customers, seconds, peak RSS) to a JSON file.

Usage (from the repository root; data from ../shared/data or $DEEPSEG_DATA_DIR)::

    python scripts/bench_transactions.py [--work-dir DIR] [--out results.json]
        [--large-rows 50000000] [--memory-limit 1500MB] [--threads N] [--skip-large] [--skip-csv]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS_PER_REPLICA = 406_829  # Online Retail rows with a customer id
SMALL_REPLICAS = 10

logger = logging.getLogger("bench_transactions")


def _data_dir() -> Path:
    return Path(os.environ.get("DEEPSEG_DATA_DIR", ROOT.parent / "shared" / "data"))


def generate(work_dir: Path, n_rows: int) -> list[Path]:
    """Write replicas of the Online Retail log as Parquet parts until ``n_rows`` rows exist.

    Replica r shifts every customer id by r * 100,000 and prefixes every invoice number's
    digits with r (a cancellation keeps its leading "C"), so replicas share no customer or
    invoice. Parts that already exist with the expected row count are reused.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    from deepseg.data.transactions import read_transaction_log

    parts_dir = work_dir / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    n_parts = -(-n_rows // ROWS_PER_REPLICA)
    paths = [parts_dir / f"part-{r:04d}.parquet" for r in range(n_parts)]
    sizes = [min(ROWS_PER_REPLICA, n_rows - r * ROWS_PER_REPLICA) for r in range(n_parts)]
    todo = [
        r
        for r, p in enumerate(paths)
        if not p.exists() or pq.read_metadata(p).num_rows != sizes[r]
    ]
    if not todo:
        return paths
    log = read_transaction_log(_data_dir() / "online_retail")
    log = log.loc[log["CustomerID"].notna()].reset_index(drop=True)
    assert len(log) == ROWS_PER_REPLICA, len(log)
    log["InvoiceDate"] = pd.to_datetime(log["InvoiceDate"])
    customer = log["CustomerID"].astype(int)
    invoice = log["InvoiceNo"].astype(str)
    cancel = invoice.str.startswith("C")
    digits = invoice.str.removeprefix("C")
    start = time.perf_counter()
    for r in todo:
        part = log.iloc[: sizes[r]].copy()
        part["CustomerID"] = (customer.iloc[: sizes[r]] + r * 100_000).astype(str)
        number = f"{r:04d}" + digits.iloc[: sizes[r]]
        part["InvoiceNo"] = number.where(~cancel.iloc[: sizes[r]], "C" + number)
        part.to_parquet(paths[r], index=False)
    logger.info(
        "Wrote %d parts in %.0f s to %s", len(todo), time.perf_counter() - start, parts_dir
    )
    return paths


def write_csv(parts: list[Path], work_dir: Path) -> list[Path]:
    """The same parts as plain CSV files (InvoiceDate as ISO text), as the issue's user had."""
    import pandas as pd

    csv_dir = work_dir / "csv"
    csv_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for part in parts:
        target = csv_dir / (part.stem + ".csv")
        if not target.exists():
            frame = pd.read_parquet(part)
            frame["InvoiceDate"] = frame["InvoiceDate"].dt.strftime("%Y-%m-%d %H:%M:%S")
            frame.to_csv(target.with_suffix(".tmp"), index=False)
            target.with_suffix(".tmp").rename(target)
        out.append(target)
    return out


def _rows(files: list[Path]) -> int:
    import pyarrow.parquet as pq

    if all(f.suffix == ".parquet" for f in files):
        return sum(pq.read_metadata(f).num_rows for f in files)
    return sum(sum(1 for _ in f.open()) - 1 for f in files)


def measure(method: str, files: list[str], engine: dict[str, object]) -> dict[str, object]:
    """Build the customer table from ``files`` in this process; time and peak RSS."""
    start = time.perf_counter()
    if method == "pandas":
        sys.path.insert(0, str(ROOT))
        from deepseg.data.transactions import read_transaction_log
        from tests.data.reference_transactions import reference_customer_table

        log = read_transaction_log(files)
        n_rows = len(log)
        table = reference_customer_table(log)
    else:
        from deepseg.data.transactions import customer_features

        table = customer_features(files, engine=engine)
        n_rows = None
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "method": method,
        "rows": n_rows,
        "customers": len(table),
        "seconds": round(seconds, 2),
        "peak_rss_gb": round(peak_kb * 1024 / 1e9, 3),
        "engine": engine if method == "duckdb" else None,
    }


def run_measure(method: str, files: list[Path], engine: dict[str, object]) -> dict[str, object]:
    """:func:`measure` in a fresh interpreter, so each peak RSS is its own."""
    spec = json.dumps({"method": method, "files": [str(f) for f in files], "engine": engine})
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, __file__, "--measure", spec],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{method} on {len(files)} parts failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["rows"] is None:
        result["rows"] = _rows(files)
    result["format"] = files[0].suffix.lstrip(".")
    logger.info("%s", result)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "deepseg-bench-transactions",
        help="where the generated Parquet parts go (default: <tmp>/deepseg-bench-transactions)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="results JSON (default: in work dir)"
    )
    parser.add_argument("--large-rows", type=int, default=50_000_000)
    parser.add_argument("--memory-limit", default="1500MB", help="DuckDB memory_limit (large run)")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default all)")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-csv", action="store_true", help="skip the 4M-row CSV runs")
    args = parser.parse_args(argv)

    if args.measure:
        spec = json.loads(args.measure)
        print(json.dumps(measure(spec["method"], spec["files"], spec["engine"])))
        return

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    work_dir: Path = args.work_dir
    n_large = 0 if args.skip_large else args.large_rows
    n_small = SMALL_REPLICAS * ROWS_PER_REPLICA
    paths = generate(work_dir, max(n_small, n_large))
    spill = str(work_dir / "spill")
    engine: dict[str, object] = {
        "memory_limit": args.memory_limit,
        "threads": args.threads,
        "temp_directory": spill,
    }
    small = paths[:SMALL_REPLICAS]
    results: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "small": {
            "rows": n_small,
            "pandas": run_measure("pandas", small, {}),
            "duckdb": run_measure("duckdb", small, engine),
        },
    }
    small_runs = results["small"]
    assert isinstance(small_runs, dict)
    small_runs["speedup"] = round(
        small_runs["pandas"]["seconds"] / small_runs["duckdb"]["seconds"], 2
    )
    if not args.skip_csv:
        csv_parts = write_csv(small, work_dir)
        pandas_csv = run_measure("pandas", csv_parts, {})
        duckdb_csv = run_measure("duckdb", csv_parts, engine)
        results["small_csv"] = {
            "rows": n_small,
            "pandas": pandas_csv,
            "duckdb": duckdb_csv,
            "speedup": round(pandas_csv["seconds"] / duckdb_csv["seconds"], 2),
        }
    if n_large:
        results["large"] = {"rows": n_large, "duckdb": run_measure("duckdb", paths, engine)}
    out = args.out or work_dir / "bench_transactions.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    logger.info("Wrote %s", out)


if __name__ == "__main__":
    main()
