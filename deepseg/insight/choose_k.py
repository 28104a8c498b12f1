"""Choosing the number of segments without labels.

For every k in a range, K-Means is fitted and scored with inertia, silhouette,
Calinski-Harabasz, Davies-Bouldin, the gap statistic and bootstrap stability. Each criterion
has its own choice; the recommendation combines two of them with one rule:

1. the *knee* of the inertia curve (Kneedle: the point farthest from the chord of the
   normalised curve) marks where adding segments stops paying off;
2. among the knee and its two neighbours in the range, the k with the highest silhouette is
   recommended (the elbow is a region, not a point, and silhouette picks the best-separated
   partition inside it).

Silhouette, Calinski-Harabasz and stability alone favour k=2 on most customer data (a coarse
split is always well separated and reproducible), and the gap statistic tends to grow with k in
many dimensions, so none of them is used alone; their choices are reported beside the
recommendation. But when the criteria agree (at least ``AGREEMENT`` of the six, the knee
included, choose the same k), the recommendation is that k: a knee that alone disagrees with
silhouette, Calinski-Harabasz, Davies-Bouldin, the gap statistic and stability is the curve's
shape, not evidence (on two well-separated groups the inertia curve has no real knee at all).
When they split, the summary says which chose what and why the knee rule decided.

The same function works on a feature matrix or on an embedding (e.g. the
``transform(X)`` of a fitted deep estimator). Ground-truth labels are never an input.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from deepseg.baselines import knee_point
from deepseg.metrics import calinski_harabasz, davies_bouldin, silhouette
from deepseg.progress import progress

logger = logging.getLogger(__name__)

#: Criteria reported per k, with whether a higher value is better (None: no direct choice).
CRITERIA: dict[str, bool | None] = {
    "inertia": None,
    "silhouette": True,
    "calinski_harabasz": True,
    "davies_bouldin": False,
    "gap": None,
    "stability": True,
}


#: Criteria (of the six: knee, silhouette, Calinski-Harabasz, Davies-Bouldin, gap, stability)
#: that must choose the same k for the recommendation to follow them.
AGREEMENT = 5


@dataclass
class ChooseKResult:
    """The outcome of :func:`choose_k`.

    Attributes:
        table: one row per k with ``k``, ``inertia``, ``silhouette``, ``calinski_harabasz``,
            ``davies_bouldin``, ``gap``, ``gap_se``, ``stability`` and ``stability_std``.
        choices: the k each criterion chooses on its own (``knee`` for inertia, Tibshirani's
            rule for the gap statistic, the best value for the others).
        recommended: the recommended k.
        reasons: sentences explaining the recommendation.
    """

    table: pd.DataFrame
    choices: dict[str, int]
    recommended: int
    reasons: list[str] = field(default_factory=list)

    @property
    def knee(self) -> int:
        return self.choices["knee"]

    def summary(self) -> str:
        """The recommendation and its reasons as one paragraph."""
        return f"Recommended k = {self.recommended}. " + " ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommended": self.recommended,
            "choices": dict(self.choices),
            "reasons": list(self.reasons),
        }


def as_k_values(k_range: Iterable[int]) -> list[int]:
    """The k values to try: two numbers are the first and last k (inclusive), more a list.

    >>> as_k_values([2, 5])
    [2, 3, 4, 5]
    >>> as_k_values(range(3, 6))
    [3, 4, 5]
    """
    values = list(k_range)
    for k in values:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise TypeError(f"The 'k_range' values must be ints. Got {k!r} in {values}.")
    if len(values) == 2:
        lo, hi = int(values[0]), int(values[1])
        values = list(range(lo, hi + 1))
    values = sorted({int(k) for k in values})
    if len(values) < 3 or values[0] < 2:
        raise ValueError(
            "The 'k_range' parameter must give at least 3 values of k >= 2 (as [first, last] or "
            f"a list), so that the inertia curve has a knee. Got {list(k_range)}."
        )
    return values


def knee_of_decreasing(values: np.ndarray) -> int:
    """Index of the elbow of a decreasing, convex curve such as inertia against k.

    Kneedle: normalise the curve to the unit square and take the point farthest below the chord
    joining its ends. Reading the curve backwards makes it increasing and convex, which is
    :func:`~deepseg.baselines.knee_point`'s case.

    >>> knee_of_decreasing(np.array([100.0, 60.0, 30.0, 25.0, 22.0, 20.0]))
    2
    """
    y = np.asarray(values, dtype=np.float64)
    return len(y) - 1 - knee_point(y[::-1])


def gap_choice(k_values: list[int], gap: np.ndarray, gap_se: np.ndarray) -> int:
    """Tibshirani's rule: the smallest k with gap(k) >= gap(k+1) - se(k+1), else the best gap."""
    for i in range(len(k_values) - 1):
        if gap[i] >= gap[i + 1] - gap_se[i + 1]:
            return k_values[i]
    return k_values[int(np.nanargmax(gap))]


