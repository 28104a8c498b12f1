"""The benchmark task: one dataset, methods x seeds -> results rows and a leaderboard."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

import deepseg
from deepseg.features.pipeline import FeaturePipeline
from deepseg.insight.choose_k import ChooseKResult
from deepseg.insight.plots import plot_k_selection
from deepseg.io import feature_storage
from deepseg.progress import Progress
from deepseg.tasks.common import (
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_text,
    dumps,
    git_commit,
    to_container,
    torch_threads,
)
from deepseg.tasks.report import choose_report_run, report_options, write_segment_report
from deepseg.tasks.run import (
    LEADERBOARD_METRICS,
    check_methods,
    choose_k_auto,
    format_leaderboard,
    is_auto,
    leaderboard,
    load_dataset,
    resolve_n_clusters,
    run_one,
)

__all__ = ["LEADERBOARD_METRICS", "format_leaderboard", "leaderboard", "run_benchmark"]

logger = logging.getLogger(__name__)


def run_benchmark(cfg: DictConfig, output_dir: str | Path) -> pd.DataFrame:
    """Run every (method, seed) on one dataset and write the results into ``output_dir``.

    Writes ``results.csv`` (one row per dataset, method and seed) and ``leaderboard.md`` /
    ``leaderboard.csv``. With ``n_clusters=auto`` k is chosen by choose-k on the features
    (``choose_k.csv``, ``choose_k.json``, ``k_selection.png``; every row has
    ``n_clusters_auto``). With a ``report`` node, the segmentation of ``report.method`` and
    ``report.seed`` (default: the first of each) is profiled into ``report.html``,
    ``segments.csv`` and ``profiles.csv``. Nothing is written when the inputs are invalid;
    the files are written atomically once every run has finished.

    Args:
        cfg: the composed ``benchmark`` config.
        output_dir: the run directory.

    Returns:
        The results table.
    """
    output_dir = Path(output_dir)
    methods = list(cfg.methods)
    available = {**to_container(cfg.baseline), **to_container(cfg.get("model") or {})}
    check_methods(methods, available)
    seeds = [int(s) for s in cfg.seeds]
    if not seeds:
        raise ValueError("No seeds given: set seeds=[0] or more.")
    report_cfg = to_container(cfg.get("report"))
    report_opts = report_options(report_cfg) if report_cfg is not None else None
    report_run = choose_report_run(report_opts, methods, seeds) if report_opts else None
    data_cfg = to_container(cfg.data)
    dataset = load_dataset(data_cfg)
    auto = is_auto(cfg.n_clusters)
    n_clusters = 0 if auto else resolve_n_clusters(cfg.n_clusters, dataset)
    features_cfg = to_container(cfg.features)
    logger.info("Dataset %s: %d rows; building features", dataset.name, len(dataset))
    start = time.perf_counter()
    pipeline = FeaturePipeline(**features_cfg)
    X = pipeline.fit_transform(
        dataset, out=feature_storage(output_dir, cfg.get("features_memmap_gb"))
    )
    feature_seconds = time.perf_counter() - start
    k_result: ChooseKResult | None = None
    if auto:
        # label-free: choose-k sees only the feature matrix, with the first seed
        k_result = choose_k_auto(X, to_container(cfg.get("k_selection") or {}), seeds[0])
        n_clusters = k_result.recommended
    commit = git_commit()
    rows = []
    kept: dict[str, Any] = {}
    jobs = Progress(len(seeds) * len(methods), "benchmark jobs", "jobs", logger=logger)
    for seed in seeds:
        pretrained_cache: dict[str, tuple[Any, float]] = {}
        fitted: dict[str, tuple[Any, np.ndarray]] = {}  # auto reuses the methods run before it
        for method in methods:
            logger.info("Running %s (seed %d)", method, seed)
            row = run_one(
                X,
                dataset,
                method,
                available[method],
                n_clusters,
                seed,
                cfg.noise_policy,
                pretrained_cache,
                keep=kept if report_run == (method, seed) else None,
                fitted=fitted,
            )
            row["n_clusters_auto"] = auto
            row["feature_seconds"] = round(feature_seconds, 4)
            row["git_commit"] = commit
            row["deepseg_version"] = deepseg.__version__
            row["torch_threads"] = torch_threads()
            row_config = {"method": available[method], "data": data_cfg, "features": features_cfg}
            if auto:
                row_config["k_selection"] = to_container(cfg.get("k_selection") or {})
            row["config"] = dumps(row_config)
            if row["status"] == "ok":
                logger.info(
                    "%s seed %d: acc=%s silhouette=%.3f in %.2fs",
                    method,
                    seed,
                    "n/a" if np.isnan(row["acc"]) else f"{row['acc']:.3f}",
                    row["silhouette"],
                    row["seconds"],
                )
            rows.append(row)
            jobs.update()
    jobs.close()
    results = pd.DataFrame(rows)
    board = leaderboard(results[results["status"] == "ok"])
    atomic_write_csv(output_dir / "results.csv", results)
    atomic_write_csv(output_dir / "leaderboard.csv", board)
    atomic_write_text(output_dir / "leaderboard.md", format_leaderboard(board) + "\n")
    k_png = None
    if k_result is not None:
        k_png = plot_k_selection(k_result)  # drawn once: the report shows the same image
        atomic_write_csv(output_dir / "choose_k.csv", k_result.table)
        atomic_write_text(output_dir / "choose_k.json", dumps(k_result.to_dict()) + "\n")
        atomic_write_bytes(output_dir / "k_selection.png", k_png)
    if report_run is not None:
        if "labels" not in kept:
            logger.error(
                "No report: %s (seed %d) failed, so there is no segmentation to report.",
                *report_run,
            )
        else:
            write_segment_report(
                output_dir,
                dataset=dataset,
                X=X,
                pipeline=pipeline,
                labels=kept["labels"],
                estimator=kept["estimator"],
                method=report_run[0],
                seed=report_run[1],
                options=report_opts,
                leaderboard=board,
                choose_k=k_result,
                k_selection_png=k_png,
            )
    return results
