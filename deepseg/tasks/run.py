"""The run engine that train, benchmark, suite and choose-k share.

Loading a dataset from its config and resolving ``n_clusters``, building the features (only when
a job has to run, :func:`build_features`), checking method names, a job's identity
(:func:`method_job`), fitting one (method, seed) into a scored results row (:func:`run_one`,
:func:`fit_job`: the fit of one job, with its checkpoints and provenance columns), and the
leaderboard of those rows. Jobs run through the one job loop of :mod:`deepseg.jobs`.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

import deepseg
from deepseg.auto import AutoCluster, shared_autoencoder
from deepseg.data.base import Dataset, closest_match
from deepseg.features.pipeline import FeaturePipeline
from deepseg.insight.choose_k import ChooseKResult, as_k_values, choose_k
from deepseg.io import feature_storage
from deepseg.jobs import (
    Fitted,
    Job,
    JobStore,
    features_identity,
    input_fingerprints,
    method_identity,
)
from deepseg.metrics import evaluate
from deepseg.options import AUTO, COMMAND_MIN_CLUSTERS, check_n_clusters
from deepseg.tasks.common import (
    accepted_kwargs,
    call_target,
    dumps,
    git_commit,
    seed_everything,
    to_container,
    torch_threads,
)

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
    return check_n_clusters(k, len(dataset), at_least=COMMAND_MIN_CLUSTERS, or_auto=True)


def is_auto(requested: Any) -> bool:
    """Whether ``n_clusters`` asks for choose-k (the string 'auto', in any case)."""
    return isinstance(requested, str) and requested.strip().lower() == AUTO


def choose_k_auto(X: np.ndarray, options: dict[str, Any], seed: int) -> ChooseKResult:
    """Choose k on the feature matrix (label-free) for ``n_clusters=auto``."""
    opts = dict(options or {})
    k_range = opts.pop("k_range", (2, 10))
    result = choose_k(X, as_k_values(k_range), random_state=seed, **opts)
    logger.info("n_clusters=auto: choose-k recommends k=%d. %s", result.recommended,
                " ".join(result.reasons))  # fmt: skip
    return result


@dataclass
class Opening:
    """A loaded dataset with its features (:func:`build_features`).

    Attributes:
        dataset: the loaded dataset.
        pipeline: the fitted feature pipeline.
        X: the feature matrix, shape (n_samples, n_features).
        feature_seconds: the time the features took.
        documents: the raw text of each row when the features are sentence embeddings of text
            alone (the second view refines partitions of them), else None.
    """

    dataset: Dataset
    pipeline: FeaturePipeline
    X: np.ndarray
    feature_seconds: float
    documents: list[str] | None = None


def embedded_documents(pipeline: FeaturePipeline, dataset: Dataset) -> list[str] | None:
    """The documents behind the features when they are sentence embeddings of text alone.

    That is the input the second view applies to: a table with numeric or categorical columns
    beside its text, or text as TF-IDF, has no embedding for a word view to correct.
    """
    blocks = getattr(pipeline, "blocks_", {})
    if set(blocks) != {"text"} or getattr(blocks["text"], "method_", None) != "sentence":
        return None
    if dataset.frame is None:
        return None
    return pipeline.text_documents(dataset.frame)


def second_view_enabled(options: dict[str, Any] | None, documents: list[str] | None) -> bool:
    """Whether the second view runs: ``enabled`` true, or ``auto`` (the default) on embedded
    documents.

    Raises:
        ValueError: ``enabled`` is not auto, true or false, or it is true on features that are
            not embedded documents.
    """
    opts = dict(options or {})
    enabled = opts.get("enabled", "auto")
    if enabled not in ("auto", True, False):
        raise ValueError(
            "The 'second_view.enabled' parameter must be 'auto', true or false. "
            f"Got {enabled!r} instead."
        )
    if enabled is True and documents is None:
        raise ValueError(
            "second_view.enabled=true needs text features that are sentence embeddings of the "
            "text alone (features.text.method=sentence, no other columns); these features are "
            "not. Use second_view.enabled=auto or false."
        )
    return documents is not None and enabled is not False


#: the options of the second view besides ``enabled`` (the arguments of refine.second_view)
SECOND_VIEW_OPTIONS = ("C", "core_fraction", "min_core", "max_iter", "tol", "embedding_weight")


def check_second_view(options: dict[str, Any] | None) -> None:
    """Refuse a bad ``second_view`` node before any work: an unknown option, or a value out of
    range (named as the refinement names it)."""
    from deepseg.refine import check_second_view_options

    opts = dict(options or {})
    second_view_enabled(opts, ["check"])  # the value of enabled
    unknown = sorted(set(opts) - {"enabled", *SECOND_VIEW_OPTIONS})
    if unknown:
        raise ValueError(
            f"Unknown second_view option(s) {unknown}; known: {['enabled', *SECOND_VIEW_OPTIONS]}."
        )
    # the ranges, checked as the refinement checks them (nothing runs)
    check_second_view_options(**{k: v for k, v in opts.items() if k != "enabled"})


def refine_labels(
    X: np.ndarray, documents: list[str], labels: np.ndarray, options: dict[str, Any], seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """The second view's refinement of one partition and the columns it adds to the row."""
    from deepseg.refine import second_view

    opts = {k: v for k, v in dict(options or {}).items() if k != "enabled"}
    start = time.perf_counter()
    result = second_view(X, documents, labels, random_state=seed, **opts)
    columns = {
        "second_view": not result.skipped,
        "second_view_moved": round(result.moved, 6),
        "second_view_rounds": result.n_iter,
        "second_view_seconds": round(time.perf_counter() - start, 4),
    }
    if result.skipped:
        return np.asarray(labels), columns
    logger.info(
        "Second view: %.1f%% of the documents moved in %d round(s).",
        100 * result.moved, result.n_iter,
    )  # fmt: skip
    return result.labels, columns


