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
from deepseg.data.base import Dataset, closest_match
from deepseg.features.pipeline import FeaturePipeline
from deepseg.insight.choose_k import ChooseKResult, as_k_values, choose_k
from deepseg.insight.plots import plot_k_selection
from deepseg.metrics import evaluate
from deepseg.progress import Progress
from deepseg.tasks.common import (
    accepted_kwargs,
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_text,
    call_target,
    dumps,
    git_commit,
    seed_everything,
    to_container,
    torch_threads,
)
from deepseg.tasks.report import choose_report_run, report_options, write_segment_report

logger = logging.getLogger(__name__)

# Columns shown in the printed leaderboard (when present)
LEADERBOARD_METRICS = ["acc", "nmi", "ari", "silhouette", "davies_bouldin", "calinski_harabasz"]


def load_dataset(data_cfg: DictConfig | dict[str, Any]) -> Dataset:
    """Instantiate the dataset described by a ``configs/data`` node."""
    dataset = call_target(data_cfg)
    if not isinstance(dataset, Dataset):
        raise TypeError(f"The data loader returned {type(dataset).__name__}, not a Dataset.")
    return dataset


def resolve_n_clusters(requested: Any, dataset: Dataset) -> int:
    """The number of clusters to use, validated against the data size.

    ``n_clusters=auto`` is resolved later, by :func:`choose_k_auto` on the features.
    """
    k = requested if requested is not None else dataset.n_clusters
    if k is None:
        raise ValueError(
            f"Dataset '{dataset.name}' has no default number of segments: set n_clusters=K."
        )
    n = len(dataset)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 2 <= k <= n:
        raise ValueError(
            f"The 'n_clusters' parameter must be an int in the range [2, n_samples={n}] or "
            f"'auto'. Got {k!r} instead."
        )
    return int(k)


def is_auto(requested: Any) -> bool:
    """Whether ``n_clusters`` asks for choose-k (the string 'auto', in any case)."""
    return isinstance(requested, str) and requested.strip().lower() == "auto"


def choose_k_auto(X: np.ndarray, options: dict[str, Any], seed: int) -> ChooseKResult:
    """Choose k on the feature matrix (label-free) for ``n_clusters=auto``."""
    opts = dict(options or {})
    k_range = opts.pop("k_range", (2, 10))
    result = choose_k(X, as_k_values(k_range), random_state=seed, **opts)
    logger.info("n_clusters=auto: choose-k recommends k=%d. %s", result.recommended,
                " ".join(result.reasons))  # fmt: skip
    return result


def check_methods(methods: list[str], available: dict[str, Any]) -> None:
    """Refuse unknown method names before any work starts."""
    if not methods:
        raise ValueError(f"No methods given. Available methods: {sorted(available)}")
    for m in methods:
        if m not in available:
            raise ValueError(
                f"Unknown method '{m}'.{closest_match(m, list(available))} "
                f"Available methods: {sorted(available)}"
            )


def make_estimator(method_cfg: dict[str, Any], n_clusters: int, seed: int) -> Any:
    """Instantiate a method, passing n_clusters and random_state when it takes them."""
    target = method_cfg["_target_"]
    extra = accepted_kwargs(target, {"n_clusters": n_clusters, "random_state": seed})
    return call_target(method_cfg, **extra)


def shared_autoencoder(
    estimator: Any, X: np.ndarray, seed: int, cache: dict[str, tuple[Any, float]]
) -> tuple[Any, float] | None:
    """Pretrain once per (autoencoder, pretrain, trainer, seed) and share the network.

    Deep methods with identical pretraining options start from the same pretrained
    autoencoder, as in the papers, so its cost is paid once per dataset and seed.

    Returns:
        (autoencoder, pretraining seconds), or None for methods without an autoencoder or that
        bring their own.
    """
    if not getattr(estimator, "uses_autoencoder", False) or estimator.pretrained is not None:
        return None
    if getattr(estimator, "encoder_from", None) is not None:  # starts from a bundle's network
        return None
    from deepseg.cluster.training import pretrain_autoencoder

    key = dumps([estimator.autoencoder, estimator.pretrain, estimator.trainer, seed])
    if key not in cache:
        start = time.perf_counter()
        ae = pretrain_autoencoder(
            X, estimator.autoencoder, estimator.pretrain, estimator.trainer, random_state=seed
        )
        cache[key] = (ae, time.perf_counter() - start)
        logger.info("Pretrained the autoencoder (seed %d) in %.1fs", seed, cache[key][1])
    return cache[key]


