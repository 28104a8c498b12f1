"""The benchmark task: one dataset, methods x seeds -> results rows and a leaderboard."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from deepseg.insight.plots import plot_k_selection
from deepseg.jobs import (
    Fitted,
    Job,
    JobStore,
    Work,
    run_jobs,
)
from deepseg.progress import Progress
from deepseg.tasks.choose_k import choose_k_job, result_of, result_row
from deepseg.tasks.common import (
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_text,
    dumps,
    job_store,
    to_container,
)
from deepseg.tasks.report import choose_report_run, report_options, write_segment_report
from deepseg.tasks.run import (
    LEADERBOARD_METRICS,
    Opening,
    build_features,
    check_second_view,
    choose_k_auto,
    command_methods,
    fit_job,
    format_leaderboard,
    is_auto,
    leaderboard,
    load_dataset,
    method_job,
    resolve_n_clusters,
    second_view_enabled,
    second_view_may_apply,
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

    Every (method, seed) is a job of the job store (:mod:`deepseg.jobs`, ``resume_dir``):
    one that finished before with the same options on the same input is not run again (its row
    is taken, with ``resumed_from``), and a deep fit killed mid-training resumes from its last
    checkpoint. The report's fit always runs (the report needs the fitted model). A finished
    job also stores its method's own partition, so ``auto`` takes each candidate that finished
    before as a method of this benchmark (the same job: config node, k, seed, data, features)
    from the store instead of refitting it (:func:`stored_partitions`); when the report needs
    auto's estimator, only its chosen candidate is fitted.

    Args:
        cfg: the composed ``benchmark`` config.
        output_dir: the run directory.

    Returns:
        The results table.
    """
    output_dir = Path(output_dir)
    methods, available, seeds = command_methods(cfg)
    report_cfg = to_container(cfg.get("report"))
    report_opts = report_options(report_cfg) if report_cfg is not None else None
    report_run = choose_report_run(report_opts, methods, seeds) if report_opts else None
    data_cfg = to_container(cfg.data)
    features_cfg = to_container(cfg.features)
    k_selection = to_container(cfg.get("k_selection") or {})
    second_view = to_container(cfg.get("second_view")) or {}
    check_second_view(second_view)
    dataset = load_dataset(data_cfg)  # bad data and k are refused before anything is written
    auto = is_auto(cfg.n_clusters)
    k = 0 if auto else resolve_n_clusters(cfg.n_clusters, dataset)
    # what a job's identity holds is known before the features: they are built when a job runs
    refines = second_view_may_apply(second_view, dataset, features_cfg)
    if second_view.get("enabled") is True and not refines:  # before the store serves a row
        second_view_enabled(second_view, None)  # raises: these features are not embedded text
    refining = second_view if refines else None

    @functools.cache
    def opening() -> Opening:
        data = build_features(dataset, features_cfg, output_dir, cfg.get("features_memmap_gb"))
        # enabled=true on features that are not embedded text is refused before any fit
        second_view_enabled(second_view, data.documents)
        return data

    store = job_store(cfg)
    k_result = None
    if auto:  # label-free: choose-k sees only the feature matrix, with the first seed

        def choose(job: Job) -> Fitted:
            result = choose_k_auto(opening().X, k_selection, seeds[0])
            return result_row(result, seeds[0]), None

        work = Work(choose_k_job(data_cfg, features_cfg, k_selection, seeds[0]),
                    f"choose-k (seed {seeds[0]})", choose)  # fmt: skip
        (found,) = run_jobs(store, [work], output_dir)
        k_result = result_of(found)
        k = k_result.recommended
        logger.info("n_clusters=auto: k=%d", k)
    kept: dict[str, Any] = {}
    progress = Progress(len(seeds) * len(methods), "benchmark jobs", "jobs", logger=logger)

    def fit(
        method: str, seed: int, shared: dict[str, Any], reported: bool
    ) -> Callable[[Job], Fitted]:
        method_cfg = available[method]

        def run(job: Job) -> Fitted:
            data = opening()
            row, labels = fit_job(
                cfg, data, method, method_cfg, k, seed, store, job,
                provenance={"second_view": second_view} if refines else None,
                pretrained_cache=shared["pretrained"], keep=kept if reported else None,
                fitted=shared["fitted"], documents=data.documents, second_view=second_view,
                stored_for=stored_partitions(cfg, store, seed, refining, len(dataset), k),
            )  # fmt: skip
            _log_row(row)
            return row, labels

        return run

    def works() -> Iterator[Work]:
        for seed in seeds:
            # auto reuses the methods run before it, deep methods one pretraining
            shared: dict[str, Any] = {"pretrained": {}, "fitted": {}}
            for method in methods:
                method_cfg = available[method]
                job = method_job(cfg, method, method_cfg, seed, second_view=refining, k=k)
                # the report needs the fitted model, so its fit always runs
                reported = report_run == (method, seed)
                yield Work(job, f"{method} (seed {seed})", fit(method, seed, shared, reported),
                           rerun=reported)  # fmt: skip

    rows = []
    for row in run_jobs(store, works(), output_dir):
        rows.append(row)
        progress.update()
    progress.close()
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
            data = opening()
            write_segment_report(
                output_dir,
                dataset=dataset,
                X=data.X,
                pipeline=data.pipeline,
                labels=kept["labels"],
                estimator=kept["estimator"],
                method=report_run[0],
                seed=report_run[1],
                options=report_opts,
                leaderboard=board,
                choose_k=k_result,
                k_selection_png=k_png,
                second_view=kept.get("second_view"),
            )
    return results


def stored_partitions(
    cfg: DictConfig, store: JobStore, seed: int,
    second_view: dict[str, Any] | None, n_samples: int, k: int | None = None,
) -> Callable[[str, Mapping[str, Any]], tuple[np.ndarray, str] | None]:  # fmt: skip
    """``auto``'s look-up of its candidates in the job store (``stored_for`` of
    :meth:`deepseg.auto.AutoCluster.fit`): candidate ``name`` with config ``node`` is the job
    that method ``name`` with that config would be in this benchmark
    (:func:`~deepseg.tasks.run.method_job`, the same seed, data, features, k and second
    view), and its stored labels, the method's own partition, are served when that job
    finished with them."""

    def stored_for(name: str, node: Mapping[str, Any]) -> tuple[np.ndarray, str] | None:
        method_cfg = to_container(node)
        if not isinstance(method_cfg, dict):
            return None
        job = method_job(cfg, name, dict(method_cfg), seed, second_view=second_view, k=k)
        labels = store.stored_labels(job, n_samples)
        return None if labels is None else (labels, f"the job store (job {job.key})")

    return stored_for


def _log_row(row: dict[str, Any]) -> None:
    if row["status"] == "ok":
        logger.info(
            "%s seed %d: acc=%s silhouette=%.3f in %.2fs",
            row["method"],
            row["seed"],
            "n/a" if np.isnan(row["acc"]) else f"{row['acc']:.3f}",
            row["silhouette"],
            row["seconds"],
        )