def build_features(
    dataset: Dataset, features_cfg: dict[str, Any], output_dir: str | Path,
    memmap_gb: float | None = None,
) -> Opening:  # fmt: skip
    """The features of a loaded dataset: the expensive step, which a command takes only when a
    job has to run. A large feature matrix is memory-mapped in ``output_dir`` (above
    ``memmap_gb``; None: never)."""
    logger.info("Dataset %s: %d rows; building features", dataset.name, len(dataset))
    start = time.perf_counter()
    pipeline = FeaturePipeline(**features_cfg)
    X = pipeline.fit_transform(dataset, out=feature_storage(Path(output_dir), memmap_gb))
    feature_seconds = time.perf_counter() - start
    documents = embedded_documents(pipeline, dataset)
    return Opening(dataset, pipeline, X, feature_seconds, documents)


def second_view_may_apply(
    options: dict[str, Any] | None, dataset: Dataset, features_cfg: dict[str, Any]
) -> bool:
    """Whether the second view may refine this dataset's partitions, known before its features
    are built (a job's identity holds the second view's options where it may): it is not
    switched off, the dataset has text columns and the features may embed them. Wider than
    :func:`second_view_enabled` (a table with other columns beside its text is not refined)."""
    if dict(options or {}).get("enabled", "auto") is False:
        return False
    text = dict(features_cfg.get("text") or {})
    return (
        dataset.frame is not None
        and bool(dataset.roles.text)
        and text.get("method", "auto") != "tfidf"
        and text.get("weight", 1.0) != 0
    )


def method_job(
    cfg: Any, method: str, method_cfg: dict[str, Any], seed: int, *,
    second_view: dict[str, Any] | None = None, k: int | None = None, task: str = "benchmark",
    inputs: dict[str, dict[str, Any]] | None = None, **extra: Any,
) -> Job:  # fmt: skip
    """The one identity of a method's fit, for every command's job (``task`` and ``extra``,
    such as train's objective, say what else its row holds): what decides its row (the
    method's options without cosmetic ones, the data, the features with the text encoder's
    precision resolved for this machine, the requested k, and with ``n_clusters=auto``
    choose-k's options and the ``k`` it chose, the seed, the noise policy, the second view's
    options where it may refine the partition) and the contents of its input files
    (``inputs``: their fingerprints when already computed)."""
    data_cfg = to_container(cfg.data)
    config: dict[str, Any] = {
        "task": task,
        "method": method,
        "model": method_identity(method_cfg),
        "data": data_cfg,
        "features": features_identity(to_container(cfg.features)),
        "n_clusters": to_container(cfg.n_clusters),
        "seed": seed,
        "noise_policy": cfg.noise_policy,
        **extra,
    }
    if second_view is not None:  # only where it applies: other jobs keep their identity
        config["second_view"] = second_view
    if is_auto(cfg.n_clusters):
        config["k_selection"] = to_container(cfg.get("k_selection") or {})
        if k is not None:  # choose-k's answer (it depends on the first seed, too)
            config["n_clusters_chosen"] = int(k)
    if inputs is None:
        inputs = input_fingerprints(data_cfg, method_cfg)
    return JobStore.job(config, inputs)


