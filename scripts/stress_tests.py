"""Run the test suite N times in a row while a parallel CPU job loads the machine; report the
pass count.

A suite that passes on an idle laptop can still flake under load (thread timing, tolerances
that depend on summation order, subprocess start-up). This script runs the default test
command (``python -m pytest``, with the project's ``addopts``) ``--runs`` times, each in a new
process, while ``--load-workers`` processes spin on the CPU, and writes the result as JSON:

    python scripts/stress_tests.py --runs 20 --output stress.json
    python scripts/stress_tests.py --runs 20 --fresh-clone            # on a clean checkout
    python scripts/stress_tests.py --runs 1 -- tests/test_io.py -q    # any pytest arguments

The JSON holds the runs, the passes, each run's exit code and wall time, and the command; the
exit code is 0 only when every run passed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _spin(stop_at: float) -> None:
    """Busy work on one core until ``stop_at`` (a safety end if the parent dies)."""
    x = 0
    while time.time() < stop_at:
        for i in range(10_000):
            x = (x * 31 + i) % 1_000_003


def fresh_clone(destination: Path) -> Path:
    """A clone of the current commit of this repository (committed files only)."""
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(destination)], check=True
    )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(["git", "checkout", "--quiet", head], cwd=destination, check=True)
    return destination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="test runs in a row (default 20)")
    parser.add_argument(
        "--load-workers", type=int, default=1,
        help="CPU-spinning processes running alongside (default 1; 0 for none)",
    )  # fmt: skip
    parser.add_argument("--output", default="stress_tests.json", help="the JSON report")
    parser.add_argument("--fresh-clone", action="store_true", help="run in a clean clone")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    parser.add_argument("pytest_args", nargs="*", help="arguments for pytest (after --)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be >= 1. Got {args.runs}.")

    with tempfile.TemporaryDirectory(prefix="deepseg-stress-") as tmp:
        where = fresh_clone(Path(tmp) / "clone") if args.fresh_clone else ROOT
        env = {**os.environ, "PYTHONPATH": str(where)}
        command = [sys.executable, "-m", "pytest", *args.pytest_args]
        stop_at = time.time() + args.runs * args.timeout
        load = [mp.Process(target=_spin, args=(stop_at,), daemon=True)
                for _ in range(args.load_workers)]  # fmt: skip
        for p in load:
            p.start()
        runs = []
        try:
            for i in range(args.runs):
                start = time.perf_counter()
                try:
                    proc = subprocess.run(
                        command, cwd=where, env=env, capture_output=True, text=True,
                        timeout=args.timeout,
                    )  # fmt: skip
                    code, tail = proc.returncode, proc.stdout.strip().splitlines()[-1:]
                except subprocess.TimeoutExpired:
                    code, tail = -1, [f"timed out after {args.timeout:.0f}s"]
                seconds = round(time.perf_counter() - start, 1)
                runs.append({"run": i + 1, "exit_code": code, "seconds": seconds,
                             "summary": tail[0] if tail else ""})  # fmt: skip
                print(f"run {i + 1}/{args.runs}: exit {code} in {seconds}s  {runs[-1]['summary']}")
        finally:
            for p in load:
                p.terminate()
                p.join()
    passed = sum(r["exit_code"] == 0 for r in runs)
    report = {
        "runs": len(runs),
        "passed": passed,
        "load_workers": args.load_workers,
        "fresh_clone": args.fresh_clone,
        "command": command,
        "cpu_count": os.cpu_count(),
        "results": runs,
    }
    Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    print(f"{passed}/{len(runs)} runs passed; report in {args.output}")
    return 0 if passed == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
