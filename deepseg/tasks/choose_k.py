"""The choose-k task: one dataset, k = first..last, one or more seeds -> a recommended k.

Each seed's choice is a job of the job store (:mod:`deepseg.jobs`, run by the loop that
every command shares, :func:`~deepseg.jobs.run_jobs`): a seed that finished before with
the same options on the same input is taken from the store, the features are built only when a
seed has to run, and a latent-space pretraining killed midway resumes from its checkpoint. A
benchmark with ``n_clusters=auto`` asks its store for the same job (:func:`choose_k_job`)."""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from deepseg.insight.choose_k import ChooseKResult, as_k_values, choose_k
from deepseg.insight.plots import plot_k_selection
from deepseg.jobs import (
    Fitted,
    Job,
    JobStore,
    Work,
    features_identity,
    input_fingerprints,
    method_identity,
    run_jobs,
)
from deepseg.tasks.common import (
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_text,
    dumps,
    git_commit,
    job_store,
    seed_everything,
    to_container,
)
from deepseg.tasks.run import build_features, load_dataset

logger = logging.getLogger(__name__)

SPACES = ("features", "latent")


def latent_space(
    X: np.ndarray, cfg: DictConfig, seed: int, checkpoint: dict[str, Any] | None = None
) -> np.ndarray:
    """The embedding of X by an autoencoder pretrained with the config's options (checkpointed
    with ``checkpoint``, :mod:`deepseg.deep.checkpoint`)."""
    from deepseg.deep.skeleton import embed, pretrain_autoencoder

    ae = pretrain_autoencoder(
        X,
        to_container(cfg.autoencoder),
        to_container(cfg.pretrain),
        to_container(cfg.trainer),
        random_state=seed,
        checkpoint=checkpoint,
    )
    return embed(ae, X)


def choose_k_job(
    data_cfg: dict[str, Any], features_cfg: dict[str, Any], options: dict[str, Any], seed: int,
    latent: dict[str, Any] | None = None,
) -> Job:  # fmt: skip
    """The job of choose-k with one seed: the data, the features, the ``k_selection`` options
    and the seed decide it, and, in the latent space, the autoencoder, pretraining and
    trainer options (``latent``; without cosmetic trainer options)."""
    config: dict[str, Any] = {
        "task": "choose_k",
        "data": data_cfg,
        "features": features_identity(features_cfg),
        "k_selection": options,
        "seed": seed,
        "space": "features" if latent is None else "latent",
    }
    if latent is not None:
        config["latent"] = method_identity(latent)
    return JobStore.job(config, input_fingerprints(data_cfg, {}))


def result_row(result: ChooseKResult, seed: int) -> dict[str, Any]:
    """A choose-k result as the row the job store keeps (:func:`result_of` reads it back)."""
    table = result.table.to_dict(orient="records")
    return {"status": "ok", "seed": seed, **result.to_dict(), "table": table,
            "git_commit": git_commit()}  # fmt: skip


def result_of(row: dict[str, Any]) -> ChooseKResult:
    """The choose-k result of a stored row (:func:`result_row`): the same table (missing
    values, stored as null, are NaN again), choices, recommendation and reasons."""
    table = pd.DataFrame.from_records(row["table"]).apply(pd.to_numeric)
    choices = {str(name): int(k) for name, k in row["choices"].items()}
    return ChooseKResult(table, choices, int(row["recommended"]), list(row["reasons"]))


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
    data_cfg, features_cfg = to_container(cfg.data), to_container(cfg.features)
    dataset = load_dataset(data_cfg)
    if k_values[-1] >= len(dataset):
        raise ValueError(
            f"k_selection.k_range goes up to {k_values[-1]}, but dataset '{dataset.name}' has "
            f"only {len(dataset)} rows."
        )
    # built once, when a seed has to run
    features = functools.cache(lambda: build_features(dataset, features_cfg, output_dir).X)

    def fit(seed: int) -> Callable[[Job], Fitted]:
        def run(job: Job) -> Fitted:
            seed_everything(seed)
            X = features()
            Z = latent_space(X, cfg, seed, store.checkpoint_options(job)) if latent else X
            result = choose_k(Z, k_values, random_state=seed, **options)
            logger.info("Seed %d: recommended k=%d (%s)", seed, result.recommended,
                        result.choices)  # fmt: skip
            return result_row(result, seed), None

        return run

    store = job_store(cfg)
    latent = None
    if space == "latent":
        latent = {g: to_container(cfg[g]) for g in ("autoencoder", "pretrain", "trainer")}
    node = to_container(cfg.k_selection)
    works = [
        Work(choose_k_job(data_cfg, features_cfg, node, seed, latent),
             f"choose-k (seed {seed})", fit(seed))
        for seed in seeds
    ]  # fmt: skip
    results = [result_of(row) for row in run_jobs(store, works, output_dir)]
    tables = [
        r.table.assign(seed=seed, space=space, dataset=dataset.name)
        for seed, r in zip(seeds, results)
    ]
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
