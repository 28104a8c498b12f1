"""Clustering metrics with an explicit policy for noise points.

Three families of metrics are provided:

* **Label-based** metrics compare a predicted partition with ground-truth labels. Each has the
  signature ``f(labels_true, labels_pred, *, noise_policy="singletons") -> float``: ``acc``
  (clustering accuracy under the best one-to-one matching of clusters to classes), ``nmi``,
  ``ari``, ``ami``, ``homogeneity``, ``completeness`` and ``v_measure`` (the last six wrap
  scikit-learn). Labels may be any hashable values (ints, strings, non-contiguous codes).
* **Label-free** (internal) metrics score a partition of the feature matrix ``X``. Each has the
  signature ``f(X, labels, *, random_state=0, ...) -> float``: ``silhouette``,
  ``davies_bouldin``, ``calinski_harabasz`` and ``inertia``.
* **Descriptive** statistics of a labelling: ``n_clusters_found`` and ``noise_fraction``.

Noise policy
------------
The label ``-1`` (an integer or float equal to -1, as produced by DBSCAN/HDBSCAN) in the
*predicted* labels means "noise: this point was not assigned to any cluster". The string
``"-1"`` is an ordinary label, and ``-1`` in ``labels_true`` is an ordinary ground-truth class.
Label-based metrics take ``noise_policy``, one of :data:`NOISE_POLICIES`:

``"singletons"`` (the default)
    Every noise point is put in a cluster of its own, so noise can never make two points
    agree. For ``acc`` noise points always count as errors: they are left out of the matching
    but stay in the denominator (``acc = correctly matched non-noise points / all points``).
``"cluster"``
    ``-1`` is treated as one ordinary cluster (all noise points together), which can be matched
    and can make noise points agree with each other.
``"exclude"``
    Noise points are dropped from both label arrays and the metric is computed on the remaining
    points only. This is *flattering*: a model that declares every hard point noise scores well.
    Always report it together with ``noise_fraction``. If every point is noise, the result is
    ``nan``.

Label-free metrics (``silhouette``, ``davies_bouldin``, ``calinski_harabasz``, ``inertia``) are
always computed on the non-noise points only, whatever the policy, because a noise point has no
cluster centre; :func:`evaluate` reports ``noise_fraction`` alongside them. ``silhouette``,
``davies_bouldin`` and ``calinski_harabasz`` are ``nan`` when they are undefined: fewer than 2
clusters, or at least as many clusters as (non-noise) points. ``inertia`` is defined for any
number of clusters >= 1 (one cluster gives the total sum of squares, which is what an elbow
plot starts from) and is ``nan`` only when every point is noise.

Registry
--------
:data:`METRICS` maps each metric name to a :class:`MetricInfo` recording whether a higher value
is better and whether ground-truth labels are needed. ``n_clusters_found`` and
``noise_fraction`` are descriptive, not objectives: both are registered with
``higher_is_better=False`` (less noise and fewer clusters are the more parsimonious outcome),
but they should not be used on their own for model selection.
:func:`evaluate` computes all registered metrics (or a subset) in one call.
"""

from __future__ import annotations

import difflib
import logging
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm

logger = logging.getLogger(__name__)

__all__ = [
    "METRICS",
    "NOISE_LABEL",
    "NOISE_POLICIES",
    "MetricInfo",
    "acc",
    "ami",
    "ari",
    "calinski_harabasz",
    "completeness",
    "davies_bouldin",
    "evaluate",
    "get_metric",
    "homogeneity",
    "inertia",
    "n_clusters_found",
    "nmi",
    "noise_fraction",
    "silhouette",
    "v_measure",
]

NOISE_LABEL: int = -1
"""The predicted label that marks a noise point."""

NOISE_POLICIES: tuple[str, ...] = ("singletons", "cluster", "exclude")
"""Valid values of ``noise_policy`` (see the module docstring)."""

SILHOUETTE_SAMPLE_SIZE: int = 10_000
"""Default number of rows the silhouette is computed on when there are more."""

_NAN = float("nan")


# --------------------------------------------------------------------------------------------
# Input validation helpers
# --------------------------------------------------------------------------------------------