def _check_X(X: Any) -> np.ndarray:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(
            f"choose_k expects X of shape (n_samples, n_features); got shape {arr.shape}."
        )
    if not np.isfinite(arr).all():
        raise ValueError("choose_k: X contains NaN or infinite values.")
    return arr


def _log_within(X: np.ndarray, k: int, n_init: int, seed: int) -> float:
    km = KMeans(k, n_init=n_init, random_state=seed).fit(X)
    return float(np.log(max(km.inertia_, 1e-12)))


def choose_k(
    X: Any,
    k_range: Iterable[int] = (2, 10),
    random_state: int = 0,
    *,
    n_init: int = 10,
    resample_n_init: int = 3,
    n_bootstrap: int = 5,
    n_references: int = 5,
    sample_size: int | None = 5000,
) -> ChooseKResult:
    """Score K-Means for every k in ``k_range`` and recommend one (no labels used).

    Args:
        X: array of shape (n_samples, n_features): features or an embedding.
        k_range: [first, last] (inclusive) or a list of at least 3 values of k.
        random_state: seed of every K-Means fit, resample and reference set.
        n_init: K-Means restarts of the fit on all rows (the inertia curve and the scores:
            too few restarts leave bad local optima that bend the curve).
        resample_n_init: K-Means restarts of each fit on a bootstrap resample.
        n_bootstrap: bootstrap pairs per k for stability.
        n_references: uniform reference sets for the gap statistic.
        sample_size: silhouette, gap and stability use at most this many rows (a seeded random
            subset); None uses every row.

    Returns:
        A :class:`ChooseKResult`.
    """
    X = _check_X(X)
    k_values = as_k_values(k_range)
    n = X.shape[0]
    if k_values[-1] >= n:
        raise ValueError(
            f"The 'k_range' parameter must stay below n_samples={n}. Got k up to {k_values[-1]}."
        )
    for name, value in (
        ("n_init", n_init),
        ("resample_n_init", resample_n_init),
        ("n_bootstrap", n_bootstrap),
        ("n_references", n_references),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"The '{name}' parameter must be an int >= 1. Got {value!r}.")
    rng = np.random.default_rng(random_state)
    sub = X
    if sample_size is not None and n > sample_size:
        sub = X[np.sort(rng.choice(n, size=int(sample_size), replace=False))]
    m = sub.shape[0]

    # Gap statistic references: uniform in the bounding box of the PCA-rotated sample
    centred = sub - sub.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    rotated = centred @ vt.T
    lo, hi = rotated.min(axis=0), rotated.max(axis=0)
    references = [rng.uniform(lo, hi, size=rotated.shape) @ vt for _ in range(n_references)]

    rows = []
    for k in progress(k_values, desc="choose-k", unit="k", logger=logger):
        km = KMeans(k, n_init=n_init, random_state=random_state).fit(X)
        labels = km.labels_
        # the same fit as above when no sample was drawn
        log_w = (
            float(np.log(max(km.inertia_, 1e-12)))
            if sub is X
            else _log_within(sub, k, resample_n_init, random_state)
        )
        ref_log_w = np.array(
            [_log_within(ref, k, 1, random_state + b) for b, ref in enumerate(references)]
        )
        aris = []
        for b in range(n_bootstrap):
            a = rng.integers(0, m, size=m)
            c = rng.integers(0, m, size=m)
            common = np.intersect1d(a, c)
            seed_a, seed_c = random_state + 1000 + 2 * b, random_state + 1001 + 2 * b
            fit_a = KMeans(k, n_init=resample_n_init, random_state=seed_a).fit(sub[a])
            fit_c = KMeans(k, n_init=resample_n_init, random_state=seed_c).fit(sub[c])
            common_x = sub[common]
            aris.append(adjusted_rand_score(fit_a.predict(common_x), fit_c.predict(common_x)))
        rows.append(
            {
                "k": k,
                "inertia": float(km.inertia_),
                "silhouette": silhouette(
                    X, labels, random_state=random_state, sample_size=sample_size
                ),
                "calinski_harabasz": calinski_harabasz(X, labels),
                "davies_bouldin": davies_bouldin(X, labels),
                "gap": float(ref_log_w.mean() - log_w),
                "gap_se": float(ref_log_w.std() * np.sqrt(1 + 1 / n_references)),
                "stability": float(np.mean(aris)),
                "stability_std": float(np.std(aris)),
            }
        )
        logger.info(
            "k=%d: inertia=%.4g silhouette=%.3f stability=%.3f",
            k,
            rows[-1]["inertia"],
            rows[-1]["silhouette"],
            rows[-1]["stability"],
        )
    table = pd.DataFrame(rows)
    return _recommend(table, k_values)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _recommend(table: pd.DataFrame, k_values: list[int]) -> ChooseKResult:
    def best(column: str, higher: bool) -> int:
        values = table[column].to_numpy(dtype=np.float64)
        idx = np.nanargmax(values) if higher else np.nanargmin(values)
        return k_values[int(idx)]

    knee_idx = knee_of_decreasing(table["inertia"].to_numpy())
    knee = k_values[knee_idx]
    choices = {
        "knee": knee,
        "silhouette": best("silhouette", True),
        "calinski_harabasz": best("calinski_harabasz", True),
        "davies_bouldin": best("davies_bouldin", False),
        "gap": gap_choice(k_values, table["gap"].to_numpy(), table["gap_se"].to_numpy()),
        "stability": best("stability", True),
    }
    window = list(range(max(0, knee_idx - 1), min(len(k_values), knee_idx + 2)))
    sil = table["silhouette"].to_numpy(dtype=np.float64)
    votes: dict[int, list[str]] = {}
    for criterion, k in choices.items():
        votes.setdefault(k, []).append(criterion)
    consensus, voters = max(votes.items(), key=lambda kv: (len(kv[1]), -kv[0]))
    neighbours = ", ".join(str(k_values[i]) for i in window)
    if len(voters) >= AGREEMENT:
        pick = k_values.index(consensus)
        recommended = consensus
        others = sorted(set(choices) - set(voters))
        reasons = [
            f"{len(voters)} of the {len(choices)} criteria choose k={consensus}"
            + (f" (only {_join(others)} differs)." if others else ": they all agree."),
            f"The inertia curve has its knee (elbow) at k={knee}.",
        ]
    else:
        if np.isnan(sil[window]).all():
            pick = knee_idx
        else:
            pick = window[int(np.nanargmax(sil[window]))]
        recommended = k_values[pick]
        split = "; ".join(f"k={k}: {_join(sorted(names))}" for k, names in sorted(votes.items()))
        reasons = [
            f"The criteria split ({split}), so the knee rule decides: a coarse split is always "
            "well separated and reproducible, which makes silhouette, Calinski-Harabasz and "
            "stability favour small k on their own.",
            f"The inertia curve has its knee (elbow) at k={knee}.",
            f"Among the knee and its neighbours (k = {neighbours}) the silhouette is highest at "
            f"k={recommended} ({sil[pick]:.3f}).",
        ]
    reasons += [
        f"Bootstrap stability at k={recommended} is {table['stability'].iloc[pick]:.2f} "
        "(mean ARI between fits on resamples, 1 = identical).",
        "On their own: silhouette chooses k={silhouette}, "
        "Calinski-Harabasz k={calinski_harabasz}, Davies-Bouldin k={davies_bouldin}, "
        "the gap statistic k={gap}, stability k={stability}.".format(**choices),
    ]
    if knee_idx in (0, len(k_values) - 1) and recommended == knee:
        reasons.append(
            "The knee is at the edge of the range: widen k_range to confirm the recommendation."
        )
    if table["stability"].iloc[pick] < 0.6:
        reasons.append(
            f"Warning: the segmentation at k={recommended} is unstable under resampling."
        )
    return ChooseKResult(table=table, choices=choices, recommended=recommended, reasons=reasons)
