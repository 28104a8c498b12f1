"""The segment report of one fitted method: report.html, segments.csv and profiles.csv."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepseg.auto import describe_selection
from deepseg.data.base import Dataset
from deepseg.features.columns import missing_values
from deepseg.features.pipeline import FeaturePipeline
from deepseg.insight import plots
from deepseg.insight.association import attribute_association
from deepseg.insight.choose_k import ChooseKResult
from deepseg.insight.drivers import (
    readable_matrix,
    surrogate_drivers,
    term_indicators,
    text_component_names,
)
from deepseg.insight.profiles import SegmentProfiles, profile_segments
from deepseg.insight.report import (
    ReportContent,
    input_notes,
    render_report,
    report_title,
    segments_table,
)
from deepseg.tasks.common import atomic_write_csv, atomic_write_text

logger = logging.getLogger(__name__)

#: Options of a ``configs/report`` node and their defaults.
REPORT_DEFAULTS: dict[str, Any] = {
    "method": None,
    "seed": None,
    "max_depth": 4,
    "map": "auto",
    "sample_size": 5000,
    "rfm": {},
    "labels": {},
}

CONFIDENCE_NOTE = (
    "segments.csv: confidence is the largest soft assignment (predict_proba) when the method has "
    "one, else 1.0 (a hard assignment)."
)


def report_options(node: Mapping[str, Any] | None) -> dict[str, Any]:
    """The report options with defaults filled in; unknown keys are refused."""
    opts = dict(REPORT_DEFAULTS)
    unknown = sorted(set(node or {}) - set(REPORT_DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown report option(s) {unknown}. Known: {sorted(REPORT_DEFAULTS)}")
    opts.update({k: v for k, v in (node or {}).items()})
    opts["rfm"] = dict(opts.get("rfm") or {})
    opts["labels"] = {str(k): str(v) for k, v in dict(opts.get("labels") or {}).items()}
    return opts


def choose_report_run(
    opts: Mapping[str, Any], methods: list[str], seeds: list[int]
) -> tuple[str, int]:
    """The (method, seed) whose segmentation is reported: the configured one; else ``auto``
    when it ran (the method deepseg recommends, whose choice the report explains); else the
    first method.

    Never chosen by a metric, so ground-truth labels cannot pick the reported segmentation.
    """
    method = opts.get("method") or ("auto" if "auto" in methods else methods[0])
    seed = seeds[0] if opts.get("seed") is None else int(opts["seed"])
    if method not in methods:
        raise ValueError(f"report.method='{method}' is not among the methods run: {methods}")
    if seed not in seeds:
        raise ValueError(f"report.seed={seed} is not among the seeds run: {seeds}")
    return method, seed


def raw_table(dataset: Dataset) -> tuple[pd.DataFrame, list[str], list[str], list[str]]:
    """The dataset's original columns and their roles (numeric, categorical, text); numeric
    columns that hold one value (a shop closed on Saturdays: ``share_weekday_5``) describe no
    segment and are left out, with a log line."""
    if dataset.frame is not None:
        roles = dataset.roles
        numeric = [c for c in roles.numeric if dataset.frame[c].nunique(dropna=True) > 1]
        if len(numeric) < len(roles.numeric):
            constant = [c for c in roles.numeric if c not in numeric]
            logger.info("The profiles leave out constant column(s) %s", ", ".join(constant))
        return dataset.frame, numeric, list(roles.categorical), list(roles.text)
    assert dataset.X is not None
    names = dataset.feature_names or [f"x{j}" for j in range(dataset.X.shape[1])]
    frame = pd.DataFrame(np.asarray(dataset.X), columns=names)
    return frame, list(names), [], []


def column_labels(frame: pd.DataFrame, labels: Mapping[str, str]) -> dict[str, str]:
    """The user's ``report.labels`` over the words deepseg has for the customer features it
    builds from a transaction log (:data:`deepseg.data.transactions.FEATURE_LABELS`), when the
    table holds them."""
    from deepseg.data.transactions import FEATURE_LABELS, NUMERIC_FEATURES

    built = set(NUMERIC_FEATURES) <= set(map(str, frame.columns))
    return {**(FEATURE_LABELS if built else {}), **labels}


def confidence_of(estimator: Any, X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, str]:
    """Largest soft assignment when the method has ``predict_proba``, else 1.0."""
    if hasattr(estimator, "predict_proba"):
        try:
            q = np.asarray(estimator.predict_proba(X))
        except Exception as exc:  # e.g. AEKMeans: no soft assignment after all
            logger.info("No soft assignment from %s: %s", type(estimator).__name__, exc)
        else:
            if q.ndim == 2 and q.shape[0] == len(labels):
                return q.max(axis=1), "max predict_proba"
    return np.ones(len(labels)), "1.0 (hard assignment)"


def segment_report(
    dataset: Dataset,
    X: np.ndarray,
    pipeline: FeaturePipeline,
    labels: np.ndarray,
    *,
    estimator: Any = None,
    method: str = "",
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    leaderboard: pd.DataFrame | None = None,
    choose_k: ChooseKResult | None = None,
    k_selection_png: bytes | None = None,
    run_dir: str | Path | None = None,
    second_view: Mapping[str, Any] | None = None,
) -> tuple[str, pd.DataFrame, SegmentProfiles]:
    """Profile, name and explain one segmentation.

    Args:
        dataset: the dataset that was segmented.
        X: its feature matrix, shape (n_samples, n_features).
        pipeline: the fitted feature pipeline that produced ``X``.
        labels: the method's own segment of every row, shape (n_samples,).
        estimator: the fitted method (for soft assignments and latent space), or None.
        method: its name; seed: its seed.
        options: report options (see :data:`REPORT_DEFAULTS`).
        leaderboard: the benchmark leaderboard, shown first.
        choose_k: the choose-k result when k was chosen automatically.
        k_selection_png: its plot, when already drawn (else it is drawn here).
        run_dir: searched for Lightning ``metrics.csv`` logs (training curves).
        second_view: the second view's columns of the results row (``second_view_moved``,
            ``second_view_rounds``) when ``labels`` are its refinement of the method's own.

    Returns:
        (report HTML, segments table, profiles).
    """
    opts = report_options(options)
    labels = np.asarray(labels)
    frame, numeric, categorical, text = raw_table(dataset)
    reference_date = getattr(pipeline.blocks_.get("numeric"), "reference_date_", None)
    profiles = profile_segments(
        frame,
        labels,
        numeric=numeric,
        categorical=categorical,
        text=text,
        rfm=opts["rfm"],
        reference_date=reference_date,
        column_labels=column_labels(frame, opts["labels"]),
    )
    text_matrix, text_names = None, None
    if "text" in pipeline.block_slices_:
        if getattr(pipeline.blocks_["text"], "components_", None) is not None:  # TF-IDF + SVD
            start, stop = pipeline.block_slices_["text"]
            text_matrix, text_names = X[:, start:stop], text_component_names(pipeline)
        else:  # embeddings have no readable axes: the segments' distinctive terms instead
            text_matrix, text_names = term_indicators(frame, text, list(profiles.terms["term"]))
    readable, names = readable_matrix(
        frame,
        numeric=numeric,
        categorical=categorical,
        text_matrix=text_matrix,
        text_names=text_names,
        reference_date=reference_date,
    )
    drivers = surrogate_drivers(
        readable,
        labels,
        names,
        max_depth=int(opts["max_depth"]),
        random_state=seed,
        class_names=profiles.names,
    )
    association = attribute_association(
        frame, labels, numeric=numeric, categorical=categorical, reference_date=reference_date
    )
    confidence, how = confidence_of(estimator, X, labels)
    segments = segments_table(
        dataset.ids, labels, profiles.names, confidence, dataset.roles.id or "customer_id"
    )

    # model=auto: the maps and the dendrogram are those of the candidate it chose
    shown = getattr(estimator, "best_estimator_", estimator)
    space, Z = "features", X
    if shown is not None and getattr(shown, "uses_autoencoder", False):
        space, Z = "latent space", np.asarray(shown.transform(X))
    images = [
        (
            f"2-D map of the {space}, coloured by segment",
            plots.plot_map(
                Z,
                labels,
                profiles.names,
                method=opts["map"],
                random_state=seed,
                sample_size=int(opts["sample_size"]),
            ),
        ),
        (
            f"Silhouette plot ({space})",
            plots.plot_silhouette(Z, labels, profiles.names, random_state=seed),
        ),
        ("Profile heatmap (z-scores by segment)", plots.plot_profile_heatmap(profiles)),
    ]
    if choose_k is not None:
        png = k_selection_png if k_selection_png is not None else plots.plot_k_selection(choose_k)
        images.append(("k-selection curves", png))
    if shown is not None and hasattr(shown, "children_"):
        k = len(np.unique(labels))
        images.append(("Dendrogram", plots.plot_dendrogram(X, k, random_state=seed)))
    if run_dir is not None:
        for csv in sorted(Path(run_dir).rglob("metrics.csv"))[:3]:
            png = plots.plot_training_curves(csv)
            if png is not None:
                where = csv.parent.relative_to(run_dir).as_posix()
                images.append((f"Training curves ({where})", png))
    meta = {
        "dataset": dataset.name,
        "customers": f"{len(labels):,}",
        "method": method,
        "seed": seed,
        "segments": profiles.summary.shape[0],
        "confidence": how,
    }
    notes = []
    if second_view and second_view.get("second_view"):
        moved = float(second_view["second_view_moved"])
        meta["second view"] = f"{moved:.1%} of the documents moved"
        notes.append(
            f"These segments are the method's partition refined by the second view: a "
            f"classifier on the documents' words beside their embedding moved {moved:.1%} of "
            f"the documents ({round(moved * len(labels)):,}) in "
            f"{int(second_view['second_view_rounds'])} round(s). The confidence and the maps "
            "are the method's own; second_view.enabled=false reports the unrefined partition."
        )
    if callable(getattr(estimator, "selection", None)):
        notes.append(describe_selection(estimator.selection()))
        meta["chosen by auto"] = estimator.selection()["chosen"]
    content = ReportContent(
        title=report_title(dataset.name, dataset.source, method),
        input_notes=input_notes(profiles, pipeline),
        missing=missing_values(frame, numeric, categorical, text),
        meta=meta,
        leaderboard=leaderboard,
        profiles=profiles,
        drivers=drivers,
        choose_k=choose_k,
        images=images,
        association=association,
        notes=[
            *notes,
            CONFIDENCE_NOTE,
            "A word enters a segment's name only when the segment differs from the rest of the "
            "customers materially and beyond noise: for a numeric column (RFM words included) "
            "the 95% interval of the standardised difference on normal scores must clear 0.5, "
            "and the segment must stand apart in its numeric columns (from the rest, or from "
            "its nearest segment) rather than be a slice of one continuous blob; a category "
            "needs a share of at least 30%, a lift of 1.5 and a lift interval that excludes 1. "
            "Words are ranked by effect size, largest first. A segment without a material "
            "difference is 'average'; one whose differences are those of a slice of one "
            "continuous group has 'no distinct trait'. Every descriptor and its evidence is in "
            "profiles.csv (descriptors).",
            "The reported segmentation is the configured method and seed (default: the first "
            "of each), never chosen with ground-truth labels.",
            "An attribute is flagged when its Cramér's V against the segments (numeric columns "
            "cut into quintiles) is 0.8 or more: it almost determines them.",
        ],
    )
    return render_report(content), segments, profiles


def write_segment_report(output_dir: str | Path, **kwargs: Any) -> SegmentProfiles:
    """Write ``report.html``, ``segments.csv`` and ``profiles.csv`` into ``output_dir``.

    Takes the arguments of :func:`segment_report`; every file is written atomically.
    """
    output_dir = Path(output_dir)
    html_text, segments, profiles = segment_report(run_dir=output_dir, **kwargs)
    atomic_write_csv(output_dir / "segments.csv", segments)
    atomic_write_csv(output_dir / "profiles.csv", profiles.summary)
    atomic_write_text(output_dir / "report.html", html_text)
    logger.info(
        "Report written: %s (%d segments: %s)",
        output_dir / "report.html",
        len(profiles.names),
        "; ".join(profiles.names.values()),
    )
    return profiles
