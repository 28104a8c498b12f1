"""Does one attribute run the segmentation? Cramér's V of every attribute against the segments.

A segmentation that one attribute almost determines (every segment nearly all one gender, or
one education level) says little that the attribute alone would not; usually that attribute
weighs too much in the features. Each categorical column is crossed with the segments as it
is; each numeric column is cut into quintiles first. Cramér's V is 0 when the attribute is
spread alike over the segments and 1 when it determines them (for a categorical with fewer
levels than segments: when every segment holds one level only).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from deepseg.features.columns import numeric_values

logger = logging.getLogger(__name__)

#: Cramér's V from which an attribute "almost determines" the segments.
DOMINANT_V = 0.8


def cramers_v(a: Sequence[object] | np.ndarray, b: Sequence[object] | np.ndarray) -> float:
    """Cramér's V of two categorical vectors (no bias correction), in [0, 1].

    >>> round(cramers_v([0, 0, 1, 1], ["x", "x", "y", "y"]), 3)
    1.0
    >>> cramers_v([0, 1, 0, 1], ["x", "x", "x", "x"])
    0.0
    """
    table = pd.crosstab(
        pd.Series(np.asarray(a, dtype=object)), pd.Series(np.asarray(b, dtype=object))
    )
    r, c = table.shape
    if r < 2 or c < 2:
        return 0.0
    observed = table.to_numpy(dtype=np.float64)
    n = observed.sum()
    expected = observed.sum(axis=1, keepdims=True) @ observed.sum(axis=0, keepdims=True) / n
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / (n * (min(r, c) - 1))))


def attribute_association(
    frame: pd.DataFrame,
    labels: np.ndarray,
    *,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    reference_date: str | None = None,
    threshold: float = DOMINANT_V,
) -> pd.DataFrame:
    """Cramér's V of every attribute against the segments, strongest first.

    Args:
        frame: the original table, one row per customer.
        labels: segment of each row, shape (n_samples,); noise (-1) rows are left out.
        numeric: numeric columns (cut into quintiles).
        categorical: categorical columns (missing values are a category).
        reference_date: reference of the date columns (see
            :func:`deepseg.features.columns.numeric_values`).
        threshold: V from which ``dominant`` is True.

    Returns:
        A frame with columns ``column``, ``kind`` ("numeric" or "categorical"),
        ``cramers_v`` and ``dominant``.
    """
    labels = np.asarray(labels)
    keep = labels != -1
    rows = []
    for column in categorical:
        values = frame[column].astype(object).where(frame[column].notna(), "(missing)")
        v = cramers_v(labels[keep], values.astype(str).to_numpy()[keep])
        rows.append({"column": column, "kind": "categorical", "cramers_v": v})
    for column in numeric:
        values = numeric_values(frame[column], reference_date)
        ranks = values.rank(method="first")
        bins = pd.qcut(ranks, 5, labels=False, duplicates="drop") if ranks.notna().any() else ranks
        bins = bins.fillna(-1).astype(int).to_numpy()
        rows.append(
            {"column": column, "kind": "numeric", "cramers_v": cramers_v(labels[keep], bins[keep])}
        )
    out = pd.DataFrame(rows, columns=["column", "kind", "cramers_v"])
    out["dominant"] = out["cramers_v"] >= threshold
    out = out.sort_values("cramers_v", ascending=False, kind="stable").reset_index(drop=True)
    for row in out[out["dominant"]].itertuples():
        logger.warning(
            "'%s' almost determines the segments (Cramér's V %.2f >= %.2f): drop it or lower "
            "its weight (features.%s.weight)",
            row.column,
            row.cramers_v,
            threshold,
            row.kind,
        )
    return out