def add_provenance(
    row: dict[str, Any],
    *,
    method: Any,
    data: Any,
    features: Any,
    k_selection: Any = None,
    auto: bool = False,
    **extra: Any,
) -> None:
    """The columns every results row carries: whether k was chosen, the commit, the version,
    torch's thread count (on which a deep method's labels depend) and the config that produced
    the row (the method's, the data's, the features', choose-k's with ``auto``, and ``extra``).
    """
    config: dict[str, Any] = {"method": method, "data": data, "features": features, **extra}
    if auto:
        config["k_selection"] = k_selection or {}
    row["n_clusters_auto"] = auto
    row["git_commit"] = git_commit()
    row["deepseg_version"] = deepseg.__version__
    row["torch_threads"] = torch_threads()
    row["config"] = dumps(config)


def command_provenance(
    row: dict[str, Any], cfg: Any, method_cfg: Any, **extra: Any
) -> None:  # fmt: skip
    """:func:`add_provenance` from a command's config (its data, features and choose-k
    options) for the method with config ``method_cfg``."""
    add_provenance(
        row, method=method_cfg, data=to_container(cfg.data),
        features=to_container(cfg.features), k_selection=to_container(cfg.get("k_selection")),
        auto=is_auto(cfg.n_clusters), **extra,
    )  # fmt: skip


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


def command_methods(cfg: Any) -> tuple[list[str], dict[str, Any], list[int]]:
    """A benchmark's or a suite's methods (unknown ones refused), the configs of the methods
    it can run, and its seeds (at least one)."""
    methods = [str(m) for m in cfg.methods]
    available = {**to_container(cfg.baseline), **to_container(cfg.get("model") or {})}
    check_methods(methods, available)
    seeds = [int(s) for s in cfg.seeds]
    if not seeds:
        raise ValueError("No seeds given: set seeds=[0] or more (seeds=[0,1,2] for medians).")
    return methods, available, seeds


def make_estimator(method_cfg: dict[str, Any], n_clusters: int, seed: int) -> Any:
    """Instantiate a method, passing n_clusters and random_state when it takes them."""
    target = method_cfg["_target_"]
    extra = accepted_kwargs(target, {"n_clusters": n_clusters, "random_state": seed})
    return call_target(method_cfg, **extra)


