"""The train task: one method on one dataset with one seed -> one results row and a bundle.

``train(cfg, output_dir)`` is what ``deepseg-train`` runs in every job of a run or a multirun.
It loads, builds features and fits its job through the engine (:mod:`deepseg.tasks.run`,
:func:`~deepseg.tasks.run.fit_job`) as the benchmark does, so that its row has the benchmark's
schema, plus the train-specific columns ``job_hash``, ``objective``, ``objective_value``,
``objective_space``, ``allow_label_objective`` and ``resumed_from``.

Resume and checkpoints: every job goes through the job store (:mod:`deepseg.jobs`) that
the benchmark and the suite use too: a finished job's row is stored under a hash of the parts of
the resolved config that determine the result and of the *contents* of its input files
(:func:`train_job`), so a later job with the same key (e.g. the re-run of an
interrupted multirun) is not run again, and a deep job killed mid-training resumes from its last
checkpoint.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from deepseg.constraints import check_value
from deepseg.features.pipeline import FeaturePipeline
from deepseg.jobs import (
    Fitted,
    Job,
    JobStore,
    Work,
    run_jobs,
)
from deepseg.metrics import METRICS, evaluate, get_metric
from deepseg.options import SEED_VALUE
from deepseg.tasks.common import (
    atomic_write_csv,
    atomic_write_text,
    job_store,
    to_container,
)
from deepseg.tasks.run import (
    build_features,
    choose_k_auto,
    command_provenance,
    fit_job,
    is_auto,
    load_dataset,
    method_job,
    resolve_n_clusters,
)

logger = logging.getLogger(__name__)

OBJECTIVE_SPACES = ("features", "embedding")


def check_objective(objective: Mapping[str, Any] | None) -> tuple[str, str, bool]:
    """Validate the ``objective`` node: (metric, space, allow_label_objective).

    Raises:
        ValueError: on a metric that is not in the registry (the message names the valid ones),
            a label-based metric without ``allow_label_objective=true``, or an unknown space.
    """
    objective = dict(objective or {})
    metric = objective.get("metric")
    if metric is None:
        raise ValueError(
            "objective.metric is not set; valid metrics: "
            f"{', '.join(m for m, info in METRICS.items() if not info.needs_labels)}."
        )
    try:
        info = get_metric(metric)
    except ValueError as exc:
        raise ValueError(f"objective.metric: {exc}") from None
    allow = objective.get("allow_label_objective", False)
    if not isinstance(allow, bool):
        raise TypeError(f"objective.allow_label_objective must be true or false. Got {allow!r}.")
    if info.needs_labels and not allow:
        label_free = [m for m, i in METRICS.items() if not i.needs_labels]
        raise ValueError(
            f"objective.metric={metric!r} needs ground-truth labels, which would choose "
            "hyperparameters with the answer; set objective.allow_label_objective=true to do it "
            f"anyway (recorded in every row), or use a label-free metric: {', '.join(label_free)}."
        )
    space = objective.get("space", "features")
    if space not in OBJECTIVE_SPACES:
        raise ValueError(f"objective.space must be one of {OBJECTIVE_SPACES}. Got {space!r}.")
    return metric, space, allow


def metric_direction(metric: str) -> str:
    """``maximize`` or ``minimize`` for a registered metric (for Optuna's ``direction``)."""
    return "maximize" if get_metric(metric).higher_is_better else "minimize"


def check_train_config(cfg: DictConfig) -> None:
    """Everything that can be refused before any work: the method, the seed, the objective."""
    method = cfg.get("method")
    if not isinstance(method, str) or not method:
        raise ValueError(f"method must be the name of the chosen model config. Got {method!r}.")
    model = cfg.get("model")
    if not model or "_target_" not in model:
        raise ValueError(f"model (the config of method {method!r}) has no _target_: {model}")
    check_value(None, "seed", cfg.seed, SEED_VALUE)
    check_objective(to_container(cfg.get("objective")))


def train_job(cfg: DictConfig) -> Job:
    """The job of a train config: the method's fit as every command identifies it
    (:func:`~deepseg.tasks.run.method_job`), with its objective (the row's
    ``objective_value``). Paths, logging and the other methods' options are left out."""
    return method_job(cfg, cfg.method, to_container(cfg.model), int(cfg.seed), task="train",
                      objective=to_container(cfg.get("objective")))  # fmt: skip


def _logger_factory(cfg: DictConfig, output_dir: Path) -> Callable[[], Any] | None:
    """A callable making one Lightning logger per training phase (from the ``logger`` node)."""
    node = cfg.get("logger")
    if not node or "_target_" not in node:
        return None
    from hydra.utils import instantiate

    extra = {} if "save_dir" in node else {"save_dir": str(output_dir)}
    factory = instantiate(node, **extra)
    if not callable(factory):
        raise TypeError(f"The logger config must make a callable (_partial_: true): {node}")
    return factory


def _objective_value(
    metric: str, space: str, row: dict[str, Any], estimator: Any, X: np.ndarray, labels: Any,
    seed: int,
) -> float:  # fmt: skip
    """The objective on the features (the row's own value) or on the method's embedding."""
    if (
        space == "embedding"
        and hasattr(estimator, "transform")
        and not get_metric(metric).needs_labels
    ):
        try:
            Z = np.asarray(estimator.transform(X), dtype=np.float64)
        except Exception as exc:  # methods whose transform is not an embedding
            logger.warning("No embedding for the objective (%s); using the features.", exc)
        else:
            return evaluate(Z, labels, metrics=[metric], random_state=seed)[metric]
    return float(row.get(metric, math.nan))


def _write_bundle(
    output_dir: Path,
    *,
    estimator: Any,
    pipeline: FeaturePipeline,
    dataset: Any,
    X: np.ndarray,
    labels: np.ndarray,
    method: str,
    method_cfg: dict[str, Any],
    data_cfg: dict[str, Any],
    metrics: dict[str, Any],
) -> None:
    """Save the fitted segmenter to ``<run dir>/bundle/`` and the assignments to
    ``<run dir>/assignments.csv`` (deepseg.bundle).

    Methods that cannot assign new rows (agglomerative, dbscan, hdbscan, spectral) get the
    assignments but no bundle.
    """
    from deepseg.bundle import model_state, save_bundle, write_assignments

    try:
        model_state(estimator, method)
    except ValueError as exc:
        logger.info("No bundle: %s", exc)
    else:
        save_bundle(
            output_dir / "bundle",
            estimator=estimator,
            pipeline=pipeline,
            dataset=dataset,
            X=X,
            method=method,
            method_config=method_cfg,
            data_config=data_cfg,
            metrics=metrics,
        )
    proba = None
    if hasattr(estimator, "predict_proba"):
        try:
            proba = estimator.predict_proba(X)
        except Exception as exc:  # e.g. a method whose predict_proba needs something else
            logger.warning("No confidences for assignments.csv: %s", exc)
    write_assignments(output_dir / "assignments.csv", ids=dataset.ids, labels=labels, proba=proba)


def _base_row(cfg: DictConfig, key: str) -> dict[str, Any]:
    metric, space, allow = check_objective(to_container(cfg.get("objective")))
    data_cfg = to_container(cfg.data)
    return {
        "dataset": data_cfg.get("name", ""),
        "method": cfg.method,
        "seed": int(cfg.seed),
        "objective": metric,
        "objective_space": space,
        "allow_label_objective": allow,
        "objective_value": math.nan,
        "job_hash": key,
        "resumed_from": "",
    }


def _fit(cfg: DictConfig, output_dir: Path, row: dict[str, Any], store: JobStore,
         job: Job) -> Fitted:  # fmt: skip
    """Load, build features, fit, score, write the bundle; the row and the method's own
    labels, for the job store. Raises on bad input."""
    method_cfg = to_container(cfg.model)
    seed = int(cfg.seed)
    dataset = load_dataset(to_container(cfg.data))
    k = 0 if is_auto(cfg.n_clusters) else resolve_n_clusters(cfg.n_clusters, dataset)
    data = build_features(dataset, to_container(cfg.features), output_dir,
                          cfg.get("features_memmap_gb"))  # fmt: skip
    if is_auto(cfg.n_clusters):  # label-free: choose-k sees only the features
        k = choose_k_auto(data.X, to_container(cfg.get("k_selection") or {}), seed).recommended
    kept: dict[str, Any] = {}
    logger.info("Training %s on %s (seed %d), k=%d", cfg.method, dataset.name, seed, k)
    fitted, labels = fit_job(
        cfg, data, cfg.method, method_cfg, k, seed, store, job,
        provenance={"objective": to_container(cfg.get("objective"))},
        pretrained_cache={}, keep=kept,
        # deep methods (and only they import Lightning) log their training curves
        trainer_logger=(_logger_factory(cfg, output_dir)
                        if isinstance(method_cfg.get("trainer"), dict) else None),
    )  # fmt: skip
    row.update(fitted)
    if row["status"] != "ok":
        return row, labels
    estimator = kept["estimator"]
    if "trainer" in method_cfg:  # the bundle keeps the options, not the logger nor checkpoints
        estimator.set_params(trainer=method_cfg["trainer"], checkpoint=None)
    metric, space, _ = check_objective(to_container(cfg.get("objective")))
    row["objective_value"] = _objective_value(
        metric, space, row, estimator, data.X, kept["labels"], seed
    )
    _write_bundle(
        output_dir, estimator=estimator, pipeline=data.pipeline, dataset=dataset, X=data.X,
        labels=kept["labels"], method=cfg.method, method_cfg=method_cfg,
        data_cfg=to_container(cfg.data), metrics={m: row[m] for m in METRICS if m in row},
    )  # fmt: skip
    return row, labels


def _write_results(cfg: DictConfig, output_dir: Path, row: dict[str, Any]) -> None:
    resolved = {k: v for k, v in to_container(cfg).items() if k != "hydra"}
    atomic_write_text(output_dir / "config.yaml", OmegaConf.to_yaml(resolved))
    atomic_write_csv(output_dir / "results.csv", pd.DataFrame([row]))


def train(cfg: DictConfig, output_dir: str | Path, *, raise_errors: bool = True) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.data`` with ``cfg.seed`` and write the run's results.

    Writes into ``output_dir``: ``config.yaml`` (the resolved config), ``results.csv`` (one
    row, the benchmark's schema plus the objective and resume columns), the bundle
    (``bundle/``, ``assignments.csv``) and, for deep methods, the training curves of the
    configured ``logger``. A method that fails while fitting gives a row with status "failed"
    and its error.

    Args:
        cfg: the composed ``train`` config.
        output_dir: the run directory.
        raise_errors: True (single runs): bad input (data, features, ``n_clusters``) raises
            before anything is written. False (jobs of a multirun): every error after the config
            checks becomes a failed row, so that one job's failure does not stop the sweep.

    Returns:
        The results row, with ``objective_value`` (nan when the job failed).

    Raises:
        ValueError, TypeError: an unknown method or objective, a bad seed (always); bad data or
            ``n_clusters`` (with ``raise_errors``).
    """
    output_dir = Path(output_dir)
    check_train_config(cfg)
    job = train_job(cfg)
    store = job_store(cfg)

    def fit(job: Job) -> Fitted:
        row = _base_row(cfg, job.key)
        start = time.perf_counter()
        try:
            return _fit(cfg, output_dir, row, store, job)
        except Exception as exc:
            if raise_errors:
                raise
            logger.error("%s (seed %d) failed: %s: %s", cfg.method, cfg.seed,
                         type(exc).__name__, exc)  # fmt: skip
            row.update(
                seconds=round(time.perf_counter() - start, 4),
                noise_policy=cfg.noise_policy,
                status="failed",
                error=f"{type(exc).__name__}: {exc}",
            )
            command_provenance(row, cfg, to_container(cfg.model),
                               objective=to_container(cfg.get("objective")))  # fmt: skip
            return row, None

    work = Work(job, f"{cfg.method} (seed {cfg.seed})", fit)
    (row,) = run_jobs(store, [work], output_dir)
    _write_results(cfg, output_dir, row)
    return row


def status_line(row: Mapping[str, Any], job: str = "") -> str:
    """One line for a finished job: the job, its status and time, its headline metrics."""
    name = f"{row.get('method')} {row.get('dataset')} seed={row.get('seed')}"
    head = f"[{job}] {name}" if job else name
    if row.get("status") != "ok":
        return f"{head}: FAILED after {row.get('seconds', math.nan):.2f}s: {row.get('error')}"
    parts = [f"{row.get('objective')}={row.get('objective_value', math.nan):.4f}"]
    for m in ("acc", "nmi"):
        value = row.get(m)
        if value is not None and not pd.isna(value):
            parts.append(f"{m}={value:.3f}")
    when = "resumed" if row.get("resumed_from") else f"ok in {row.get('seconds', 0.0):.2f}s"
    return f"{head}: {when}, " + " ".join(parts)
