"""The train task: one method on one dataset with one seed -> one results row and a bundle.

``train(cfg, output_dir)`` is what ``deepseg-train`` runs in every job of a run or a multirun.
It reuses the benchmark's loading, feature building, fitting and scoring
(:mod:`deepseg.tasks.benchmark`) so that its row has the benchmark's schema, plus the
train-specific columns ``job_hash``, ``objective``, ``objective_value``, ``objective_space``,
``allow_label_objective`` and ``resumed_from``.

Resume: a finished job stores its row in ``<resume_dir>/<job_hash>.json``, keyed by a hash of the
parts of the resolved config that determine the result and of the *contents* of its input files
(:func:`job_hash`: the data path's files, a starting bundle's files). A later job with the same
hash (e.g. the re-run of an interrupted multirun) is not run again: it writes the stored row into
its own run dir, with ``resumed_from`` naming the run dir that produced it. The same command on a
file whose contents changed (next month's customers under the same name) trains again, and the
log says why. Failed jobs store nothing, so they run again.

Checkpoints: a deep job writes its training checkpoints into ``<resume_dir>/<job_hash>/
checkpoints/`` (the ``checkpoint`` node; :mod:`deepseg.deep.checkpoint`), so the re-run of a
job killed mid-training resumes from its last checkpoint rather than from epoch 0. They are
removed when the job's record is stored, and when ``resume=false`` starts the job over.

The store is shared safely: a job holds ``<resume_dir>/<job_hash>.lock`` (an OS file lock, freed
when its process dies) from the look-up to the stored record, so two sweeps started together on
one store run every job once; records are written atomically as strict JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

import deepseg
from deepseg.features.pipeline import FeaturePipeline
from deepseg.io import atomic_write_json, content_fingerprint, exclusive_lock, feature_storage
from deepseg.metrics import METRICS, evaluate, get_metric
from deepseg.tasks.common import (
    atomic_write_csv,
    atomic_write_text,
    dumps,
    git_commit,
    to_container,
    torch_threads,
)
from deepseg.tasks.run import (
    choose_k_auto,
    is_auto,
    load_dataset,
    resolve_n_clusters,
    run_one,
)

logger = logging.getLogger(__name__)

OBJECTIVE_SPACES = ("features", "embedding")
# Parts of the config that do not change a job's result, left out of its hash.
_TRAINER_COSMETIC = ("enable_progress_bar", "logger", "default_root_dir")


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
    seed = cfg.seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int. Got {seed!r}.")
    check_objective(to_container(cfg.get("objective")))


def job_config(cfg: DictConfig) -> dict[str, Any]:
    """The parts of a train config that determine its result (what :func:`job_hash` hashes).

    The chosen method's resolved options (with the autoencoder, pretraining and trainer options
    of deep methods, without cosmetic trainer options such as progress bars and loggers), the
    data, the features, k, the seed, the noise policy and the objective. Paths, logging and the
    other methods' options are left out.
    """
    method_cfg = dict(to_container(cfg.model))
    if isinstance(method_cfg.get("trainer"), dict):
        method_cfg["trainer"] = {
            k: v for k, v in method_cfg["trainer"].items() if k not in _TRAINER_COSMETIC
        }
    out = {
        "method": cfg.method,
        "model": method_cfg,
        "data": to_container(cfg.data),
        "features": to_container(cfg.features),
        "n_clusters": cfg.n_clusters,
        "seed": cfg.seed,
        "noise_policy": cfg.noise_policy,
        "objective": to_container(cfg.get("objective")),
    }
    if is_auto(cfg.n_clusters):
        out["k_selection"] = to_container(cfg.get("k_selection") or {})
    return out


# Config keys that name input files, whose contents (not only names) decide a job's result.
_INPUT_KEYS = (("data", "path"), ("model", "encoder_from"))


def job_inputs(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """Content fingerprints (:func:`deepseg.io.content_fingerprint`) of the job's input files:
    ``data.path`` and a starting bundle (``model.encoder_from``), where set."""
    out = {}
    for group, key in _INPUT_KEYS:
        node = cfg.get(group)
        value = to_container(node.get(key)) if node is not None and key in node else None
        if value:
            out[f"{group}.{key}"] = content_fingerprint(value)
    return out


def _content_key(inputs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    return {name: fp["sha256"] for name, fp in inputs.items()}


def job_hash(cfg: DictConfig, inputs: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """A short stable hash of :func:`job_config` and of the contents of the input files
    (:func:`job_inputs`): equal configs on equal data give equal hashes.

    Args:
        cfg: the train config.
        inputs: the fingerprints when already computed (they read every input byte).
    """
    inputs = job_inputs(cfg) if inputs is None else inputs
    payload = {"config": job_config(cfg), "inputs": _content_key(inputs)}
    return hashlib.sha256(dumps(payload).encode()).hexdigest()[:16]


def config_hash(cfg: DictConfig) -> str:
    """The hash of :func:`job_config` alone: equal for the same command on other data."""
    return hashlib.sha256(dumps(job_config(cfg)).encode()).hexdigest()[:16]


def checkpoint_dir(cfg: DictConfig, key: str) -> Path | None:
    """Where job ``key`` keeps its training checkpoints: ``<resume_dir>/<key>/checkpoints``
    (None without a resume dir, or with ``checkpoint.enabled=false``).

    Beside the job's record rather than in its run dir: every run of a command gets a new run
    dir, while a re-run of the same job finds its hash, and the job's lock covers them."""
    resume_dir = cfg.get("resume_dir")
    node = cfg.get("checkpoint")
    if not resume_dir or not node or not node.get("enabled", True):
        return None
    return Path(resume_dir) / key / "checkpoints"