def fit_key(method_cfg: Any, n_clusters: int, seed: int) -> str:
    """What makes two fits the same: the method's config (without where its checkpoints go), k
    and the seed."""
    if isinstance(method_cfg, dict) and "checkpoint" in method_cfg:
        method_cfg = {k: v for k, v in method_cfg.items() if k != "checkpoint"}
    return dumps([method_cfg, n_clusters, seed])


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
    fitted: dict[str, tuple[Any, np.ndarray]] | None = None,
    documents: list[str] | None = None,
    second_view: dict[str, Any] | None = None,
    own: dict[str, Any] | None = None,
    stored_for: Callable[[str, Mapping[str, Any]], tuple[np.ndarray, str] | None] | None = None,
) -> dict[str, Any]:
    """Fit one method with one seed and score its own labels.

    With ``documents`` (the raw text behind sentence-embedding features) and the second view
    enabled (``second_view``, :func:`second_view_enabled`), the method's partition is refined
    by :func:`deepseg.refine.second_view` before it is scored: the row's metrics are the
    refined partition's, ``acc_unrefined`` the method's own, and ``second_view_moved`` /
    ``second_view_rounds`` say what the refinement changed. ``auto`` chooses among its
    candidates' own partitions and its choice is refined.

    When ``keep`` is a dict, the fitted estimator and its labels are stored in it (keys
    ``estimator`` and ``labels``) for the segment report. When ``fitted`` is a dict, every
    method that fits is stored in it under its config, k and seed, and ``auto`` takes from it
    the candidates that already ran with the same config (the same fit: nothing is refitted).
    When ``own`` is a dict, the method's own labels (before the second view) are stored in it
    (key ``labels``) when it fits, for the job store. ``stored_for(name, node)`` gives ``auto``
    the partitions of candidates finished in earlier runs (:meth:`AutoCluster.fit`): they are
    served, not refitted; when ``keep`` asks for the estimator and the chosen candidate was
    served, that candidate alone is fitted (:meth:`AutoCluster.fit_chosen`).

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
        # every parameter is checked before the shared pretraining, once: a deep method takes
        # its checked groups back, which the pretraining and its fit do not check again
        checked_groups = getattr(estimator, "checked_groups", None)
        check = getattr(estimator, "check_params", None)
        if checked_groups is not None:
            estimator.set_params(**checked_groups(X.shape[0]))
        elif check is not None:
            check(X.shape[0])
        shared = shared_autoencoder(
            estimator, X, seed, {} if pretrained_cache is None else pretrained_cache
        )
        if shared is not None:
            estimator.set_params(pretrained=shared[0])
            row["pretrain_seconds"] = round(shared[1], 4)
            start = time.perf_counter()
        if isinstance(estimator, AutoCluster):  # its deep candidates share this pretraining
            cache = {} if pretrained_cache is None else pretrained_cache

            def pretrained_for(candidate: Any) -> Any:
                found = shared_autoencoder(candidate, X, seed, cache)
                return None if found is None else found[0]

            def fitted_for(node: Any) -> tuple[Any, np.ndarray] | None:
                return None if fitted is None else fitted.get(fit_key(node, n_clusters, seed))

            estimator.fit(
                X, pretrained_for=pretrained_for, fitted_for=fitted_for, stored_for=stored_for
            )
            labels = estimator.labels_
            if keep is not None:  # the report needs the chosen candidate's estimator
                estimator.fit_chosen(X, pretrained_for=pretrained_for)
        else:
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
    if fitted is not None and not isinstance(estimator, AutoCluster):
        fitted[fit_key(method_cfg, n_clusters, seed)] = (estimator, labels)
    if own is not None:
        own["labels"] = np.asarray(labels)
    if second_view_enabled(second_view, documents):
        assert documents is not None
        unrefined = np.asarray(labels)
        try:
            labels, columns = refine_labels(X, documents, unrefined, dict(second_view or {}), seed)
        except Exception as exc:  # the method's own partition stands; the row says why
            logger.warning("Second view failed (%s: %s); the method's own partition is kept.",
                           type(exc).__name__, exc)  # fmt: skip
            columns = {"second_view": False, "second_view_error": f"{type(exc).__name__}: {exc}"}
        row.update(columns)
        if keep is not None:
            keep["second_view"] = columns
        if dataset.labels is not None:
            row["acc_unrefined"] = evaluate(
                X, unrefined, dataset.labels, metrics=["acc"], noise_policy=noise_policy
            )["acc"]
    if keep is not None:
        keep.update(estimator=estimator, labels=labels)
    row.update(evaluate(X, labels, dataset.labels, noise_policy=noise_policy, random_state=seed))
    row.update(seconds=round(seconds, 4), noise_policy=noise_policy, status="ok", error="")
    if isinstance(estimator, AutoCluster):  # the candidates, their scores, why the winner won
        selection = estimator.selection()
        row.update(auto_chosen=selection["chosen"], auto_selection=dumps(selection))
    # a density method: the space it measured density in (input, pca(d), umap(d))
    if hasattr(estimator, "space_"):
        row["density_space"] = str(estimator.space_)
    # a deep clustering phase ran: its budget, as it ran (MiniBatchKMeans has an n_steps_ too)
    if all(hasattr(estimator, a) for a in ("n_epochs_", "n_steps_", "stopped_early_")):
        row.update(
            cluster_epochs=int(estimator.n_epochs_),
            cluster_steps=int(estimator.n_steps_),
            stopped_early=bool(estimator.stopped_early_),
        )
    return row


def fit_job(
    cfg: Any, data: Opening, method: str, method_cfg: dict[str, Any], k: int, seed: int,
    store: JobStore, job: Job, *, provenance: dict[str, Any] | None = None,
    trainer_logger: Any = None, **options: Any,
) -> Fitted:  # fmt: skip
    """Run one job of a command (train's, or one method and seed of a benchmark): fit
    ``method`` on the opened data with :func:`run_one` (``options``: its other arguments), a
    deep method checkpointing into the job's directory of ``store`` (and logging with
    ``trainer_logger``: neither is part of the job's identity), and give the row, with the
    job's key and the provenance columns (:func:`add_provenance`; ``provenance``: extra
    config), and the method's own labels, for the store."""
    fit_cfg = copy.deepcopy(method_cfg)  # the row's provenance keeps the options as given
    if isinstance(fit_cfg.get("trainer"), dict):  # deep methods
        checkpoint = store.checkpoint_options(job)
        if trainer_logger is not None:
            fit_cfg["trainer"]["logger"] = trainer_logger
        if checkpoint is not None:
            fit_cfg["checkpoint"] = checkpoint
    own: dict[str, Any] = {}
    row = run_one(data.X, data.dataset, method, fit_cfg, k, seed, cfg.noise_policy, own=own,
                  **options)  # fmt: skip
    row.update(feature_seconds=round(data.feature_seconds, 4), job_hash=job.key, resumed_from="")
    command_provenance(row, cfg, method_cfg, **(provenance or {}))
    return row, own.get("labels")


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
