"""``deepseg-choose-k``: recommend a number of segments for one dataset, without labels."""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from deepseg.cli.common import config_path, report_errors


@hydra.main(version_base="1.3", config_path=config_path(), config_name="choose_k")
@report_errors("deepseg-choose-k")
def main(cfg: DictConfig) -> None:
    from deepseg.tasks.choose_k import run_choose_k

    output_dir = HydraConfig.get().runtime.output_dir
    k, results = run_choose_k(cfg, output_dir)
    for seed, result in zip(cfg.seeds, results):
        print(f"seed {seed}: {result.summary()}")
    print(f"\nRecommended k = {k}")
    print(f"Curves and table: {output_dir}/k_selection.png, {output_dir}/choose_k.csv")


if __name__ == "__main__":
    main()