def _checkpoint_options(cfg: DictConfig, key: str) -> dict[str, Any] | None:
    """The deep estimators' ``checkpoint`` option for job ``key`` (None: no checkpoints)."""
    directory = checkpoint_dir(cfg, key)
    if directory is None:
        return None
    opts = {k: v for k, v in to_container(cfg.checkpoint).items() if k != "enabled"}
    return {**opts, "dir": str(directory)}


def _remove_checkpoints(cfg: DictConfig, key: str, why: str) -> None:
    directory = checkpoint_dir(cfg, key)
    job_dir = None if directory is None else directory.parent
    if job_dir is None or not job_dir.is_dir():
        return
    shutil.rmtree(job_dir, ignore_errors=True)
    logger.info("Removed the checkpoints of job %s (%s): %s", key, why, job_dir)


def _record_path(cfg: DictConfig, key: str) -> Path | None:
    resume_dir = cfg.get("resume_dir")
    return None if not resume_dir else Path(resume_dir) / f"{key}.json"


def load_record(cfg: DictConfig, key: str) -> dict[str, Any] | None:
    """The stored record of a finished job with hash ``key``, or None."""
    path = _record_path(cfg, key)
    if path is None or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        logger.warning("Ignoring the unreadable job record %s: %s", path, exc)
        return None
    row = record.get("row") if isinstance(record, dict) else None
    return record if isinstance(row, dict) and row.get("status") == "ok" else None


def _describe(inputs: Mapping[str, Mapping[str, Any]]) -> str:
    parts = [
        f"{name}: {fp['n_files']} file(s), {fp['bytes']} bytes, sha256 {fp['sha256'][:12]}"
        for name, fp in inputs.items()
    ]
    return "; ".join(parts) or "no input files (generated data)"


def _why_not_done(cfg: DictConfig, key: str, inputs: Mapping[str, Mapping[str, Any]]) -> str:
    """Why job ``key`` has no finished record: new, or the same config on changed input."""
    resume_dir = cfg.get("resume_dir")
    ours = config_hash(cfg)
    if resume_dir and Path(resume_dir).is_dir():
        for path in sorted(Path(resume_dir).glob("*.json"), key=lambda p: -p.stat().st_mtime):
            try:
                record = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if not isinstance(record, dict) or record.get("config_hash") != ours:
                continue
            before = record.get("inputs") or {}
            changed = [
                f"{name} (was {before.get(name, {}).get('bytes')} bytes, sha256 "
                f"{str(before.get(name, {}).get('sha256'))[:12]}; now {fp['bytes']} bytes, "
                f"sha256 {fp['sha256'][:12]})"
                for name, fp in inputs.items()
                if (before.get(name) or {}).get("sha256") != fp["sha256"]
            ]
            if changed:
                where = record.get("run_dir")
                return f"the input changed since the run in {where}: {', '.join(changed)}"
    return f"no finished record of this config on this input ({_describe(inputs)})"


def _store_record(
    cfg: DictConfig,
    key: str,
    row: dict[str, Any],
    output_dir: Path,
    inputs: Mapping[str, Mapping[str, Any]],
) -> None:
    path = _record_path(cfg, key)
    if path is None:
        return
    record = {
        "job_hash": key,
        "config_hash": config_hash(cfg),
        "inputs": dict(inputs),
        "run_dir": str(output_dir),
        "finished": time.time(),
        "row": row,
    }
    atomic_write_json(path, record, default=str)


@contextlib.contextmanager
def _job_lock(cfg: DictConfig, key: str) -> Iterator[None]:
    """Hold ``<resume_dir>/<key>.lock`` (none without a resume dir): one process at a time
    looks up, runs and records a job. The lock dies with its process; its file stays beside the
    record, except that a job that stored nothing (bad input) in a resume dir it created leaves
    no new resume dir behind."""
    path = _record_path(cfg, key)
    if path is None:
        yield
        return
    created = not path.parent.exists()
    lock_file = path.with_suffix(".lock")

    def waiting() -> None:
        logger.info("Job %s is being run by another process; waiting for it to finish.", key)

    try:
        with exclusive_lock(lock_file, on_wait=waiting):
            try:
                yield
            finally:
                if created and not path.exists():
                    lock_file.unlink(missing_ok=True)  # while still holding it
    finally:
        if created and not path.exists():
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only when empty: another job's records stay


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