def _as_labels(labels: ArrayLike, name: str) -> np.ndarray:
    """Validate a label vector and return it as a 1-D numpy array.

    Args:
        labels: array-like of shape (n_samples,) with hashable, non-missing values.
        name: parameter name used in error messages.

    Returns:
        Array of shape (n_samples,).

    Raises:
        TypeError: if ``labels`` is None or a single string.
        ValueError: if ``labels`` is not 1-D, is empty or contains missing values.
    """
    if labels is None:
        raise TypeError(f"{name} must be an array-like of shape (n_samples,), got None.")
    if isinstance(labels, str | bytes):
        raise TypeError(
            f"{name} must be an array-like of shape (n_samples,), got a single string {labels!r}."
        )
    arr = np.asarray(labels)
    if arr.dtype.kind in "US" and not isinstance(labels, np.ndarray):
        # A list mixing numbers and strings would otherwise be coerced to strings, turning the
        # noise label -1 into the ordinary label "-1".
        arr = np.asarray(labels, dtype=object)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D of shape (n_samples,), got an array of shape {arr.shape}; "
            "flatten it (e.g. labels.ravel()) if it is a column vector."
        )
    if arr.size == 0:
        raise ValueError(f"{name} must contain at least one label, got an empty array.")
    missing = pd.isna(arr)
    if np.any(missing):
        first = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"{name} must not contain missing values (NaN/None), found {int(missing.sum())} "
            f"(first at index {first}); mark unassigned points with the noise label "
            f"{NOISE_LABEL} instead."
        )
    return arr


