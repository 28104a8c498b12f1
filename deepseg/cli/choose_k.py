"""``deepseg-choose-k``: recommend a number of segments for one dataset, without labels."""

from __future__ import annotations

from collections.abc import Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from deepseg.cli.common import config_path, report_errors, resolve_seed, run_command

COMMAND = "deepseg-choose-k"
CONFIG_NAME = "choose_k"


@hydra.main(version_base="1.3", config_path=config_path(), config_name=CONFIG_NAME)
@report_errors(COMMAND)
def app(cfg: DictConfig) -> None:
    """Score k for every seed of ``cfg``; print the recommendation."""
    resolve_seed(cfg)
    from deepseg.tasks.choose_k import run_choose_k

    output_dir = HydraConfig.get().runtime.output_dir
    k, results = run_choose_k(cfg, output_dir)
    for seed, result in zip(cfg.seeds, results):
        print(f"seed {seed}: {result.summary()}")
    print(f"\nRecommended k = {k}")
    print(f"Curves and table: {output_dir}/k_selection.png, {output_dir}/choose_k.csv")


def run(argv: Sequence[str] | None = None) -> None:
    """``deepseg-choose-k`` with ``argv`` (default: the command line)."""
    run_command(COMMAND, app, argv)


def main() -> None:
    run()


if __name__ == "__main__":
    main()
