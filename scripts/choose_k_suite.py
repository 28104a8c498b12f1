"""Recommended k against the true k on the small suite's labelled tables (issue 26).

Runs choose-k with the default k_selection options on each table's default features (the first
seed) and writes one row per table: the true k (labels are read only here, to compare), the
recommendation, the rule before issue 26 (the best silhouette among the inertia knee and its
neighbours) and every criterion's own choice.

    python scripts/choose_k_suite.py --out choose_k_suite.csv
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from hydra import compose, initialize_config_dir

from deepseg.cli.common import config_dir
from deepseg.features.pipeline import FeaturePipeline
from deepseg.insight.choose_k import choose_k, knee_of_decreasing
from deepseg.tasks.run import load_dataset

TABLES = ["ecoli", "glass", "ionosphere", "sonar", "statlog", "wdbc", "wine", "yeast"]


def _old_rule(table: pd.DataFrame) -> int:
    knee = knee_of_decreasing(table["inertia"].to_numpy())
    window = list(range(max(0, knee - 1), min(len(table), knee + 2)))
    sil = table["silhouette"].to_numpy()
    return int(table["k"].iloc[window[int(np.nanargmax(sil[window]))]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    options = yaml.safe_load((Path(config_dir()) / "k_selection" / "default.yaml").read_text())
    features = yaml.safe_load((Path(config_dir()) / "features" / "default.yaml").read_text())
    cases = [("clustering_benchmarks", f"data.name={t}") for t in TABLES]
    cases += [("digits", None), ("synthetic_customers", None)]
    rows = []
    for data, override in cases:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose("benchmark", [f"data={data}", *([override] if override else [])])
        dataset = load_dataset(cfg.data)
        X = FeaturePipeline(**features).fit_transform(dataset)
        result = choose_k(X, random_state=0, **options)
        true_k = len(np.unique(dataset.labels))
        rows.append(
            {
                "dataset": dataset.name,
                "n": len(X),
                "true_k": true_k,
                "recommended": result.recommended,
                "before": _old_rule(result.table),
                **{f"by_{c}": k for c, k in result.choices.items()},
            }
        )
        print(rows[-1], flush=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
