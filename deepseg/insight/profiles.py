"""Segment profiles and names, from the original (unscaled) columns of a table.

For each segment: size and share; mean and median of every numeric column with the lift over
the population; the top categories of every categorical column with their lift; the most
distinctive text terms (class-based TF-IDF: the segment's texts joined into one document); RFM
quintile scores when recency, frequency and monetary columns are present; and a short name.

Names come from the profile statistics, so they agree with them by construction:

* RFM words are given by rank of the segment medians. Only the segment with the highest median
  monetary value is "high-spend" (and only when it is above the population median), only the
  lowest is "low-spend"; likewise "frequent" / "one-time" (median frequency <= 1) or
  "infrequent", and "lapsed" (highest median recency) / "recent" (lowest).
* Other descriptors are the segment's strongest deviations: "high <column>" / "low <column>"
  when its mean percentile rank in the population is far from one half, ``column=category``
  (or ``column=a/b``) for over-represented categories, and ``'term'`` for a text term the
  segment uses far more often than the population.
* A name holds its RFM words and is filled up to ``max_words`` with the strongest other
  descriptors; names are made unique by adding descriptors (then the segment id).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

#: Column-name patterns used to find the RFM columns when they are not given.
RFM_PATTERNS: dict[str, str] = {
    "recency": r"recency",
    "frequency": r"^(frequency|n_orders|n_invoices|n_purchases|orders)$",
    "monetary": r"monetary|spend|revenue|sales",
}
#: A numeric deviation (|mean percentile rank - 0.5|) below this does not name a segment.
MIN_NUMERIC_DEVIATION = 0.15
#: A category must have at least this share in the segment and this lift to name it.
MIN_CATEGORY_SHARE = 0.3
MIN_CATEGORY_LIFT = 1.5


@dataclass
class SegmentProfiles:
    """Profiles of every segment.

    Attributes:
        summary: one row per segment: ``segment``, ``name``, ``size``, ``share``, the RFM
            scores (``R_score``, ``F_score``, ``M_score``, ``RFM_score``) when present, and
            ``<column>_mean``, ``<column>_median``, ``<column>_lift`` for every numeric column.
        numeric: long table (segment, column, mean, median, population_mean,
            population_median, lift, z, rank_deviation).
        categories: long table (segment, column, category, share, population_share, lift),
            the top categories per segment and column.
        terms: long table (segment, term, score, share, population_share).
        names: {segment id: name}.
        rfm: {"recency" | "frequency" | "monetary": column} of the RFM columns found.
    """

    summary: pd.DataFrame
    numeric: pd.DataFrame
    categories: pd.DataFrame
    terms: pd.DataFrame
    names: dict[int, str]
    rfm: dict[str, str] = field(default_factory=dict)

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
        matches = [c for c in columns if re.search(pattern, c.lower())]
        if matches:
            found[role] = matches[0]
    return found


def _quintile_scores(values: pd.Series, higher_is_better: bool) -> pd.Series:
    """Quintile score 1..5 of every value (5 = best), by percentile rank; NaN stays NaN."""
    pct = values.rank(pct=True, method="average")
    if not higher_is_better:
        pct = 1.0 - pct + 1.0 / max(values.notna().sum(), 1)
    return np.ceil(pct.clip(1e-9, 1.0) * 5).clip(1, 5)


def _humanise(column: str) -> str:
    return column.replace("_", " ")


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
        max_words: descriptors per name (RFM words always count).

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

    num = frame[numeric].apply(pd.to_numeric, errors="coerce").astype(np.float64)
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
    for column in numeric:
        values = num[column]
        pop_mean, pop_median, pop_std = values.mean(), values.median(), values.std()
        for s in segments:
            seg = values[labels == s]
            mean = seg.mean()
            numeric_rows.append(
                {
                    "segment": s,
                    "column": column,
                    "mean": mean,
                    "median": seg.median(),
                    "population_mean": pop_mean,
                    "population_median": pop_median,
                    "lift": mean / pop_mean if pop_mean and np.isfinite(pop_mean) else np.nan,
                    "z": (mean - pop_mean) / pop_std if pop_std and pop_std > 0 else 0.0,
                    "rank_deviation": ranks[column][labels == s].mean() - 0.5,
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
            "lift",
            "z",
            "rank_deviation",
        ],
    )
    for column in numeric:
        part = numeric_table[numeric_table["column"] == column].set_index("segment")
        for stat in ("mean", "median", "lift"):
            summary[f"{column}_{stat}"] = part.loc[segments, stat].to_numpy()

    category_table = _category_profiles(frame, labels, segments, categorical, top_categories)
    term_table = _term_profiles(frame, labels, segments, text, top_terms)
    names = _name_segments(
        segments, numeric_table, category_table, term_table, rfm_cols, max_words
    )
    summary.insert(1, "name", [names[s] for s in segments])
    return SegmentProfiles(
        summary=summary,
        numeric=numeric_table,
        categories=category_table,
        terms=term_table,
        names=names,
        rfm=rfm_cols,
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
        values = frame[column].astype(object).where(frame[column].notna(), "(missing)").astype(str)
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

    docs = frame[columns[0]].astype(object).where(frame[columns[0]].notna(), "").map(str)
    for column in columns[1:]:
        docs = docs + " " + frame[column].astype(object).where(frame[column].notna(), "").map(str)
    vectorizer = CountVectorizer(
        stop_words="english", min_df=2, max_features=20000, token_pattern=r"(?u)\b[a-zA-Z]{3,}\b"
    )
    try:
        counts = vectorizer.fit_transform(docs.tolist()).tocsr()
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


def _rfm_words(
    segments: list[int], numeric: pd.DataFrame, rfm: dict[str, str]
) -> dict[int, list[tuple[str, str]]]:
    """RFM words by rank of segment medians: {segment: [(role, word), ...]}."""
    words: dict[int, list[tuple[str, str]]] = {s: [] for s in segments}
    for role in ("monetary", "frequency", "recency"):
        column = rfm.get(role)
        if column is None:
            continue
        part = numeric[numeric["column"] == column].set_index("segment")
        medians = part["median"].reindex(segments)
        pop_median = float(part["population_median"].iloc[0])
        # ties broken by the mean, so each word goes to exactly one segment
        means = part["mean"].reindex(segments)
        ranked = [s for s in segments if pd.notna(medians[s])]
        if len(ranked) < 2:
            continue
        order = sorted(ranked, key=lambda s: (medians[s], means[s]))
        top, bottom = order[-1], order[0]
        high_word, low_word = {
            "monetary": ("high-spend", "low-spend"),
            "frequency": ("frequent", "one-time" if medians[bottom] <= 1 else "infrequent"),
            "recency": ("lapsed", "recent"),
        }[role]
        if medians[top] > pop_median:
            words[top].append((role, high_word))
        if medians[bottom] < pop_median or (role == "frequency" and medians[bottom] <= 1):
            words[bottom].append((role, low_word))
    return words


def _name_segments(
    segments: list[int],
    numeric: pd.DataFrame,
    categories: pd.DataFrame,
    terms: pd.DataFrame,
    rfm: dict[str, str],
    max_words: int,
) -> dict[int, str]:
    rfm_words = _rfm_words(segments, numeric, rfm)
    rfm_columns = set(rfm.values())
    role_order = {"monetary": 0, "frequency": 1, "recency": 2}
    candidates: dict[int, list[tuple[float, str]]] = {s: [] for s in segments}
    for row in numeric.itertuples():
        if row.column in rfm_columns or not np.isfinite(row.rank_deviation):
            continue
        if abs(row.rank_deviation) >= MIN_NUMERIC_DEVIATION:
            word = ("high " if row.rank_deviation > 0 else "low ") + _humanise(row.column)
            candidates[int(row.segment)].append((abs(row.rank_deviation), word))
    # one descriptor per categorical column: "country=Germany/France" when several qualify
    by_column: dict[tuple[int, str], list[tuple[float, str]]] = {}
    for row in categories.itertuples():
        if row.share >= MIN_CATEGORY_SHARE / 2 and row.lift >= MIN_CATEGORY_LIFT:
            strength = float(row.share - row.population_share)
            by_column.setdefault((int(row.segment), str(row.column)), []).append(
                (strength, str(row.category))
            )
    for (segment, column), found in by_column.items():
        found.sort(key=lambda c: -c[0])
        total = sum(f[0] for f in found)
        if total >= MIN_CATEGORY_SHARE / 2 and (len(found) > 1 or found[0][0] > 0):
            shares = categories[
                (categories["segment"] == segment) & (categories["column"] == column)
            ].set_index("category")["share"]
            if shares.reindex([c for _, c in found]).sum() >= MIN_CATEGORY_SHARE:
                word = f"{column}=" + "/".join(c for _, c in found)
                candidates[segment].append((total, word))
    for row in terms.itertuples():
        strength = float(row.share - row.population_share)
        if strength >= 0.1:
            candidates[int(row.segment)].append((strength, f"'{row.term}'"))

    def build(s: int, n_extra: int) -> str:
        fixed = [w for _, w in sorted(rfm_words[s], key=lambda rw: role_order[rw[0]])]
        extra = [w for _, w in sorted(candidates[s], key=lambda c: -c[0]) if w not in fixed]
        n_fill = max(0, max_words - len(fixed)) + n_extra
        words = fixed + extra[:n_fill]
        return ", ".join(words) if words else "typical"

    names = {s: build(s, 0) for s in segments}
    for n_extra in range(1, 4):
        duplicated = {s for s in segments if list(names.values()).count(names[s]) > 1}
        if not duplicated:
            break
        for s in duplicated:
            names[s] = build(s, n_extra)
    if -1 in names:  # DBSCAN / HDBSCAN noise is not a segment
        names[-1] = "unassigned (noise)"
    counts: dict[str, int] = {}
    for s in segments:
        counts[names[s]] = counts.get(names[s], 0) + 1
    for s in segments:
        if counts[names[s]] > 1:
            names[s] = f"{names[s]} #{s}"
    return names
