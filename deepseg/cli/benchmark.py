"""``deepseg-benchmark``: run methods x seeds on one dataset and print the leaderboard."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from deepseg.cli.common import config_path, report_errors, resolve_seed, run_command

COMMAND = "deepseg-benchmark"
CONFIG_NAME = "benchmark"


@hydra.main(version_base="1.3", config_path=config_path(), config_name=CONFIG_NAME)
@report_errors(COMMAND)
def app(cfg: DictConfig) -> None:
    """Run the benchmark of ``cfg`` in Hydra's run directory; print the leaderboard."""
    resolve_seed(cfg)
    from deepseg.tasks.benchmark import format_leaderboard, leaderboard, run_benchmark

    output_dir = HydraConfig.get().runtime.output_dir
    results = run_benchmark(cfg, output_dir)
    print(format_leaderboard(leaderboard(results[results["status"] == "ok"])))
    for _, row in results[results["status"] == "failed"].iterrows():
        print(f"FAILED {row['method']} (seed {row['seed']}): {row['error']}")
    print(f"\nResults: {output_dir}/results.csv")
    if (Path(output_dir) / "report.html").exists():
        print(f"Report: {output_dir}/report.html (segments.csv, profiles.csv)")


def run(argv: Sequence[str] | None = None) -> None:
    """``deepseg-benchmark`` with ``argv`` (default: the command line)."""
    run_command(COMMAND, app, argv)


def main() -> None:
    run()


if __name__ == "__main__":
    main()
