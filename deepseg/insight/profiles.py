"""Segment profiles and names, from the original (unscaled) columns of a table.

For each segment: size and share; mean and median of every numeric column with the lift over
the population; the top categories of every categorical column with their lift; the most
distinctive text terms (class-based TF-IDF: the segment's texts joined into one document); RFM
quintile scores when recency, frequency and monetary columns are present; and a short name.

Names come from the profile statistics, and a descriptor enters a name only when the segment
differs from the rest of the customers materially and beyond noise:

* **Numeric columns** (RFM words included): the effect size is the standardised difference
  ``d`` between the segment and the rest, computed on normal scores (rank-based inverse normal
  transform, so skewed amounts and outliers do not inflate it), with a 95% interval from its
  large-sample standard error ``sqrt(1/n1 + 1/n2 + d^2 / (2 (n1 + n2)))``. A descriptor needs
  the interval to clear ``MIN_EFFECT`` (0.5, a "medium" effect): ``|d| - 1.96 se >= 0.5``.
  The issue's 45 against 51 days of recency (sd 29) is d = 0.2: no word.
* **Structure, not slicing**: K-Means cuts any single blob into segments whose per-column
  differences are large (d up to 2 on a Gaussian blob), so effect size alone cannot tell a real
  group from a slice of a continuum. The normal scores of the numeric columns are projected on
  the direction that separates the segment from the rest (linear discriminant); on
  structureless data that projection is one Gaussian, on grouped data it is not. A segment's
  numeric descriptors count only when the BIC prefers two (tied-variance) Gaussian components
  to one on that projection (``separation`` > 0 in ``profiles.csv``: the BIC gain per 1,000
  customers; measured: -14 to -4 on Gaussian blobs cut by K-Means, 22 to 152 on the synthetic
  customers). Normal scores make every column's marginal Gaussian, which hides groups that
  only one column shows; so a segment also counts as separated when its projection in
  Yeo-Johnson transformed columns splits into two components ``MIN_GAP`` (4) sd apart or more
  (``gap``; measured: at most 2.8 on blobs, 6.2 on two groups of spend). Neither test sees a
  group that is distinct only from its neighbours (the mall table's "rich but not spending"
  customers against all the others), so a segment also counts when it and its nearest segment,
  projected on their own discriminant, split into two components ``MIN_PAIR_GAP`` (3.5) sd
  apart (``pair_gap``; measured: at most 3.1 on blob slices, 3.5 to 7.3 on groups 1 to 2 sd
  apart). Large effects alone cannot do this job: K-Means slices of one Gaussian blob differ
  by d up to 2.5. But once the table shows groups (any of its segments passes one of these
  tests), a large effect (``|d| >= LARGE_EFFECT``, 1.0, its interval clearing ``MIN_EFFECT``)
  names its segment whatever that segment's own test says: a segment that merges a group with
  part of its neighbour (the mall table's young, low-income customers, d = -1.4 and -1.2) is
  still younger and poorer than the rest. On a structureless table no segment gets a word.
* A numeric difference is shown by the medians, unless they are equal: then by the share of
  non-zero values (a mostly-zero column) or the mean.
* RFM words for the RFM columns: "high-spend" / "low-spend", "frequent" / "infrequent" (or
  "one-time" when the segment's median frequency is 1 or less), "lapsed" / "recent"; other
  columns give "high <column>" / "low <column>" in plain words ("earlier <column>" /
  "later <column>" for date columns, profiled as days since the reference date).
* Column names become words (camel case and underscores split, lower case except acronyms)
  unless ``column_labels`` (``report.labels``) gives words.
* **Categories**: ``<category> <column>`` (``Region 1`` for codes; ``responded`` / ``did not
  respond`` for yes/no flags; the value alone only for countries, genders and the like)
  when the category's share in the segment is at least ``MIN_CATEGORY_SHARE`` with a lift of
  at least ``MIN_CATEGORY_LIFT``, and the lower bound of the share's 95% interval is above the
  population share (the lift's interval excludes 1). Text terms likewise: ``'term'``.
* A name holds at most ``max_words`` descriptors (one more when it tells look-alike segments
  apart, below), RFM words first, then the strongest; a
  descriptor that shares a content word with one already in the name is skipped
  ("low total charges" after "low monthly charges"). A segment with
  no material difference is "average" (with its share of customers when several are); one with
  material differences that are only those of a slice of a continuum has "no distinct trait". Names
  are made unique by adding the segment's strongest descriptor among those that set it apart
  from each look-alike by the same rules applied between the two (the effect against that
  segment alone; the share against its share), then the share of customers, then the segment
  id. ``profiles.csv`` lists every descriptor with its evidence (``descriptors``) and each
  numeric column's effect (``<column>_effect``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from deepseg.features.columns import date_format, numeric_values
from deepseg.insight.wording import human_pair

logger = logging.getLogger(__name__)

#: Column-name patterns used to find the RFM columns when they are not given.
RFM_PATTERNS: dict[str, str] = {
    "recency": r"recency",
    "frequency": r"^(frequency|n_orders|n_invoices|n_purchases|orders)$",
    "monetary": r"monetary|spend|revenue|sales",
}
#: Column names never taken for an RFM role by name (scores and ranks are not amounts).
_NOT_RFM = re.compile(r"score|rank|rating|index")
#: The 95% interval of a numeric effect (normal-score standardised difference) must clear this.
MIN_EFFECT = 0.5
#: Or the Yeo-Johnson projection splits into two components this many sd apart.
MIN_GAP = 4.0
#: Or the segment and its nearest segment, projected on their discriminant, form two
#: components this many sd apart (``pair_gap``).
MIN_PAIR_GAP = 3.5
#: Once any segment of the table passes a separation test, an effect at least this large (its
#: interval clearing ``MIN_EFFECT``) names its segment whatever that segment's own test says.
LARGE_EFFECT = 1.0
#: Rows used to test a segment's separation (a seeded sample of larger tables).
SEPARATION_SAMPLE = 5000
#: A category must have at least this share in the segment and this lift to name it.
MIN_CATEGORY_SHARE = 0.3
MIN_CATEGORY_LIFT = 1.5


@dataclass
class SegmentProfiles:
    """Profiles of every segment.

    Attributes:
        summary: one row per segment: ``segment``, ``name``, ``size``, ``share``, the RFM
            scores (``R_score``, ``F_score``, ``M_score``, ``RFM_score``) when present, and
            ``<column>_mean``, ``<column>_median``, ``<column>_lift``, ``<column>_effect`` for
            every numeric column, ``separation`` and ``gap`` (see :func:`segment_separation`),
            and ``descriptors``: every descriptor that passed, with its evidence.
        numeric: long table (segment, column, mean, median, population_mean,
            population_median, lift, z, rank_deviation, effect, effect_low, effect_high); the
            effect is the normal-score standardised difference against the rest, with its 95%
            interval.
        categories: long table (segment, column, category, share, population_share, lift),
            the top categories per segment and column.
        terms: long table (segment, term, score, share, population_share).
        names: {segment id: name}.
        rfm: {"recency" | "frequency" | "monetary": column} of the RFM columns found.
        descriptors: {segment id: every descriptor that passed, strongest first}.
    """

    summary: pd.DataFrame
    numeric: pd.DataFrame
    categories: pd.DataFrame
    terms: pd.DataFrame
    names: dict[int, str]
    rfm: dict[str, str] = field(default_factory=dict)
    descriptors: dict[int, list[Descriptor]] = field(default_factory=dict)

    def zscores(self) -> pd.DataFrame:
        """Segments x numeric columns: (segment mean - population mean) / population std."""
        if self.numeric.empty:
            return pd.DataFrame()
        return self.numeric.pivot(index="segment", columns="column", values="z")


def find_rfm_columns(
    columns: list[str], rfm: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    """The recency, frequency and monetary columns: given ones, else found by name.

    Raises:
        ValueError: when a given column is not among ``columns``.
    """
    found: dict[str, str] = {}
    rfm = dict(rfm or {})
    for role, pattern in RFM_PATTERNS.items():
        given = rfm.get(role)
        if given is not None:
            if given not in columns:
                raise ValueError(
                    f"The {role} column '{given}' is not a numeric column of the table. "
                    f"Numeric columns: {columns}"
                )
            found[role] = given
            continue
        # "Spending Score (1-100)" is a score, not an amount of money
        matches = [
            c for c in columns if re.search(pattern, c.lower()) and not _NOT_RFM.search(c.lower())
        ]
        if matches:
            found[role] = matches[0]
    return found


def _quintile_scores(values: pd.Series, higher_is_better: bool) -> pd.Series:
    """Quintile score 1..5 of every value (5 = best), by percentile rank; NaN stays NaN."""
    pct = values.rank(pct=True, method="average")
    if not higher_is_better:
        pct = 1.0 - pct + 1.0 / max(values.notna().sum(), 1)
    return np.ceil(pct.clip(1e-9, 1.0) * 5).clip(1, 5)


def _humanise(column: str, labels: Mapping[str, str] | None = None) -> str:
    """Plain words for a column name, or its label when ``labels`` gives one.

    Camel case and underscores are split; words are lower-cased except acronyms, and a name
    written all in capitals is all words (``CASH_ADVANCE_TRX`` -> ``cash advance trx``).

    >>> _humanise("MntWines"), _humanise("total_spend"), _humanise("CASH_ADVANCE")
    ('mnt wines', 'total spend', 'cash advance')
    >>> _humanise("RFM_score")
    'RFM score'
    >>> _humanise("MntWines", {"MntWines": "wine spending"})
    'wine spending'
    """
    if labels and str(column) in labels:
        return str(labels[str(column)])
    text = str(column)
    shouting = not re.search(r"[a-z]", text)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    words = re.sub(r"[_\s]+", " ", text).split()
    return " ".join(w if w.isupper() and len(w) > 1 and not shouting else w.lower() for w in words)


def normal_scores(values: pd.DataFrame) -> pd.DataFrame:
    """Rank-based inverse normal transform of every column (average ranks; NaN stays NaN)."""
    from scipy.stats import norm

    ranks = values.rank(method="average")
    counts = values.notna().sum()
    return pd.DataFrame(
        norm.ppf((ranks - 0.5) / counts.where(counts > 0, 1)),
        index=values.index,
        columns=values.columns,
    )


def standardised_difference(scores: np.ndarray, in_segment: np.ndarray) -> tuple[float, float]:
    """Standardised difference (Cohen's d, pooled sd) of a segment against the rest, and its
    large-sample standard error; NaN values are left out. (0, inf) when undefined."""
    ok = np.isfinite(scores)
    a, b = scores[ok & in_segment], scores[ok & ~in_segment]
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return 0.0, float("inf")
    pooled = np.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    if not pooled > 0:
        return 0.0, float("inf")
    d = float((a.mean() - b.mean()) / pooled)
    return d, float(np.sqrt(1 / n1 + 1 / n2 + d**2 / (2 * (n1 + n2))))


def separation_space(values: pd.DataFrame) -> np.ndarray:
    """The numeric columns for :func:`segment_separation`: missing values at the median, each
    column Yeo-Johnson transformed and standardised, clipped at 5 sd. The power transform makes a
    skewed but unimodal column (amounts, counts) close to Gaussian and leaves a column made of
    two groups bimodal. (Normal scores would not do: they make every column's marginal
    Gaussian, and a column split into two clear groups would look like one blob.)

    Returns:
        Array of shape (n_samples, n_columns).
    """
    from sklearn.preprocessing import PowerTransformer

    out = np.zeros(values.shape)
    for j, column in enumerate(values.columns):
        v = values[column].to_numpy(dtype=np.float64)
        v = np.where(np.isfinite(v), v, np.nanmedian(v) if np.isfinite(v).any() else 0.0)
        if v.std() > 0:
            v = (v - v.mean()) / v.std()  # Yeo-Johnson is unstable on large raw amounts
            with np.errstate(all="ignore"):
                t = PowerTransformer(method="yeo-johnson").fit_transform(v[:, None])[:, 0]
            out[:, j] = np.clip(t, -5, 5) if np.isfinite(t).all() and t.std() > 0 else v
    return out


def segment_separation(
    Z: np.ndarray, labels: np.ndarray, segments: list[int], random_state: int = 0
) -> dict[int, tuple[float, float]]:
    """How far each segment is from being a slice of one Gaussian, in the space ``Z``.

    The rows are projected on the linear discriminant of the segment against the rest, and one
    Gaussian and a mixture of two tied-variance Gaussians are fitted to that projection.

    Args:
        Z: array of shape (n_samples, n_columns), e.g. normal scores or
            :func:`separation_space`.
        labels: segment of each row, shape (n_samples,).
        segments: the segments to test.
        random_state: seed of the row sample (at most ``SEPARATION_SAMPLE`` rows) and the fit.

    Returns:
        {segment: (BIC gain of two components over one per 1,000 rows, distance between the
        two components' means in their common sd)}; NaN where undefined (no numeric columns,
        fewer than 10 rows in or out of the segment, noise).
    """
    from sklearn.mixture import GaussianMixture

    nan = (float("nan"), float("nan"))
    out = dict.fromkeys(segments, nan)
    Z = np.where(np.isfinite(Z), Z, 0.0)
    if Z.shape[1] == 0:
        return out
    Z = Z[:, np.std(Z, axis=0) > 0]
    if Z.shape[1] == 0:
        return out
    labels = np.asarray(labels)
    if len(Z) > SEPARATION_SAMPLE:
        rng = np.random.default_rng(random_state)
        rows = np.sort(rng.choice(len(Z), SEPARATION_SAMPLE, replace=False))
        Z, labels = Z[rows], labels[rows]
    cov = np.atleast_2d(np.cov(Z, rowvar=False)) + 1e-6 * np.eye(Z.shape[1])
    for s in segments:
        inside = labels == s
        if s == -1 or inside.sum() < 10 or (~inside).sum() < 10:
            continue
        t = Z @ np.linalg.solve(cov, Z[inside].mean(axis=0) - Z[~inside].mean(axis=0))
        if not t.std() > 0:
            continue
        t = ((t - t.mean()) / t.std())[:, None]
        one = GaussianMixture(1).fit(t)
        two = GaussianMixture(2, covariance_type="tied", n_init=2, random_state=random_state).fit(
            t
        )
        gain = (one.bic(t) - two.bic(t)) / len(t) * 1000
        gap = abs(two.means_[0, 0] - two.means_[1, 0]) / np.sqrt(two.covariances_.ravel()[0])
        out[s] = (float(gain), float(gap))
    return out


def pair_gaps(
    Z: np.ndarray, labels: np.ndarray, segments: list[int], random_state: int = 0
) -> dict[int, float]:
    """How far each segment stands from its nearest segment, in the space ``Z``.

    The rows of the segment and of the segment whose centre is nearest are projected on the
    linear discriminant of the two, and a mixture of two tied-variance Gaussians is fitted to
    the projection; the distance between its means in their common sd is the gap. Two
    neighbouring slices of one Gaussian blob give at most 3.1 (measured on 2,000- and 200-row
    blobs cut by K-Means); groups whose centres are 1 to 2 sd apart in two columns, 3.5 to 7.3.

    Args:
        Z: array of shape (n_samples, n_columns) (:func:`separation_space`).
        labels: segment of each row, shape (n_samples,).
        segments: the segments to test.
        random_state: seed of the mixture fit.

    Returns:
        {segment: gap}; NaN where undefined (noise, fewer than 10 rows, one segment).
    """
    from sklearn.mixture import GaussianMixture

    out = dict.fromkeys(segments, float("nan"))
    Z = np.where(np.isfinite(Z), Z, 0.0)
    if Z.shape[1] == 0:
        return out
    labels = np.asarray(labels)
    real = [s for s in segments if s != -1 and (labels == s).sum() >= 10]
    centres = {s: Z[labels == s].mean(axis=0) for s in real}
    for s in real:
        others = [t for t in real if t != s]
        if not others:
            continue
        t = min(others, key=lambda o: float(np.linalg.norm(centres[s] - centres[o])))
        a, b = Z[labels == s], Z[labels == t]
        within = (np.cov(a, rowvar=False) * len(a) + np.cov(b, rowvar=False) * len(b)) / (
            len(a) + len(b)
        )
        within = np.atleast_2d(within) + 1e-6 * np.eye(Z.shape[1])
        x = np.vstack([a, b]) @ np.linalg.solve(within, centres[s] - centres[t])
        if not x.std() > 0:
            continue
        x = ((x - x.mean()) / x.std())[:, None]
        two = GaussianMixture(2, covariance_type="tied", n_init=2, random_state=random_state)
        two.fit(x)
        out[s] = float(
            abs(two.means_[0, 0] - two.means_[1, 0]) / np.sqrt(two.covariances_.ravel()[0])
        )
    return out


def profile_segments(
    frame: pd.DataFrame,
    labels: np.ndarray,
    *,
    numeric: list[str] | None = None,
    categorical: list[str] | None = None,
    text: list[str] | None = None,
    rfm: Mapping[str, str | None] | None = None,
    top_categories: int = 3,
    top_terms: int = 8,
    max_words: int = 3,
    reference_date: str | None = None,
    column_labels: Mapping[str, str] | None = None,
) -> SegmentProfiles:
    """Profile and name the segments of ``labels`` from the raw columns of ``frame``.

    Args:
        frame: the original table, one row per customer (unscaled values).
        labels: segment of each row, shape (n_samples,); -1 (noise) is profiled as its own
            segment.
        numeric: numeric columns (default: every numeric column of ``frame``).
        categorical: categorical columns (default: none).
        text: text columns (default: none).
        rfm: {"recency", "frequency", "monetary": column}; missing roles are found by name.
        top_categories: categories kept per segment and column.
        top_terms: text terms kept per segment.
        max_words: descriptors per name (RFM words always count); segments that would share
            a name get one more each, which sets them apart.
        reference_date: date columns are profiled as days since this date (default: the
            latest date in the column); pass the feature pipeline's, so both agree.
        column_labels: {column: words} used in names instead of the column's own words
            (``report.labels``).

    Returns:
        The :class:`SegmentProfiles`.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(frame):
        raise ValueError(
            f"labels must have shape (n_samples,) = ({len(frame)},); got {labels.shape}."
        )
    if numeric is None:
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = list(categorical or [])
    text = list(text or [])
    missing = [c for c in [*numeric, *categorical, *text] if c not in frame.columns]
    if missing:
        raise ValueError(f"Columns {missing} are not in the table: {list(frame.columns)[:30]}")
    segments = sorted(int(s) for s in np.unique(labels))
    n = len(labels)

    num = pd.DataFrame(
        {c: numeric_values(frame[c], reference_date) for c in numeric}, index=frame.index
    )
    rfm_cols = find_rfm_columns(list(numeric), rfm)
    summary = pd.DataFrame({"segment": segments})
    summary["size"] = [int((labels == s).sum()) for s in segments]
    summary["share"] = summary["size"] / n

    # RFM quintile scores, per customer then averaged per segment
    if rfm_cols:
        scores = {}
        if "recency" in rfm_cols:
            scores["R_score"] = _quintile_scores(num[rfm_cols["recency"]], False)
        if "frequency" in rfm_cols:
            scores["F_score"] = _quintile_scores(num[rfm_cols["frequency"]], True)
        if "monetary" in rfm_cols:
            scores["M_score"] = _quintile_scores(num[rfm_cols["monetary"]], True)
        score_frame = pd.DataFrame(scores)
        if len(scores) == 3:
            score_frame["RFM_score"] = score_frame.sum(axis=1, min_count=3)
        for column in score_frame.columns:
            summary[column] = [float(score_frame[column][labels == s].mean()) for s in segments]

    numeric_rows = []
    ranks = num.rank(pct=True)
    scores = normal_scores(num)
    for column in numeric:
        values = num[column]
        pop_mean, pop_median, pop_std = values.mean(), values.median(), values.std()
        for s in segments:
            seg = values[labels == s]
            mean = seg.mean()
            effect, se = standardised_difference(scores[column].to_numpy(), labels == s)
            numeric_rows.append(
                {
                    "segment": s,
                    "column": column,
                    "mean": mean,
                    "median": seg.median(),
                    "nonzero_share": float((seg.dropna() != 0).mean())
                    if seg.notna().any()
                    else np.nan,
                    "population_nonzero_share": float((values.dropna() != 0).mean())
                    if values.notna().any()
                    else np.nan,
                    "population_mean": pop_mean,
                    "population_median": pop_median,
                    "lift": mean / pop_mean if pop_mean and np.isfinite(pop_mean) else np.nan,
                    "z": (mean - pop_mean) / pop_std if pop_std and pop_std > 0 else 0.0,
                    "rank_deviation": ranks[column][labels == s].mean() - 0.5,
                    "effect": effect,
                    "effect_low": effect - 1.96 * se,
                    "effect_high": effect + 1.96 * se,
                }
            )
    numeric_table = pd.DataFrame(
        numeric_rows,
        columns=[
            "segment",
            "column",
            "mean",
            "median",
            "population_mean",
            "population_median",
            "nonzero_share",
            "population_nonzero_share",
            "lift",
            "z",
            "rank_deviation",
            "effect",
            "effect_low",
            "effect_high",
        ],
    )
    for column in numeric:
        part = numeric_table[numeric_table["column"] == column].set_index("segment")
        for stat in ("mean", "median", "lift", "effect"):
            summary[f"{column}_{stat}"] = part.loc[segments, stat].to_numpy()

    rows = np.arange(n)  # the separation tests read a seeded sample of large tables
    if n > SEPARATION_SAMPLE:
        rows = np.sort(np.random.default_rng(0).choice(n, SEPARATION_SAMPLE, replace=False))
    joint = segment_separation(scores.to_numpy()[rows], labels[rows], segments)
    marginal = segment_separation(separation_space(num.iloc[rows]), labels[rows], segments)
    summary["separation"] = [joint[s][0] for s in segments]
    summary["gap"] = [marginal[s][1] for s in segments]
    pairs = pair_gaps(separation_space(num.iloc[rows]), labels[rows], segments)
    summary["pair_gap"] = [pairs[s] for s in segments]
    separated = {s: bool(joint[s][0] > 0 or marginal[s][1] >= MIN_GAP) for s in segments}
    distinct = {s: bool(pairs[s] >= MIN_PAIR_GAP) for s in segments}
    category_table = _category_profiles(frame, labels, segments, categorical, top_categories)
    term_table = _term_profiles(frame, labels, segments, text, top_terms)
    sizes = dict(zip(segments, summary["size"]))
    dates = frozenset(c for c in numeric if date_format(frame[c]) is not None)
    flags = frozenset(c for c in categorical if is_flag(frame[c]))
    found = _descriptors(
        segments,
        numeric_table,
        category_table,
        term_table,
        rfm_cols,
        separated,
        sizes,
        dates,
        distinct=distinct,
        labels=column_labels,
        flags=flags,
    )
    material = {
        s: bool(
            (
                (numeric_table["segment"] == s)
                & (
                    numeric_table["effect"].abs()
                    - (numeric_table["effect_high"] - numeric_table["effect"])
                    >= MIN_EFFECT
                )
            ).any()
        )
        for s in segments
    }
    names = _name_segments(
        segments,
        found,
        summary,
        max_words,
        material,
        differs=_pairwise_test(frame, labels, num, scores, numeric_table, categorical, text),
    )
    summary.insert(1, "name", [names[s] for s in segments])
    summary["descriptors"] = [
        "; ".join(f"{d.word} ({d.evidence})" for d in found[s]) for s in segments
    ]
    return SegmentProfiles(
        summary=summary,
        numeric=numeric_table,
        categories=category_table,
        terms=term_table,
        names=names,
        rfm=rfm_cols,
        descriptors=found,
    )


def _category_profiles(
    frame: pd.DataFrame,
    labels: np.ndarray,
    segments: list[int],
    columns: list[str],
    top: int,
) -> pd.DataFrame:
    rows = []
    for column in columns:
        values = _category_values(frame[column])
        population = values.value_counts(normalize=True)
        for s in segments:
            shares = values[labels == s].value_counts(normalize=True)
            lift = shares / population.reindex(shares.index)
            # Rank by lift among categories with a meaningful share, then by share
            order = pd.DataFrame({"share": shares, "lift": lift})
            order = order.sort_values(["share"], ascending=False).head(max(top * 3, 10))
            order = order.sort_values(["lift", "share"], ascending=False).head(top)
            for category, row in order.iterrows():
                rows.append(
                    {
                        "segment": s,
                        "column": column,
                        "category": category,
                        "share": float(row["share"]),
                        "population_share": float(population[category]),
                        "lift": float(row["lift"]),
                    }
                )
    return pd.DataFrame(
        rows, columns=["segment", "column", "category", "share", "population_share", "lift"]
    )


#: The words of text columns (the term profiles' vectoriser, lower-cased).
_TOKEN_PATTERN = r"(?u)\b[a-zA-Z]{3,}\b"


def _documents(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Each row's text columns joined into one document ('' for missing values)."""
    docs = frame[columns[0]].astype(object).where(frame[columns[0]].notna(), "").map(str)
    for column in columns[1:]:
        docs = docs + " " + frame[column].astype(object).where(frame[column].notna(), "").map(str)
    return docs


def _category_values(values: pd.Series) -> pd.Series:
    """A categorical column as the category profiles read it: strings, '(missing)' for NaN."""
    return values.astype(object).where(values.notna(), "(missing)").astype(str)


def _term_profiles(
    frame: pd.DataFrame, labels: np.ndarray, segments: list[int], columns: list[str], top: int
) -> pd.DataFrame:
    """Class-based TF-IDF: each segment's texts are one document; score = tf * log(1 + A / f).

    tf is the term's share of the segment's words, A the mean number of words per segment and
    f the term's count over all segments. Only terms with a higher share in the segment than in
    the population are kept.
    """
    out_columns = ["segment", "term", "score", "share", "population_share"]
    if not columns:
        return pd.DataFrame(columns=out_columns)
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(
        stop_words="english", min_df=2, max_features=20000, token_pattern=_TOKEN_PATTERN
    )
    try:
        counts = vectorizer.fit_transform(_documents(frame, columns).tolist()).tocsr()
    except ValueError:  # empty vocabulary
        return pd.DataFrame(columns=out_columns)
    vocab = np.asarray(vectorizer.get_feature_names_out())
    onehot = np.zeros((len(segments), len(labels)))
    for i, s in enumerate(segments):
        onehot[i, labels == s] = 1.0
    class_counts = np.asarray(counts.T @ onehot.T).T  # (n_segments, n_terms)
    present = (counts > 0).astype(np.float64)
    class_presence = np.asarray(present.T @ onehot.T).T / onehot.sum(axis=1, keepdims=True)
    population_presence = np.asarray(present.mean(axis=0)).ravel()
    tf = class_counts / np.maximum(class_counts.sum(axis=1, keepdims=True), 1.0)
    avg_words = class_counts.sum() / len(segments)
    idf = np.log(1.0 + avg_words / np.maximum(class_counts.sum(axis=0), 1.0))
    # keep terms the segment uses more than the population does (tf lift > 1), so that words
    # common everywhere do not fill every segment's list
    population_tf = class_counts.sum(axis=0) / max(class_counts.sum(), 1.0)
    over = tf > population_tf[None, :]
    scores = np.where(over, tf * idf, 0.0)
    rows = []
    for i, s in enumerate(segments):
        for j in np.argsort(-scores[i])[:top]:
            if scores[i, j] <= 0:
                continue
            rows.append(
                {
                    "segment": s,
                    "term": str(vocab[j]),
                    "score": float(scores[i, j]),
                    "share": float(class_presence[i, j]),
                    "population_share": float(population_presence[j]),
                }
            )
    return pd.DataFrame(rows, columns=out_columns)


@dataclass
class Descriptor:
    """One word of a segment's name and the evidence for it.

    Attributes:
        word: the words in the name ("high-spend", "monthly contract", "'garden'").
        stem: the content words of the column and category; a name holds no two
            descriptors that share one ("low monthly charges" keeps out "low total charges").
        strength: how strong the difference is (|d| for numeric columns).
        evidence: the statistics behind it, for people.
        rfm: order among the RFM words (0 monetary, 1 frequency, 2 recency), else -1.
        column: the source column ("" for text terms).
        kind: "numeric", "category" or "term".
        segment_value: the segment's median (numeric) or share (category, term).
        population_value: the same over all customers.
        category: the category or term ("" for numeric columns).
        statistic: what ``segment_value`` is for numeric columns: "median", or "mean" or
            "non-zero share" where the medians are equal (``median 0 against 0`` says
            nothing).
    """

    word: str
    stem: frozenset[str]
    strength: float
    evidence: str
    rfm: int = -1
    column: str = ""
    kind: str = "numeric"
    segment_value: float = float("nan")
    population_value: float = float("nan")
    category: str = ""
    statistic: str = "median"


_RFM_WORDS = {
    "monetary": ("high-spend", "low-spend"),
    "frequency": ("frequent", "infrequent"),
    "recency": ("lapsed", "recent"),
}


#: Columns whose categories read alone ("Germany", not "Germany country").
_SELF_EVIDENT = {"country", "region", "city", "state", "location", "gender", "sex", "language"}


_NOT_STEMS = {"high", "low", "no", "yes", "not", "and", "or", "of", "the", "a", "in", "per"}


def _stem(*texts: str) -> frozenset[str]:
    """The content words of a column (and category): what a name should not repeat."""
    words = re.findall(r"[^\W_]+", " ".join(_humanise(t) for t in texts).lower())
    return frozenset(w for w in words if w not in _NOT_STEMS and not w.isdigit())


_YES = {"1", "1.0", "yes", "true", "y", "t"}
_NO = {"0", "0.0", "no", "false", "n", "f"}
#: Yes/no columns named by a noun that reads as a verb: (yes, no).
_FLAG_VERBS = {
    "response": ("responded", "did not respond"),
    "churn": ("churned", "did not churn"),
    "complain": ("complained", "did not complain"),
    "complaint": ("complained", "did not complain"),
    "default": ("defaulted", "did not default"),
    "exited": ("left", "stayed"),
    "attrition": ("left", "stayed"),
}


def is_flag(values: pd.Series) -> bool:
    """Whether a column is a yes/no flag: two distinct values, both yes/no words or 0/1."""
    distinct = {str(v).strip().lower() for v in values.dropna().unique()}
    return len(distinct) == 2 and distinct <= _YES | _NO and bool(distinct & _YES)


def _flag_words(column: str, yes: bool, labels: Mapping[str, str] | None = None) -> str:
    """A yes/no flag in words: ``Response`` -> "responded" / "did not respond",
    ``AcceptedCmp2`` -> "accepted cmp2" / "did not accept cmp2", ``Partner`` -> "partner" /
    "no partner".

    >>> _flag_words("Response", True), _flag_words("Response", False)
    ('responded', 'did not respond')
    >>> _flag_words("AcceptedCmp2", False), _flag_words("Partner", False)
    ('did not accept cmp2', 'no partner')
    """
    words = _humanise(column, labels)
    if labels and str(column) in labels:
        return words if yes else f"not {words}"
    first, _, rest = words.partition(" ")
    tail = f" {rest}" if rest else ""
    if first.lower() in _FLAG_VERBS:
        return _FLAG_VERBS[first.lower()][0 if yes else 1] + tail
    if yes:
        return words
    if len(first) > 4 and first.endswith("ed"):  # a past participle: accepted, churned
        base = first[:-3] + "y" if first.endswith("ied") else first[:-2]
        return f"did not {base}{tail}"
    if first.lower() in ("is", "has", "was"):
        return f"{first} not{tail}"
    return f"no {words}"


def _plain_category(
    column: str, category: str, labels: Mapping[str, str] | None = None, flag: bool = False
) -> str:
    """A category in words, always with its column: ``monthly contract``, ``Region 1``,
    ``responded`` (yes/no flags), ``Germany`` (a country needs no column word).

    >>> _plain_category("Region", "1"), _plain_category("Contract", "Monthly")
    ('Region 1', 'Monthly contract')
    >>> _plain_category("Response", "1", flag=True), _plain_category("country", "Germany")
    ('responded', 'Germany')
    """
    value = category.strip()
    lower = value.lower()
    if flag and lower in _YES | _NO:
        return _flag_words(column, lower in _YES, labels)
    col = _humanise(column, labels)
    code = re.fullmatch(r"-?\d+(\.\d+)?", value) is not None
    if col in _SELF_EVIDENT and not code:
        return value
    if lower in ("none", "no") or (lower in _NO and not code):
        return f"no {col}"
    if lower in _YES and not code:  # "device protection", not "device protection Yes"
        return col
    if code:
        return f"{col[:1].upper()}{col[1:]} {value}"
    return f"{value} {col}"


def _share_clears(share: float, population: float, n: int, n_population: int = 0) -> bool:
    """The lower bound of the share's 95% (normal-approximation) interval is above the
    population share: the lift's interval excludes 1. With ``n_population``, the reference is
    a sample too (another segment): the interval of the difference of the two shares."""
    variance = max(share * (1 - share), 1e-12) / max(n, 1)
    if n_population:
        variance += population * (1 - population) / n_population
    return share - 1.96 * np.sqrt(variance) > population


def _descriptors(
    segments: list[int],
    numeric: pd.DataFrame,
    categories: pd.DataFrame,
    terms: pd.DataFrame,
    rfm: dict[str, str],
    separated: Mapping[int, bool],
    sizes: Mapping[int, int],
    dates: frozenset[str] = frozenset(),
    *,
    distinct: Mapping[int, bool] | None = None,
    labels: Mapping[str, str] | None = None,
    flags: frozenset[str] = frozenset(),
) -> dict[int, list[Descriptor]]:
    """Every descriptor that passes the rules of the module docstring, strongest first."""
    distinct = distinct or {}
    structured = any(separated.values()) or any(distinct.values())
    role_of = {column: role for role, column in rfm.items()}
    order = {"monetary": 0, "frequency": 1, "recency": 2}
    found: dict[int, list[Descriptor]] = {s: [] for s in segments}
    for row in numeric.itertuples():
        s = int(row.segment)
        if not np.isfinite(row.effect):
            continue
        bound = abs(row.effect) - (row.effect_high - row.effect)  # the interval's inner end
        if bound < MIN_EFFECT:
            continue
        # a segment that stands apart from its nearest segment is no slice of a continuum,
        # whatever the test against all the rest says; and once the table shows groups at all,
        # a large difference names the segment whatever its own separation test says
        if not (
            separated.get(s, False)
            or distinct.get(s, False)
            or (structured and abs(row.effect) >= LARGE_EFFECT)
        ):
            continue
        high = row.effect > 0
        role = role_of.get(row.column)
        if role is not None:
            word = _RFM_WORDS[role][0 if high else 1]
            if role == "frequency" and not high and row.median <= 1:
                word = "one-time"
        elif row.column in dates:  # days since the date: more days, an earlier date
            word = ("earlier " if high else "later ") + _humanise(row.column, labels)
        else:
            word = ("high " if high else "low ") + _humanise(row.column, labels)
        statistic, value, population = _telling_statistic(row)
        mine, everyone = human_pair(value, population, share=statistic == "non-zero share")
        evidence = (
            f"{row.column}: d={row.effect:+.2f} [{row.effect_low:+.2f}, {row.effect_high:+.2f}],"
            f" {statistic} {mine} vs {everyone}"
        )
        found[s].append(
            Descriptor(
                word,
                _stem(row.column),
                abs(row.effect),
                evidence,
                order[role] if role else -1,
                column=str(row.column),
                segment_value=float(value),
                population_value=float(population),
                statistic=statistic,
            )
        )
    by_column: dict[tuple[int, str], list[tuple[float, str, float, float]]] = {}
    for row in categories.itertuples():
        n = sizes.get(int(row.segment), 0)
        if (
            row.share >= MIN_CATEGORY_SHARE
            and row.lift >= MIN_CATEGORY_LIFT
            and _share_clears(row.share, row.population_share, n)
        ):
            by_column.setdefault((int(row.segment), str(row.column)), []).append(
                (
                    float(row.share - row.population_share),
                    str(row.category),
                    row.share,
                    row.population_share,
                )
            )
    for (s, column), items in by_column.items():
        items.sort(key=lambda c: -c[0])
        strength, category, share, population = items[0]
        found[s].append(
            Descriptor(
                _plain_category(column, category, labels, column in flags),
                _stem(column, category),
                # a share difference of 0.3 reads like an effect of about 0.6
                2 * strength,
                f"{column}={category}: {share:.0%} vs {population:.0%}",
                column=column,
                kind="category",
                segment_value=float(share),
                population_value=float(population),
                category=category,
            )
        )
    for row in terms.itertuples():
        n = sizes.get(int(row.segment), 0)
        if row.share - row.population_share >= 0.1 and _share_clears(
            row.share, row.population_share, n
        ):
            found[int(row.segment)].append(
                Descriptor(
                    f"'{row.term}'",
                    frozenset({"'text'"}),  # one term per name
                    2 * float(row.share - row.population_share),
                    f"'{row.term}' in {row.share:.0%} vs {row.population_share:.0%}",
                    kind="term",
                    segment_value=float(row.share),
                    population_value=float(row.population_share),
                    category=str(row.term),
                )
            )
    # RFM words first (the axes of the RFM scores, when the table has them), then the largest
    # differences, whatever their kind: a category never displaces a larger numeric difference
    for s in segments:
        found[s].sort(key=lambda d: (d.rfm < 0, d.rfm, -d.strength))
    return found


def _pairwise_test(
    frame: pd.DataFrame,
    labels: np.ndarray,
    num: pd.DataFrame,
    scores: pd.DataFrame,
    numeric: pd.DataFrame,
    categorical: list[str],
    text: list[str],
) -> Callable[[int, int, Descriptor], float | None]:
    """``differs(s, o, d)``: how strongly descriptor ``d`` of segment ``s`` sets it apart from
    segment ``o`` by the rules it passed against everyone, else None. A numeric difference: the
    normal-score effect of ``s`` against ``o`` alone, in the direction of the word, with its 95%
    interval clear of ``MIN_EFFECT``. A category: its share in ``s`` at least
    ``MIN_CATEGORY_LIFT`` times that in ``o`` and the interval of the difference above 0. A text
    term: a share at least 10 points above that in ``o``, the interval of the difference above
    0. The strength reads as the descriptors' (|d|; twice a share difference)."""
    direction = {(int(r.segment), str(r.column)): r.effect for r in numeric.itertuples()}
    words: list[frozenset[str]] = []  # each row's words, read once when a term is tested

    def shares(d: Descriptor, s: int, o: int) -> tuple[float, int, float, int]:
        if d.kind == "category":
            hit = (_category_values(frame[d.column]) == d.category).to_numpy()
        else:
            if not words:
                docs = _documents(frame, text).str.lower()
                words.extend(frozenset(re.findall(_TOKEN_PATTERN, doc)) for doc in docs)
            hit = np.array([d.category in w for w in words])
        a, b = labels == s, labels == o
        return float(hit[a].mean()), int(a.sum()), float(hit[b].mean()), int(b.sum())

    def differs(s: int, o: int, d: Descriptor) -> float | None:
        if d.kind == "numeric":
            if d.column not in num.columns:
                return None
            rows = (labels == s) | (labels == o)
            effect, se = standardised_difference(
                scores[d.column].to_numpy()[rows], (labels == s)[rows]
            )
            effect *= np.sign(direction.get((s, d.column), 0.0))
            return float(effect) if effect - 1.96 * se >= MIN_EFFECT else None
        if d.kind == "category" and d.column in categorical:
            share, n, other, m = shares(d, s, o)
            ok = share >= MIN_CATEGORY_LIFT * other and _share_clears(share, other, n, m)
            return 2 * (share - other) if ok else None
        if d.kind == "term" and text:
            share, n, other, m = shares(d, s, o)
            ok = share - other >= 0.1 and _share_clears(share, other, n, m)
            return 2 * (share - other) if ok else None
        return None

    return differs


def _telling_statistic(row: Any) -> tuple[str, float, float]:
    """The statistic that shows a numeric difference: the median, unless the segment's and the
    population's medians are equal as people read them (:func:`human_pair`: "648" and "648"
    for 648.1 and 648.3); then the share of non-zero values when the column is mostly zero,
    else the mean."""
    median, population = float(row.median), float(row.population_median)
    if np.isfinite(median) and len(set(human_pair(median, population))) == 2:
        return "median", median, population
    nonzero, population_nonzero = float(row.nonzero_share), float(row.population_nonzero_share)
    if population == 0 and np.isfinite(nonzero) and nonzero != population_nonzero:
        return "non-zero share", nonzero, population_nonzero
    return "mean", float(row.mean), float(row.population_mean)


def _name_segments(
    segments: list[int],
    found: Mapping[int, list[Descriptor]],
    summary: pd.DataFrame,
    max_words: int,
    material: Mapping[int, bool] | None = None,
    *,
    differs: Callable[[int, int, Descriptor], float | None] | None = None,
) -> dict[int, str]:
    """Names from the descriptors; "average" for a segment with no material difference, "no
    distinct trait" for one whose differences are those of a slice of one continuous group.

    Segments that would share a name get one more descriptor each: one that is not among the
    other segments' descriptors and, by ``differs(s, o, d)`` (see :func:`_pairwise_test`),
    sets the segment apart from each of them; of those, the segment's strongest (without
    ``differs``, the strongest descriptor against everyone)."""
    share = dict(zip(summary["segment"], summary["share"]))
    material = material or {}

    def plain(s: int) -> str:
        return "no distinct trait" if material.get(s, False) else "average"

    def build(
        s: int, avoid: set[str] | None = None, rivals: Sequence[int] = ()
    ) -> list[Descriptor]:
        """Up to ``max_words`` descriptors, one per column stem; with ``avoid``, one more that
        is not among those words and differs from every segment of ``rivals`` (to tell
        look-alike segments apart)."""
        chosen: list[Descriptor] = []
        for d in found[s]:
            if len(chosen) >= max_words:
                break
            if not any(d.stem & c.stem for c in chosen):
                chosen.append(d)
        if avoid is not None:
            extra = []
            for d in found[s]:
                if d.word in avoid or d in chosen or any(d.stem & c.stem for c in chosen):
                    continue
                if differs is None:
                    extra.append((d.strength, d))
                    continue
                # among the descriptors that set it apart from every rival, the segment's own
                # strongest (against everyone): what the segment is, not only what it is not
                if rivals and all(differs(s, o, d) is not None for o in rivals):
                    extra.append((d.strength, d))
            extra.sort(key=lambda a: -a[0])
            chosen += [d for _, d in extra[:1]]
        return chosen

    chosen = {s: build(s) for s in segments}
    names = {s: ", ".join(d.word for d in chosen[s]) or plain(s) for s in segments}
    for name in {n for n in names.values() if list(names.values()).count(n) > 1}:
        group = [s for s in segments if names[s] == name]
        for s in group:
            rivals = [o for o in group if o != s]
            others = {d.word for o in rivals for d in found[o]}
            words = [d.word for d in build(s, avoid=others, rivals=rivals)]
            names[s] = ", ".join(words) or plain(s)
    duplicated = {s for s in segments if list(names.values()).count(names[s]) > 1}
    for s in duplicated:  # no further descriptor tells them apart: their size does
        names[s] = f"{names[s]} ({share[s]:.0%})"
    if -1 in names:  # DBSCAN / HDBSCAN noise is not a segment
        names[-1] = "unassigned (noise)"
    counts: dict[str, int] = {}
    for s in segments:
        counts[names[s]] = counts.get(names[s], 0) + 1
    for s in segments:
        if counts[names[s]] > 1:
            names[s] = f"{names[s]} #{s}"
    return names
