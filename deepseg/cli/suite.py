"""``deepseg-suite``: the generalisation suite (every method on many labelled datasets)."""

from __future__ import annotations

from collections.abc import Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from deepseg.cli.common import config_path, report_errors, resolve_seed, run_command

COMMAND = "deepseg-suite"
CONFIG_NAME = "suite"


@hydra.main(version_base="1.3", config_path=config_path(), config_name=CONFIG_NAME)
@report_errors(COMMAND)
def app(cfg: DictConfig) -> None:
    """Run the suite of ``cfg`` in Hydra's run directory; print its tables."""
    resolve_seed(cfg)
    from deepseg.tasks.suite import run_suite

    output_dir = HydraConfig.get().runtime.output_dir
    suite = run_suite(cfg, output_dir)
    print(suite.markdown())
    print(f"\nSuite: {output_dir}/suite.md (suite.csv, suite_means.csv, suite_results.csv)")


def run(argv: Sequence[str] | None = None) -> None:
    """``deepseg-suite`` with ``argv`` (default: the command line)."""
    run_command(COMMAND, app, argv)


def main() -> None:
    run()


if __name__ == "__main__":
    main()
