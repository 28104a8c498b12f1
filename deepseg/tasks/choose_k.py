"""The choose-k task: one dataset, k = first..last, one or more seeds -> a recommended k."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from deepseg.features.pipeline import FeaturePipeline
from deepseg.insight.choose_k import ChooseKResult, as_k_values, choose_k
from deepseg.insight.plots import plot_k_selection
from deepseg.tasks.common import (
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_text,
    dumps,
    git_commit,
    seed_everything,
    to_container,
)
from deepseg.tasks.run import load_dataset

logger = logging.getLogger(__name__)

SPACES = ("features", "latent")


def latent_space(X: np.ndarray, cfg: DictConfig, seed: int) -> np.ndarray:
    """The embedding of X by an autoencoder pretrained with the config's options."""
    from deepseg.deep.skeleton import embed, pretrain_autoencoder

    ae = pretrain_autoencoder(
        X,
        to_container(cfg.autoencoder),
        to_container(cfg.pretrain),
        to_container(cfg.trainer),
        random_state=seed,
    )
    return embed(ae, X)


def final_recommendation(results: list[ChooseKResult]) -> int:
    """The k recommended most often over the seeds (the smaller k on a tie)."""
    counts = Counter(r.recommended for r in results)
    best = max(counts.values())
    return min(k for k, c in counts.items() if c == best)


def run_choose_k(cfg: DictConfig, output_dir: str | Path) -> tuple[int, list[ChooseKResult]]:
    """Run choose-k for every seed and write its outputs into ``output_dir``.

    Writes ``choose_k.csv`` (one row per seed and k), ``recommendation.json`` (the final k, each
    seed's recommendation, every criterion's choice and the reasons) and ``k_selection.png``
    (the curves of the first seed; ``k_selection_seed<s>.png`` for the others). Labels are
    never read.

    Returns:
        (the recommended k, the result of every seed).
    """
    output_dir = Path(output_dir)
    seeds = [int(s) for s in cfg.seeds]
    if not seeds:
        raise ValueError("No seeds given: set seeds=[0] or more.")
    space = str(cfg.get("space", "features"))
    if space not in SPACES:
        raise ValueError(f"The 'space' option must be one of {list(SPACES)}. Got {space!r}.")
    options: dict[str, Any] = dict(to_container(cfg.k_selection))
    k_values = as_k_values(options.pop("k_range", (2, 10)))
    dataset = load_dataset(to_container(cfg.data))
    if k_values[-1] >= len(dataset):
        raise ValueError(
            f"k_selection.k_range goes up to {k_values[-1]}, but dataset '{dataset.name}' has "
            f"only {len(dataset)} rows."
        )
    logger.info("Dataset %s: %d rows; building features", dataset.name, len(dataset))
    X = FeaturePipeline(**to_container(cfg.features)).fit_transform(dataset)
    results = []
    tables = []
    for seed in seeds:
        seed_everything(seed)
        Z = latent_space(X, cfg, seed) if space == "latent" else X
        result = choose_k(Z, k_values, random_state=seed, **options)
        logger.info("Seed %d: recommended k=%d (%s)", seed, result.recommended, result.choices)
        results.append(result)
        tables.append(result.table.assign(seed=seed, space=space, dataset=dataset.name))
    k = final_recommendation(results)
    summary = {
        "dataset": dataset.name,
        "space": space,
        "recommended": k,
        "seeds": {str(seed): r.to_dict() for seed, r in zip(seeds, results)},
        "git_commit": git_commit(),
    }
    table = pd.concat(tables, ignore_index=True)
    atomic_write_csv(output_dir / "choose_k.csv", table)
    atomic_write_text(output_dir / "recommendation.json", dumps(summary) + "\n")
    for i, (seed, result) in enumerate(zip(seeds, results)):
        name = "k_selection.png" if i == 0 else f"k_selection_seed{seed}.png"
        atomic_write_bytes(output_dir / name, plot_k_selection(result))
    return k, results
