"""``deepseg-report DIR``: the leaderboard of every run under a run or multirun directory."""

from __future__ import annotations

import argparse
import logging
import sys

from deepseg.cli.common import report_errors

COMMAND = "deepseg-report"


@report_errors(COMMAND)
def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description="Aggregate every results.csv under DIR (benchmark and train runs): "
        "mean ± std over seeds per dataset and method, the best per dataset marked, one PNG "
        "per headline metric, and the failed jobs.",
    )
    parser.add_argument("directory", metavar="DIR", help="a run or multirun directory")
    parser.add_argument(
        "--out", default=None, help="where to write the files (default: DIR/aggregate)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from deepseg.tasks.aggregate import report_directory

    agg = report_directory(args.directory, args.out)
    print(agg.markdown())
    out = args.out or f"{args.directory.rstrip('/')}/aggregate"
    print(f"\nLeaderboard: {out}/leaderboard.md (leaderboard.csv, failed.csv, <metric>.png)")


def main() -> None:
    run(sys.argv[1:])


if __name__ == "__main__":
    main()
