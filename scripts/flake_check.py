"""Run the default test run N times under a parallel CPU load; count the failures per test.

Each run is ``python -m pytest -m "not slow"`` (the README's test command, with the project's
addopts) plus whatever follows ``--``, with its results in a JUnit XML file. Meanwhile ``--load``
processes spin on the CPU, so that timing-dependent tests (locks, timeouts, races between
processes) meet the contention they would meet on a busy CI machine. Writes JSON: per run its
exit code, wall time and counts; per test that failed at least once the number of runs it
failed in and its first message. Exits 1 when any test failed (or a run could not be read).

Usage:
    python scripts/flake_check.py --runs 10 --load 1 --out flake_check.json
    python scripts/flake_check.py --runs 2 --load 0 -- -n 0 tests/test_metrics.py
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

BASE_COMMAND = [sys.executable, "-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider"]


def _spin(stop: Any) -> None:
    """Burn one CPU until ``stop`` (a multiprocessing Event) is set."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF


def failures(junit: Path) -> tuple[dict[str, str], Counter[str]]:
    """(test id -> first line of its failure or error, counts by outcome) of a JUnit file."""
    root = ET.parse(junit).getroot()
    failed: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            lines = (bad.get("message") or bad.tag).splitlines() or [bad.tag]
            failed[name] = lines[0][:300]
            counts[bad.tag] += 1
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return failed, counts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Arguments after -- go to pytest (e.g. -n 0 or a selection of test files).",
    )
    parser.add_argument("--runs", type=int, default=10, help="how many test runs")
    parser.add_argument("--load", type=int, default=1, help="CPU-burning processes meanwhile")
    parser.add_argument("--out", default="flake_check.json", help="the JSON file to write")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    args, rest = parser.parse_known_args()
    extra = rest[1:] if rest[:1] == ["--"] else rest
    if args.runs < 1 or args.load < 0:
        parser.error(f"--runs must be >= 1 and --load >= 0. Got {args.runs} and {args.load}.")

    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(args.load)]
    for p in burners:
        p.start()
    runs: list[dict] = []
    per_test: Counter[str] = Counter()
    first_message: dict[str, str] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="flake_check.") as tmp:
            for i in range(args.runs):
                junit = Path(tmp) / f"run{i}.xml"
                command = [*BASE_COMMAND, f"--junitxml={junit}", *extra]
                start = time.perf_counter()
                try:
                    proc = subprocess.run(command, timeout=args.timeout, check=False)
                    code = proc.returncode
                except subprocess.TimeoutExpired:
                    code = -1
                seconds = time.perf_counter() - start
                run: dict = {"run": i, "exit_code": code, "seconds": round(seconds, 1)}
                if junit.is_file():
                    failed, counts = failures(junit)
                    run.update(counts)
                    for name, message in failed.items():
                        per_test[name] += 1
                        first_message.setdefault(name, message)
                else:
                    run["error"] = "no JUnit file: the run was killed or could not start"
                runs.append(run)
                print(f"run {i + 1}/{args.runs}: exit {code} in {seconds:.0f}s", flush=True)
    finally:
        stop.set()
        for p in burners:
            p.join()
    result = {
        "command": [*BASE_COMMAND[1:], *extra],
        "runs": args.runs,
        "load": args.load,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "per_run": runs,
        "failures_per_test": {
            name: {"runs_failed": n, "first_message": first_message[name]}
            for name, n in per_test.most_common()
        },
        "tests_failed": len(per_test),
        "runs_unread": sum("error" in r for r in runs),
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"{len(per_test)} test(s) failed in at least one of {args.runs} runs; see {args.out}")
    for name, n in per_test.most_common():
        print(f"  {n}/{args.runs}  {name}: {first_message[name]}")
    return 1 if per_test or result["runs_unread"] else 0


if __name__ == "__main__":
    sys.exit(main())