def _provenance(cfg: DictConfig, row: dict[str, Any]) -> None:
    """The columns every row carries: commit, version, and the config that produced it."""
    row_config: dict[str, Any] = {
        "method": to_container(cfg.model),
        "data": to_container(cfg.data),
        "features": to_container(cfg.features),
        "objective": to_container(cfg.get("objective")),
    }
    if is_auto(cfg.n_clusters):
        row_config["k_selection"] = to_container(cfg.get("k_selection") or {})
    row["n_clusters_auto"] = is_auto(cfg.n_clusters)
    row["git_commit"] = git_commit()
    row["deepseg_version"] = deepseg.__version__
    row["torch_threads"] = torch_threads()
    row["config"] = dumps(row_config)


def _fit(cfg: DictConfig, output_dir: Path, row: dict[str, Any]) -> dict[str, Any]:
    """Load, build features, fit, score, write the bundle. Raises on bad input."""
    method_cfg = to_container(cfg.model)
    data_cfg = to_container(cfg.data)
    seed = int(cfg.seed)
    dataset = load_dataset(data_cfg)
    auto = is_auto(cfg.n_clusters)
    n_clusters = 0 if auto else resolve_n_clusters(cfg.n_clusters, dataset)
    start = time.perf_counter()
    pipeline = FeaturePipeline(**to_container(cfg.features))
    X = pipeline.fit_transform(
        dataset, out=feature_storage(output_dir, cfg.get("features_memmap_gb"))
    )
    feature_seconds = time.perf_counter() - start
    if auto:
        n_clusters = choose_k_auto(X, to_container(cfg.get("k_selection") or {}), seed).recommended
    # A copy: the logger and the checkpoint directory go in, not in the row nor the job hash
    fit_cfg = json.loads(json.dumps(method_cfg))
    if isinstance(fit_cfg.get("trainer"), dict):  # deep methods (and only they import Lightning)
        factory = _logger_factory(cfg, output_dir)
        if factory is not None:
            fit_cfg["trainer"]["logger"] = factory
        checkpoint = _checkpoint_options(cfg, row["job_hash"])
        if checkpoint is not None:
            fit_cfg["checkpoint"] = checkpoint
    kept: dict[str, Any] = {}
    logger.info("Training %s on %s (seed %d), k=%d", cfg.method, dataset.name, seed, n_clusters)
    fitted = run_one(
        X, dataset, cfg.method, fit_cfg, n_clusters, seed, cfg.noise_policy, {}, keep=kept
    )
    row.update(fitted)
    row["feature_seconds"] = round(feature_seconds, 4)
    if row["status"] != "ok":
        return row
    estimator = kept["estimator"]
    if "trainer" in fit_cfg:  # the bundle keeps the options, not the logger nor the checkpoints
        estimator.set_params(trainer=method_cfg["trainer"], checkpoint=None)
    metric, space, _ = check_objective(to_container(cfg.get("objective")))
    row["objective_value"] = _objective_value(
        metric, space, row, estimator, X, kept["labels"], seed
    )
    metrics = {m: row[m] for m in METRICS if m in row}
    _write_bundle(
        output_dir,
        estimator=estimator,
        pipeline=pipeline,
        dataset=dataset,
        X=X,
        labels=kept["labels"],
        method=cfg.method,
        method_cfg=method_cfg,
        data_cfg=data_cfg,
        metrics=metrics,
    )
    return row


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
    inputs = job_inputs(cfg)
    key = job_hash(cfg, inputs)
    with _job_lock(cfg, key):
        return _train_job(cfg, output_dir, key, inputs, raise_errors)


def _train_job(
    cfg: DictConfig,
    output_dir: Path,
    key: str,
    inputs: Mapping[str, Mapping[str, Any]],
    raise_errors: bool,
) -> dict[str, Any]:
    if cfg.get("resume", False):
        record = load_record(cfg, key)
        if record is not None:
            row = dict(record["row"])
            row["resumed_from"] = record.get("run_dir", "")
            logger.info(
                "%s on %s (seed %s): already done in %s (job %s: same config, same input: "
                "%s); not run again.",
                row["method"], row["dataset"], row["seed"], row["resumed_from"], key,
                _describe(inputs),
            )  # fmt: skip
            _write_results(cfg, output_dir, row)
            return row
        logger.info("Running job %s: %s.", key, _why_not_done(cfg, key, inputs))
    else:
        logger.info("Running job %s: resume=false.", key)
        _remove_checkpoints(cfg, key, "resume=false starts over")
    row = _base_row(cfg, key)
    start = time.perf_counter()
    try:
        row = _fit(cfg, output_dir, row)
    except Exception as exc:
        if raise_errors:
            raise
        logger.error("%s (seed %d) failed: %s: %s", cfg.method, cfg.seed, type(exc).__name__, exc)
        row.update(
            seconds=round(time.perf_counter() - start, 4),
            noise_policy=cfg.noise_policy,
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
        )
    _provenance(cfg, row)
    _write_results(cfg, output_dir, row)
    if row["status"] == "ok":
        _store_record(cfg, key, row, output_dir, inputs)
        # the record now answers a re-run; a failed job keeps them for its next attempt
        _remove_checkpoints(cfg, key, "finished")
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
