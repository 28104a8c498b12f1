"""Training-data fingerprints and the drift check of new data against them.

A fingerprint describes the raw input the feature pipeline was fitted on: its row count, column
names and dtypes, and per column either summary statistics plus the shares of ten quantile bins
(numeric columns) or the shares of its most frequent categories (categorical columns), and the
shares of the segments. New data is counted into the same bins, chunk by chunk, and compared
with the population stability index (PSI):

``PSI = sum_b (a_b - e_b) * ln(a_b / e_b)`` over bins ``b``, with training shares ``e`` and new
shares ``a`` (both floored at 1e-4 so that empty bins stay finite).

The usual reading, used for the flags: PSI < 0.1 stable, 0.1 to 0.2 moderate shift, above 0.2
a significant shift. Re-segmenting is advised when any input column or the segment shares
shift significantly (PSI > 0.2).

Text columns have no fingerprint (their words reach the model through the fitted TF-IDF /
embedding, which handles unknown words); matrix data (images) is fingerprinted per column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from deepseg.features.blocks import coerce_numeric

N_BINS = 10
MAX_CATEGORIES = 50
OTHER = "__other__"
MISSING = "__missing__"
PSI_FLOOR = 1e-4
PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.2


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population stability index between two share vectors over the same bins.

    >>> psi([0.5, 0.5], [0.5, 0.5])
    0.0
    >>> round(psi([0.5, 0.5], [0.9, 0.1]), 4)
    0.8789
    """
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=np.float64)