def run_one(
    X: np.ndarray,
    dataset: Dataset,
    method: str,
    method_cfg: dict[str, Any],
    n_clusters: int,
    seed: int,
    noise_policy: str,
    pretrained_cache: dict[str, tuple[Any, float]] | None = None,
    keep: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit one method with one seed and score its own labels.

    When ``keep`` is a dict, the fitted estimator and its labels are stored in it (keys
    ``estimator`` and ``labels``) for the segment report.

    A method that fails while fitting gives a row with status "failed" and its error, so one
    method's failure does not lose the others' results. For deep methods ``seconds`` excludes
    the shared pretraining, reported as ``pretrain_seconds``.
    """
    seed_everything(seed)
    estimator = make_estimator(method_cfg, n_clusters, seed)
    row: dict[str, Any] = {
        "dataset": dataset.name,
        "method": method,
        "seed": seed,
        "n_samples": X.shape[0],
        "n_features": X.shape[1],
        "n_clusters": n_clusters,
        "pretrain_seconds": np.nan,
    }
    start = time.perf_counter()
    try:
        shared = shared_autoencoder(
            estimator, X, seed, {} if pretrained_cache is None else pretrained_cache
        )
        if shared is not None:
            estimator.set_params(pretrained=shared[0])
            row["pretrain_seconds"] = round(shared[1], 4)
            start = time.perf_counter()
        labels = np.asarray(estimator.fit_predict(X))
    except Exception as exc:  # any failure of one method is recorded, not raised
        logger.warning("%s (seed %d) failed: %s: %s", method, seed, type(exc).__name__, exc)
        row.update(
            seconds=round(time.perf_counter() - start, 4),
            noise_policy=noise_policy,
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
        )
        return row
    seconds = time.perf_counter() - start
    if keep is not None:
        keep.update(estimator=estimator, labels=labels)
    row.update(evaluate(X, labels, dataset.labels, noise_policy=noise_policy, random_state=seed))
    row.update(seconds=round(seconds, 4), noise_policy=noise_policy, status="ok", error="")
    return row


def leaderboard(results: pd.DataFrame) -> pd.DataFrame:
    """Mean (and std when there are several seeds) of the headline metrics per method."""
    if results.empty:
        return pd.DataFrame(columns=["dataset", "method", "n_seeds"])
    metrics = [m for m in LEADERBOARD_METRICS if m in results and results[m].notna().any()]
    metrics += ["n_clusters_found", "seconds"]
    grouped = results.groupby(["dataset", "method"], sort=False)
    board = grouped[metrics].mean()
    if grouped.size().max() > 1:
        std = grouped[metrics].std().add_suffix("_std")
        board = board.join(std)
    board.insert(0, "n_seeds", grouped.size())
    key = "acc" if "acc" in metrics else ("silhouette" if "silhouette" in metrics else None)
    if key is not None:
        board = board.sort_values(key, ascending=False)
    return board.reset_index()


def format_leaderboard(board: pd.DataFrame) -> str:
    """The leaderboard as a Markdown table, mean ± std when there are several seeds."""
    metrics = [
        c
        for c in board.columns
        if c not in ("dataset", "method", "n_seeds") and not c.endswith("_std")
    ]
    header = ["dataset", "method", "seeds", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in board.iterrows():
        cells = [str(row["dataset"]), str(row["method"]), str(row["n_seeds"])]
        for m in metrics:
            v = row[m]
            if pd.isna(v):
                cells.append("")
                continue
            digits = 2 if m in ("seconds", "calinski_harabasz", "n_clusters_found") else 3
            cell = f"{v:.{digits}f}"
            sd = row.get(f"{m}_std")
            if sd is not None and not pd.isna(sd):
                cell += f" ± {sd:.{digits}f}"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    X = pipeline.fit_transform(dataset)
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
    if k_result is not None:
        atomic_write_csv(output_dir / "choose_k.csv", k_result.table)
        atomic_write_text(output_dir / "choose_k.json", dumps(k_result.to_dict()) + "\n")
        atomic_write_bytes(output_dir / "k_selection.png", plot_k_selection(k_result))
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
            )
    return results