def _is_noise_value(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value == NOISE_LABEL


def _noise_mask(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of shape (n_samples,) that is True where a label is the noise label."""
    if labels.dtype.kind in "iuf":
        return labels == NOISE_LABEL
    if labels.dtype.kind == "O":
        return np.fromiter((_is_noise_value(v) for v in labels), dtype=bool, count=labels.size)
    return np.zeros(labels.shape, dtype=bool)


def _encode(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Map arbitrary hashable labels to integer codes ``0..k-1``.

    Returns:
        Codes of shape (n_samples,) and the number of distinct labels ``k``.
    """
    codes, uniques = pd.factorize(labels)
    return np.asarray(codes, dtype=np.intp), len(uniques)


def _check_noise_policy(noise_policy: str) -> None:
    if noise_policy not in NOISE_POLICIES:
        raise ValueError(
            f"noise_policy must be one of {', '.join(map(repr, NOISE_POLICIES))}, "
            f"got {noise_policy!r}."
        )


def _check_same_length(n_a: int, name_a: str, n_b: int, name_b: str) -> None:
    if n_a != n_b:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of samples, "
            f"got len({name_a})={n_a} and len({name_b})={n_b}."
        )


def _label_pair(
    labels_true: ArrayLike, labels_pred: ArrayLike, noise_policy: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """Validate a pair of labellings and apply the noise policy to ``labels_pred``.

    Returns:
        Integer codes ``(true, pred)``, each of shape (n_kept,), or None when nothing is left
        (every point is noise under ``"exclude"``).
    """
    _check_noise_policy(noise_policy)
    y_true = _as_labels(labels_true, "labels_true")
    y_pred = _as_labels(labels_pred, "labels_pred")
    _check_same_length(y_true.size, "labels_true", y_pred.size, "labels_pred")
    noise = _noise_mask(y_pred)
    if noise_policy == "exclude":
        if noise.all():
            logger.warning("Every predicted label is noise; label-based metrics are nan.")
            return None
        y_true, y_pred = y_true[~noise], y_pred[~noise]
        noise = np.zeros(y_pred.size, dtype=bool)
    true_codes, _ = _encode(y_true)
    if noise_policy == "cluster" or not noise.any():
        pred_codes, _ = _encode(y_pred)
        return true_codes, pred_codes
    # "singletons": each noise point gets a fresh code of its own.
    pred_codes = np.empty(y_pred.size, dtype=np.intp)
    kept_codes, k = _encode(y_pred[~noise])
    pred_codes[~noise] = kept_codes
    pred_codes[noise] = k + np.arange(int(noise.sum()))
    return true_codes, pred_codes


def _as_features(X: ArrayLike) -> np.ndarray:
    """Validate a feature matrix and return it as a float array of shape (n_samples, n_features).

    Raises:
        TypeError: if ``X`` is None.
        ValueError: if ``X`` is not numeric, not 2-D, empty, or has non-finite values.
    """
    if X is None:
        raise TypeError("X must be an array of shape (n_samples, n_features), got None.")
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"X must be a numeric array of shape (n_samples, n_features); converting it to "
            f"float failed: {exc}"
        ) from exc
    if arr.ndim != 2:
        raise ValueError(
            f"X must be 2-D of shape (n_samples, n_features), got an array of shape {arr.shape}; "
            "use X.reshape(-1, 1) for a single feature."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"X must have at least one row and one column, got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        raise ValueError(
            f"X must contain only finite values, found {n_bad} NaN/inf entries; impute or drop "
            "them first."
        )
    return arr


def _features_and_codes(X: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate ``X`` and ``labels`` and drop noise points.

    Returns:
        ``(X_kept, codes, k)``: features of shape (n_kept, n_features), integer cluster codes of
        shape (n_kept,), and the number of clusters ``k`` (0 when every point is noise).
    """
    arr = _as_features(X)
    y = _as_labels(labels, "labels")
    _check_same_length(arr.shape[0], "X", y.size, "labels")
    keep = ~_noise_mask(y)
    if not keep.all():
        arr, y = arr[keep], y[keep]
    if y.size == 0:
        return arr, np.zeros(0, dtype=np.intp), 0
    codes, k = _encode(y)
    return arr, codes, k


def _defined(k: int, n: int) -> bool:
    """Whether silhouette/DB/CH are defined for ``k`` clusters on ``n`` points."""
    return 2 <= k < n


# --------------------------------------------------------------------------------------------
# Label-based metrics
# --------------------------------------------------------------------------------------------


def acc(
    labels_true: ArrayLike, labels_pred: ArrayLike, *, noise_policy: str = "singletons"
) -> float:
    """Clustering accuracy under the best one-to-one matching of clusters to classes.

    The matching maximises the number of agreeing points (Hungarian algorithm on the
    contingency matrix). When the numbers of clusters and classes differ, only
    ``min(k_true, k_pred)`` pairs are matched and points of unmatched clusters count as errors.
    Under the default ``"singletons"`` policy noise points always count as errors.

    Args:
        labels_true: ground-truth labels of shape (n_samples,); any hashable values.
        labels_pred: predicted labels of shape (n_samples,); ``-1`` marks noise.
        noise_policy: one of :data:`NOISE_POLICIES`.

    Returns:
        Accuracy in [0, 1]; nan if every point is noise under ``"exclude"``.

    Example:
        >>> acc(["a", "a", "b", "b"], [7, 7, 3, 3])
        1.0
        >>> acc([0, 0, 0, 1, 1, 1], [1, 1, 0, 0, 0, 0])  # 5 of 6 agree after matching
        0.8333333333333334
    """
    _check_noise_policy(noise_policy)
    y_true = _as_labels(labels_true, "labels_true")
    y_pred = _as_labels(labels_pred, "labels_pred")
    _check_same_length(y_true.size, "labels_true", y_pred.size, "labels_pred")
    n_total = y_true.size
    if noise_policy != "cluster":
        keep = ~_noise_mask(y_pred)
        y_true, y_pred = y_true[keep], y_pred[keep]
        if noise_policy == "exclude":
            n_total = y_true.size
    if y_true.size == 0:
        if noise_policy == "exclude":
            logger.warning("Every predicted label is noise; acc is nan under 'exclude'.")
            return _NAN
        return 0.0
    true_codes, k_true = _encode(y_true)
    pred_codes, k_pred = _encode(y_pred)
    contingency = np.bincount(true_codes * k_pred + pred_codes, minlength=k_true * k_pred).reshape(
        k_true, k_pred
    )
    rows, cols = linear_sum_assignment(contingency, maximize=True)
    return float(contingency[rows, cols].sum() / n_total)


def nmi(
    labels_true: ArrayLike, labels_pred: ArrayLike, *, noise_policy: str = "singletons"
) -> float:
    """Normalised mutual information (arithmetic mean normalisation, as scikit-learn).

    Args:
        labels_true: ground-truth labels of shape (n_samples,).
        labels_pred: predicted labels of shape (n_samples,); ``-1`` marks noise.
        noise_policy: one of :data:`NOISE_POLICIES`.

    Returns:
        NMI in [0, 1]; nan if every point is noise under ``"exclude"``.

    Example:
        >>> nmi([0, 0, 1, 1], ["x", "x", "y", "y"])
        1.0
    """
    pair = _label_pair(labels_true, labels_pred, noise_policy)
    return _NAN if pair is None else float(skm.normalized_mutual_info_score(*pair))


def ari(
    labels_true: ArrayLike, labels_pred: ArrayLike, *, noise_policy: str = "singletons"
) -> float:
    """Adjusted Rand index.

    Args:
        labels_true: ground-truth labels of shape (n_samples,).
        labels_pred: predicted labels of shape (n_samples,); ``-1`` marks noise.
        noise_policy: one of :data:`NOISE_POLICIES`.

    Returns:
        ARI in [-0.5, 1] (0 for chance); nan if every point is noise under ``"exclude"``.

    Example:
        >>> ari([0, 0, 1, 1], [1, 1, 0, 0])
        1.0
    """
    pair = _label_pair(labels_true, labels_pred, noise_policy)
    return _NAN if pair is None else float(skm.adjusted_rand_score(*pair))


def ami(
    labels_true: ArrayLike, labels_pred: ArrayLike, *, noise_policy: str = "singletons"
) -> float:
    """Adjusted mutual information.

    Args:
        labels_true: ground-truth labels of shape (n_samples,).
        labels_pred: predicted labels of shape (n_samples,); ``-1`` marks noise.
        noise_policy: one of :data:`NOISE_POLICIES`.

    Returns:
        AMI (1 for identical partitions, about 0 for chance); nan if every point is noise under
        ``"exclude"``.

    Example:
        >>> ami([0, 0, 1, 1], [5, 5, 9, 9])
        1.0
    """
    pair = _label_pair(labels_true, labels_pred, noise_policy)
    return _NAN if pair is None else float(skm.adjusted_mutual_info_score(*pair))


def homogeneity(
    labels_true: ArrayLike, labels_pred: ArrayLike, *, noise_policy: str = "singletons"
) -> float:
    """Homogeneity: each cluster contains points of a single class only.

    Args:
        labels_true: ground-truth labels of shape (n_samples,).
        labels_pred: predicted labels of shape (n_samples,); ``-1`` marks noise.
        noise_policy: one of :data:`NOISE_POLICIES`.

    Returns:
        Homogeneity in [0, 1]; nan if every point is noise under ``"exclude"``.

    Example:
        >>> round(homogeneity([0, 0, 1, 1], [0, 1, 2, 3]), 6)  # split classes, pure clusters
        1.0
    """
    pair = _label_pair(labels_true, labels_pred, noise_policy)
    return _NAN if pair is None else float(skm.homogeneity_score(*pair))


def completeness(
    labels_true: ArrayLike, labels_pred: ArrayLike, *, noise_policy: str = "singletons"
) -> float:
    """Completeness: all points of a class are assigned to the same cluster.

    Args:
        labels_true: ground-truth labels of shape (n_samples,).
        labels_pred: predicted labels of shape (n_samples,); ``-1`` marks noise.
        noise_policy: one of :data:`NOISE_POLICIES`.

    Returns:
        Completeness in [0, 1]; nan if every point is noise under ``"exclude"``.

    Example:
        >>> completeness([0, 0, 1, 1], [0, 0, 0, 0])  # merging classes keeps them complete
        1.0
    """
    pair = _label_pair(labels_true, labels_pred, noise_policy)
    return _NAN if pair is None else float(skm.completeness_score(*pair))


def v_measure(
    labels_true: ArrayLike, labels_pred: ArrayLike, *, noise_policy: str = "singletons"
) -> float:
    """V-measure: harmonic mean of homogeneity and completeness.

    Args:
        labels_true: ground-truth labels of shape (n_samples,).
        labels_pred: predicted labels of shape (n_samples,); ``-1`` marks noise.
        noise_policy: one of :data:`NOISE_POLICIES`.

    Returns:
        V-measure in [0, 1]; nan if every point is noise under ``"exclude"``.

    Example:
        >>> v_measure(["a", "a", "b", "b"], [1, 1, 2, 2])
        1.0
    """
    pair = _label_pair(labels_true, labels_pred, noise_policy)
    return _NAN if pair is None else float(skm.v_measure_score(*pair))


# --------------------------------------------------------------------------------------------
# Label-free metrics (always on non-noise points)
# --------------------------------------------------------------------------------------------


def silhouette(
    X: ArrayLike,
    labels: ArrayLike,
    *,
    random_state: int | np.random.Generator | None = 0,
    sample_size: int | None = SILHOUETTE_SAMPLE_SIZE,
) -> float:
    """Mean silhouette coefficient (Euclidean) of the non-noise points.

    When more than ``sample_size`` non-noise points remain, the score is computed on a random
    subset of ``sample_size`` rows drawn without replacement with
    ``numpy.random.default_rng(random_state)``, so it is deterministic for a given seed.

    Args:
        X: array of shape (n_samples, n_features).
        labels: cluster labels of shape (n_samples,); ``-1`` marks noise (ignored).
        random_state: seed (or generator) for the row sample.
        sample_size: maximum number of rows to use, or None to always use every row.

    Returns:
        Silhouette in [-1, 1]; nan if there are fewer than 2 clusters or at least as many
        clusters as points (in the scored rows).

    Raises:
        ValueError: if ``sample_size`` is not None and smaller than 2.

    Example:
        >>> X = [[0.0], [0.1], [5.0], [5.1]]
        >>> round(silhouette(X, [0, 0, 1, 1]), 3)
        0.98
        >>> silhouette(X, [0, 0, 0, 0])
        nan
    """
    if sample_size is not None and (
        isinstance(sample_size, bool) or not isinstance(sample_size, numbers.Integral)
    ):
        raise TypeError(f"sample_size must be an int or None, got {sample_size!r}.")
    if sample_size is not None and sample_size < 2:
        raise ValueError(f"sample_size must be >= 2 or None, got {sample_size}.")
    arr, codes, _ = _features_and_codes(X, labels)
    n = codes.size
    if sample_size is not None and n > sample_size:
        rng = np.random.default_rng(random_state)
        idx = rng.choice(n, size=int(sample_size), replace=False)
        arr, codes = arr[idx], codes[idx]
        logger.debug("silhouette computed on a sample of %d of %d rows", sample_size, n)
    k = np.unique(codes).size
    if not _defined(k, codes.size):
        return _NAN
    return float(skm.silhouette_score(arr, codes, metric="euclidean"))


def davies_bouldin(
    X: ArrayLike, labels: ArrayLike, *, random_state: int | np.random.Generator | None = 0
) -> float:
    """Davies-Bouldin index of the non-noise points (lower is better).

    Args:
        X: array of shape (n_samples, n_features).
        labels: cluster labels of shape (n_samples,); ``-1`` marks noise (ignored).
        random_state: unused; accepted so every label-free metric has the same signature.

    Returns:
        Index >= 0; nan if there are fewer than 2 clusters or at least as many clusters as
        points.

    Example:
        >>> X = [[0.0], [1.0], [10.0], [11.0]]
        >>> davies_bouldin(X, [0, 0, 1, 1])  # (0.5 + 0.5) / 10
        0.1
    """
    del random_state
    arr, codes, k = _features_and_codes(X, labels)
    if not _defined(k, codes.size):
        return _NAN
    return float(skm.davies_bouldin_score(arr, codes))


def calinski_harabasz(
    X: ArrayLike, labels: ArrayLike, *, random_state: int | np.random.Generator | None = 0
) -> float:
    """Calinski-Harabasz index (variance ratio criterion) of the non-noise points.

    Args:
        X: array of shape (n_samples, n_features).
        labels: cluster labels of shape (n_samples,); ``-1`` marks noise (ignored).
        random_state: unused; accepted so every label-free metric has the same signature.

    Returns:
        Index >= 0; nan if there are fewer than 2 clusters or at least as many clusters as
        points.

    Example:
        >>> X = [[0.0], [1.0], [10.0], [11.0]]
        >>> calinski_harabasz(X, [0, 0, 1, 1])  # between 100 / within 1, times (4-2)/(2-1)
        200.0
    """
    del random_state
    arr, codes, k = _features_and_codes(X, labels)
    if not _defined(k, codes.size):
        return _NAN
    return float(skm.calinski_harabasz_score(arr, codes))


def inertia(
    X: ArrayLike, labels: ArrayLike, *, random_state: int | np.random.Generator | None = 0
) -> float:
    """Sum of squared Euclidean distances of non-noise points to their cluster mean.

    This equals scikit-learn's ``KMeans.inertia_`` when ``labels`` are the k-means assignments
    and the centres are the cluster means. It decreases with the number of clusters, so only
    compare it between partitions with the same number of clusters (or in an elbow plot).

    Args:
        X: array of shape (n_samples, n_features).
        labels: cluster labels of shape (n_samples,); ``-1`` marks noise (ignored).
        random_state: unused; accepted so every label-free metric has the same signature.

    Returns:
        Inertia >= 0 (one cluster gives the total sum of squares); nan if every point is noise.

    Example:
        >>> inertia([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [10.0, 12.0]], [0, 0, 1, 1])
        4.0
    """
    del random_state
    arr, codes, k = _features_and_codes(X, labels)
    if k == 0:
        return _NAN
    counts = np.bincount(codes, minlength=k).astype(np.float64)
    sums = np.zeros((k, arr.shape[1]), dtype=np.float64)
    np.add.at(sums, codes, arr)
    centres = sums / counts[:, None]
    return float(np.sum((arr - centres[codes]) ** 2))


# --------------------------------------------------------------------------------------------
# Descriptive statistics
# --------------------------------------------------------------------------------------------


def n_clusters_found(labels: ArrayLike) -> int:
    """Number of distinct cluster labels, not counting the noise label ``-1``.

    Args:
        labels: cluster labels of shape (n_samples,).

    Returns:
        Number of clusters (0 if every point is noise).

    Example:
        >>> n_clusters_found([3, 3, -1, 8, -1])
        2
    """
    y = _as_labels(labels, "labels")
    kept = y[~_noise_mask(y)]
    return _encode(kept)[1] if kept.size else 0


def noise_fraction(labels: ArrayLike) -> float:
    """Fraction of points carrying the noise label ``-1``.

    Args:
        labels: cluster labels of shape (n_samples,).

    Returns:
        Fraction in [0, 1].

    Example:
        >>> noise_fraction([0, -1, 1, -1])
        0.5
    """
    y = _as_labels(labels, "labels")
    return float(np.mean(_noise_mask(y)))


# --------------------------------------------------------------------------------------------
# Registry and evaluation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricInfo:
    """Description of a registered metric.

    Attributes:
        name: registry key.
        higher_is_better: True if larger values mean a better clustering.
        needs_labels: True if the metric needs ground-truth labels; then ``fn`` is called as
            ``fn(labels_true, labels_pred, noise_policy=...)``.
        fn: the metric function.
        needs_features: True if the metric needs the feature matrix; then ``fn`` is called as
            ``fn(X, labels_pred, random_state=...)``. Metrics needing neither are called as
            ``fn(labels_pred)``.
    """

    name: str
    higher_is_better: bool
    needs_labels: bool
    fn: Callable[..., float]
    needs_features: bool = False


METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo("acc", True, True, acc),
        MetricInfo("nmi", True, True, nmi),
        MetricInfo("ari", True, True, ari),
        MetricInfo("ami", True, True, ami),
        MetricInfo("homogeneity", True, True, homogeneity),
        MetricInfo("completeness", True, True, completeness),
        MetricInfo("v_measure", True, True, v_measure),
        MetricInfo("silhouette", True, False, silhouette, needs_features=True),
        MetricInfo("davies_bouldin", False, False, davies_bouldin, needs_features=True),
        MetricInfo("calinski_harabasz", True, False, calinski_harabasz, needs_features=True),
        MetricInfo("inertia", False, False, inertia, needs_features=True),
        # Descriptive, not objectives; see the module docstring.
        MetricInfo("n_clusters_found", False, False, n_clusters_found),
        MetricInfo("noise_fraction", False, False, noise_fraction),
    )
}
"""All registered metrics, in the order :func:`evaluate` reports them."""


def get_metric(name: str) -> MetricInfo:
    """Look up a registered metric by name.

    Args:
        name: a key of :data:`METRICS`.

    Returns:
        The metric's :class:`MetricInfo`.

    Raises:
        TypeError: if ``name`` is not a string.
        ValueError: if ``name`` is not registered; the message names the closest match and
            all valid names.

    Example:
        >>> get_metric("davies_bouldin").higher_is_better
        False
    """
    if not isinstance(name, str):
        raise TypeError(f"metric name must be a str, got {type(name).__name__} {name!r}.")
    try:
        return METRICS[name]
    except KeyError:
        pass
    close = difflib.get_close_matches(name.lower(), list(METRICS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"Unknown metric {name!r}.{hint} Valid metrics: {', '.join(METRICS)}."
    ) from None


def evaluate(
    X: ArrayLike,
    labels_pred: ArrayLike,
    labels_true: ArrayLike | None = None,
    *,
    noise_policy: str = "singletons",
    random_state: int | np.random.Generator | None = 0,
    metrics: Iterable[str] | None = None,
) -> dict[str, float]:
    """Compute every registered metric (or a subset) for one clustering.

    Args:
        X: array of shape (n_samples, n_features).
        labels_pred: predicted labels of shape (n_samples,); ``-1`` marks noise.
        labels_true: ground-truth labels of shape (n_samples,), or None. When None, every
            label-based metric is nan.
        noise_policy: one of :data:`NOISE_POLICIES`; applies to label-based metrics only.
        random_state: seed passed to the label-free metrics (silhouette sampling).
        metrics: names of the metrics to compute (a single name is accepted too), or None for
            all of :data:`METRICS`.

    Returns:
        Mapping of metric name to value (as float), in registry order or the order given.

    Raises:
        ValueError: on an unknown metric or noise policy, or if ``X``, ``labels_pred`` and
            ``labels_true`` do not have the same number of samples.

    Example:
        >>> X = [[0.0], [1.0], [10.0], [11.0]]
        >>> scores = evaluate(X, [0, 0, 1, 1], ["a", "a", "b", "b"])
        >>> scores["acc"], scores["davies_bouldin"], scores["noise_fraction"]
        (1.0, 0.1, 0.0)
        >>> evaluate(X, [0, 0, 1, 1], metrics=["ari", "inertia"])
        {'ari': nan, 'inertia': 1.0}
    """
    _check_noise_policy(noise_policy)
    if metrics is None:
        infos = list(METRICS.values())
    else:
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        infos = [get_metric(name) for name in names]
    arr = _as_features(X)
    y_pred = _as_labels(labels_pred, "labels_pred")
    _check_same_length(arr.shape[0], "X", y_pred.size, "labels_pred")
    y_true: np.ndarray | None = None
    if labels_true is not None:
        y_true = _as_labels(labels_true, "labels_true")
        _check_same_length(y_true.size, "labels_true", y_pred.size, "labels_pred")

    results: dict[str, float] = {}
    for info in infos:
        if info.needs_labels:
            value = _NAN if y_true is None else info.fn(y_true, y_pred, noise_policy=noise_policy)
        elif info.needs_features:
            value = info.fn(arr, y_pred, random_state=random_state)
        else:
            value = info.fn(y_pred)
        results[info.name] = float(value)
    return results