def numeric_bins(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of each value: ``len(edges) + 1`` bins split at ``edges``, then a NaN bin."""
    index = np.searchsorted(edges, values, side="right")
    index[~np.isfinite(values)] = len(edges) + 1
    return index


def _category_keys(series: pd.Series) -> np.ndarray:
    text = series.astype(object).where(series.notna(), MISSING).map(str)
    return text.to_numpy(dtype=object)


def _raw_columns(data: pd.DataFrame | np.ndarray, numeric: Sequence[str]) -> np.ndarray:
    if isinstance(data, pd.DataFrame):
        return coerce_numeric(data, list(numeric))
    return np.asarray(data, dtype=np.float64)


def fingerprint(
    data: pd.DataFrame | np.ndarray,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str] = (),
    labels: np.ndarray | None = None,
    n_clusters: int | None = None,
) -> dict[str, Any]:
    """The fingerprint of the training input (JSON-serialisable).

    Args:
        data: the raw training table, or a matrix of shape (n_samples, len(numeric)).
        numeric: names of the numeric columns (for a matrix: of its columns, in order).
        categorical: names of the categorical columns (tables only).
        labels: the training segments, shape (n_samples,).
        n_clusters: number of segments (for the share vector's length).
    """
    n = len(data)
    values = _raw_columns(data, numeric)
    columns: dict[str, Any] = {}
    for j, name in enumerate(numeric):
        v = values[:, j]
        finite = v[np.isfinite(v)]
        if finite.size:
            edges = np.unique(np.quantile(finite, np.arange(1, N_BINS) / N_BINS))
            stats: dict[str, float | None] = {
                "mean": float(finite.mean()),
                "std": float(finite.std()),
                "min": float(finite.min()),
                "max": float(finite.max()),
            }
        else:
            edges = np.zeros(0)
            stats = {"mean": None, "std": None, "min": None, "max": None}
        counts = np.bincount(numeric_bins(v, edges), minlength=len(edges) + 2)
        columns[str(name)] = {
            "kind": "numeric",
            **stats,
            "missing_share": float(1.0 - finite.size / max(n, 1)),
            "bin_edges": edges.tolist(),
            "bin_shares": _shares(counts).tolist(),
        }
    if categorical:
        assert isinstance(data, pd.DataFrame)
        for name in categorical:
            keys = pd.Series(_category_keys(data[name]))
            top = keys.value_counts().iloc[:MAX_CATEGORIES]
            shares = (top / n).to_dict()
            shares[OTHER] = float(1.0 - sum(shares.values()))
            columns[str(name)] = {
                "kind": "categorical",
                "n_categories": int(keys.nunique()),
                "category_shares": {str(k): float(v) for k, v in shares.items()},
            }
    out: dict[str, Any] = {"n_rows": int(n), "columns": columns}
    if labels is not None:
        k = int(n_clusters if n_clusters is not None else np.max(labels) + 1)
        counts = np.bincount(np.asarray(labels)[np.asarray(labels) >= 0], minlength=k)
        out["segment_shares"] = _shares(counts).tolist()
    return out


class DriftAccumulator:
    """Counts new data into a fingerprint's bins, chunk by chunk, and reports the drift.

    Args:
        fingerprint: a training fingerprint from :func:`fingerprint`.
        numeric: numeric column names, as in the fingerprint (matrix columns in order).
        categorical: categorical column names.
    """

    def __init__(
        self, fingerprint: Mapping[str, Any], numeric: Sequence[str], categorical: Sequence[str]
    ) -> None:
        self.fingerprint = fingerprint
        self.numeric = [c for c in numeric if c in fingerprint["columns"]]
        self.categorical = [c for c in categorical if c in fingerprint["columns"]]
        cols = fingerprint["columns"]
        self._edges = {c: np.asarray(cols[c]["bin_edges"], dtype=np.float64) for c in self.numeric}
        self._counts = {c: np.zeros(len(self._edges[c]) + 2) for c in self.numeric}
        self._cats: dict[str, dict[str, float]] = {c: {} for c in self.categorical}
        k = len(fingerprint.get("segment_shares") or [])
        self._segments = np.zeros(k)
        self.n_rows = 0

    def update(self, data: pd.DataFrame | np.ndarray, labels: np.ndarray | None = None) -> None:
        """Add one chunk of raw input (and its predicted segments)."""
        self.n_rows += len(data)
        if self.numeric:
            if isinstance(data, pd.DataFrame):
                values = coerce_numeric(data, self.numeric)
            else:
                index = [list(self.fingerprint["columns"]).index(c) for c in self.numeric]
                values = np.asarray(data, dtype=np.float64)[:, index]
            for j, c in enumerate(self.numeric):
                bins = numeric_bins(values[:, j], self._edges[c])
                self._counts[c] += np.bincount(bins, minlength=len(self._counts[c]))
        for c in self.categorical:
            assert isinstance(data, pd.DataFrame)
            for key, count in pd.Series(_category_keys(data[c])).value_counts().items():
                self._cats[c][str(key)] = self._cats[c].get(str(key), 0.0) + float(count)
        if labels is not None and len(self._segments):
            labels = np.asarray(labels)
            self._segments += np.bincount(labels[labels >= 0], minlength=len(self._segments))[
                : len(self._segments)
            ]

    def report(self) -> dict[str, Any]:
        """Per-column PSI and flags, the segment-share shift, and the advice."""
        cols = self.fingerprint["columns"]
        rows = []
        for c in self.numeric:
            expected = cols[c]["bin_shares"]
            rows.append(self._row(c, "numeric", psi(expected, _shares(self._counts[c]))))
        for c in self.categorical:
            expected_map = cols[c]["category_shares"]
            counts = self._cats[c]
            total = sum(counts.values())
            known = {k: v for k, v in counts.items() if k in expected_map and k != OTHER}
            actual_map = {k: v / total if total else 0.0 for k, v in known.items()}
            actual_map[OTHER] = 1.0 - sum(actual_map.values()) if total else 0.0
            keys = list(expected_map)
            expected = [expected_map[k] for k in keys]
            actual = [actual_map.get(k, 0.0) for k in keys]
            rows.append(self._row(c, "categorical", psi(expected, actual)))
        out: dict[str, Any] = {
            "n_rows_training": int(self.fingerprint["n_rows"]),
            "n_rows_new": int(self.n_rows),
            "thresholds": {"moderate": PSI_MODERATE, "significant": PSI_SIGNIFICANT},
            "columns": rows,
        }
        reasons = [f"column '{r['column']}' PSI {r['psi']:.3f}" for r in rows if r["drift"]]
        training = self.fingerprint.get("segment_shares")
        if training and self._segments.sum() > 0:
            new = _shares(self._segments)
            seg_psi = psi(training, new)
            out["segments"] = {
                "training_shares": [float(v) for v in training],
                "new_shares": new.tolist(),
                "max_share_change": float(np.max(np.abs(new - np.asarray(training)))),
                "psi": seg_psi,
                "drift": seg_psi > PSI_SIGNIFICANT,
            }
            if seg_psi > PSI_SIGNIFICANT:
                reasons.append(f"segment shares PSI {seg_psi:.3f}")
        out["drifted_columns"] = [r["column"] for r in rows if r["drift"]]
        out["resegment_advised"] = bool(reasons)
        out["reasons"] = reasons
        return out

    @staticmethod
    def _row(column: str, kind: str, value: float) -> dict[str, Any]:
        level = (
            "significant"
            if value > PSI_SIGNIFICANT
            else "moderate"
            if value > PSI_MODERATE
            else "stable"
        )
        return {
            "column": column,
            "kind": kind,
            "psi": value,
            "level": level,
            "drift": value > PSI_SIGNIFICANT,
        }


def drift_markdown(report: Mapping[str, Any]) -> str:
    """The drift report as Markdown."""
    lines = [
        "# Drift report",
        "",
        f"Training rows: {report['n_rows_training']:,}; new rows: {report['n_rows_new']:,}.",
        "PSI < 0.1 stable, 0.1-0.2 moderate, > 0.2 significant.",
        "",
        "**Re-segmenting advised**: " + ("yes" if report["resegment_advised"] else "no"),
    ]
    lines += [f"- {r}" for r in report["reasons"]]
    seg = report.get("segments")
    if seg:
        lines += ["", "| segment | training share | new share |", "|---|---|---|"]
        for i, (a, b) in enumerate(zip(seg["training_shares"], seg["new_shares"])):
            lines.append(f"| {i} | {a:.3f} | {b:.3f} |")
        lines.append(f"\nSegment-share PSI: {seg['psi']:.4f}")
    lines += ["", "| column | kind | PSI | level |", "|---|---|---|---|"]
    for r in sorted(report["columns"], key=lambda r: -r["psi"]):
        lines.append(f"| {r['column']} | {r['kind']} | {r['psi']:.4f} | {r['level']} |")
    return "\n".join(lines) + "\n"
