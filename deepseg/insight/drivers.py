"""Which features separate the segments: a surrogate decision tree and permutation importance.

The surrogate is trained to predict the segmentation (not ground truth) from readable columns:
the original numeric values (median-imputed) and one indicator per frequent category, so that
its rules read like "monetary > 1520.5" and "country=Germany > 0.5". Text has no raw numeric form:
the text block of the feature matrix is used, each component named by its top terms. Fidelity is
the accuracy of the tree against the segmentation on held-out rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, export_text

from deepseg.features.columns import numeric_values

logger = logging.getLogger(__name__)


@dataclass
class Drivers:
    """A surrogate tree of the segmentation and the permutation importance of its inputs.

    Attributes:
        fidelity: accuracy of the tree against the segmentation on the held-out rows.
        train_fidelity: the same on the rows it was fitted on.
        max_depth: depth limit of the tree.
        rules: the tree as indented text rules (``export_text``).
        importance: one row per input column (``feature``, ``importance_mean``,
            ``importance_std``), most important first.
        tree: the fitted DecisionTreeClassifier.
        feature_names: names of the tree's input columns.
    """

    fidelity: float
    train_fidelity: float
    max_depth: int
    rules: str
    importance: pd.DataFrame
    tree: DecisionTreeClassifier
    feature_names: list[str]


def readable_matrix(
    frame: pd.DataFrame,
    *,
    numeric: list[str] | None = None,
    categorical: list[str] | None = None,
    text_matrix: np.ndarray | None = None,
    text_names: list[str] | None = None,
    max_categories: int = 10,
    reference_date: str | None = None,
) -> tuple[np.ndarray, list[str]]:
    """The raw columns as a readable float matrix and its column names.

    Numeric columns keep their units (missing values become the median); each categorical
    column gives indicators ``column=category`` for its ``max_categories`` most frequent
    categories. Free text has no raw numeric form, so the text block of the feature matrix is
    appended as it is (``text_matrix``), named by ``text_names`` (see
    :func:`text_component_names`). Date columns count the days since ``reference_date``
    (default: their latest date).
    """
    parts: list[np.ndarray] = []
    names: list[str] = []
    for column in numeric or []:
        values = numeric_values(frame[column], reference_date)
        median = values.median()
        parts.append(values.fillna(0.0 if pd.isna(median) else median).to_numpy()[:, None])
        names.append(column)
    for column in categorical or []:
        values = frame[column].astype(object).where(frame[column].notna(), "(missing)").astype(str)
        for category in values.value_counts().index[:max_categories]:
            parts.append((values == category).to_numpy(dtype=np.float64)[:, None])
            names.append(f"{column}={category}")
    if text_matrix is not None and text_matrix.shape[1] > 0:
        text_matrix = np.asarray(text_matrix, dtype=np.float64)
        if text_names is None:
            text_names = [f"text_{j}" for j in range(text_matrix.shape[1])]
        if len(text_names) != text_matrix.shape[1]:
            raise ValueError(
                f"{len(text_names)} text names for {text_matrix.shape[1]} text columns."
            )
        parts.append(text_matrix)
        names += list(text_names)
    if not parts:
        raise ValueError(
            "The surrogate tree needs at least one numeric, categorical or text column."
        )
    return np.hstack(parts), names


def term_indicators(
    frame: pd.DataFrame, columns: list[str], terms: list[str]
) -> tuple[np.ndarray, list[str]]:
    """Whether each row's text holds each term: readable text columns for any text features.

    Sentence embeddings have no readable axes; the segments' distinctive terms (the profiles'
    ``terms`` table) stand in for them in the surrogate tree, whatever the feature space.

    Args:
        frame: the raw table.
        columns: its text columns (joined with a space).
        terms: the terms, lower-case words as the profiles find them.

    Returns:
        (matrix of shape (n_samples, len(terms)) of 0/1 floats, names ``text has 'term'``).

    Example:
        >>> frame = pd.DataFrame({"t": ["Red shoes", "blue hat", None]})
        >>> term_indicators(frame, ["t"], ["shoes", "hat"])[0].tolist()
        [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    """
    terms = list(dict.fromkeys(str(t) for t in terms))
    if not columns or not terms:
        return np.zeros((len(frame), 0)), []
    from sklearn.feature_extraction.text import CountVectorizer

    docs = frame[columns[0]].astype(object).where(frame[columns[0]].notna(), "").map(str)
    for column in columns[1:]:
        docs = docs + " " + frame[column].astype(object).where(frame[column].notna(), "").map(str)
    vectorizer = CountVectorizer(
        vocabulary={t: j for j, t in enumerate(terms)},
        token_pattern=r"(?u)\b[a-zA-Z]{3,}\b",
        binary=True,
    )
    matrix = vectorizer.transform(docs.tolist()).toarray().astype(np.float64)
    return matrix, [f"text has '{t}'" for t in terms]


def text_component_names(pipeline: Any, n_terms: int = 3) -> list[str]:
    """Readable names of a fitted pipeline's text columns: ``text[garden/pot/seed]``.

    For TF-IDF + SVD each component is named by its terms of largest positive weight; other
    text encoders (sentence embeddings) keep the pipeline's own column names.
    """
    block = getattr(pipeline, "blocks_", {}).get("text")
    if block is None:
        return []
    start, stop = pipeline.block_slices_["text"]
    names = list(pipeline.feature_names_[start:stop])
    components = getattr(block, "components_", None)
    vocabulary = getattr(block, "vocabulary_", None)
    if components is None or not vocabulary or components.shape[0] != len(names):
        return names
    terms = np.empty(len(vocabulary), dtype=object)
    for term, j in vocabulary.items():
        terms[j] = term
    out = []
    for row in components:
        top = np.argsort(-row)[:n_terms]
        out.append("text[" + "/".join(str(terms[j]) for j in top) + "]")
    # components are distinct, but their top terms may coincide
    seen: dict[str, int] = {}
    for i, name in enumerate(out):
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            out[i] = f"{name}#{seen[name]}"
    return out


def _permutation_importance(
    tree: DecisionTreeClassifier,
    X: np.ndarray,
    y: np.ndarray,
    n_repeats: int,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Drop in the tree's accuracy on (X, y) when one column is shuffled: mean and s.d. over
    ``n_repeats`` shuffles per column.

    Only the columns the tree splits on are shuffled: shuffling any other column leaves every
    prediction unchanged, so its importance is exactly 0 (a wide matrix costs no more than a
    narrow one).
    """
    rng = np.random.default_rng(random_state)
    baseline = float(np.mean(tree.predict(X) == y))
    mean = np.zeros(X.shape[1])
    std = np.zeros(X.shape[1])
    used = np.unique(tree.tree_.feature[tree.tree_.feature >= 0])
    for j in used:
        drops = np.empty(n_repeats)
        Xp = X.copy()
        for r in range(n_repeats):
            Xp[:, j] = X[rng.permutation(X.shape[0]), j]
            drops[r] = baseline - float(np.mean(tree.predict(Xp) == y))
        mean[j], std[j] = drops.mean(), drops.std()
    return mean, std


def surrogate_drivers(
    X: np.ndarray,
    labels: np.ndarray,
    feature_names: list[str],
    *,
    max_depth: int = 4,
    test_size: float = 0.3,
    n_repeats: int = 5,
    random_state: int = 0,
    class_names: Mapping[int, str] | None = None,
) -> Drivers:
    """Fit a shallow tree that predicts ``labels`` from ``X`` and measure its fidelity.

    Args:
        X: array of shape (n_samples, n_features), readable columns (see
            :func:`readable_matrix`).
        labels: segment of each row, shape (n_samples,).
        feature_names: names of the columns of ``X``.
        max_depth: depth limit of the tree (>= 1).
        test_size: share of rows held out to measure fidelity and permutation importance.
        n_repeats: permutations per column.
        random_state: seed of the split, the tree and the permutations.
        class_names: {segment: name} shown in the rules instead of the segment ids.

    Returns:
        The :class:`Drivers`.
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    if X.ndim != 2 or X.shape[0] != labels.shape[0]:
        raise ValueError(
            f"X must have shape (n_samples, n_features) with n_samples = len(labels) = "
            f"{labels.shape[0]}; got {X.shape}."
        )
    if len(feature_names) != X.shape[1]:
        raise ValueError(f"{len(feature_names)} feature names for {X.shape[1]} columns.")
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
        raise ValueError(f"The 'max_depth' parameter must be an int >= 1. Got {max_depth!r}.")
    counts = np.unique(labels, return_counts=True)[1]
    stratify = labels if counts.min() >= 2 else None
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, labels, test_size=test_size, random_state=random_state, stratify=stratify
    )
    tree = DecisionTreeClassifier(
        max_depth=max_depth,
        min_samples_leaf=max(5, int(0.005 * len(y_tr))),
        random_state=random_state,
    ).fit(X_tr, y_tr)
    fidelity = float(tree.score(X_te, y_te))
    train_fidelity = float(tree.score(X_tr, y_tr))
    mean, std = _permutation_importance(tree, X_te, y_te, n_repeats, random_state)
    importance = (
        pd.DataFrame({"feature": feature_names, "importance_mean": mean, "importance_std": std})
        .sort_values("importance_mean", ascending=False)
        .reset_index(drop=True)
    )
    names = None
    if class_names is not None:
        names = [f"{c}: {class_names.get(int(c), c)}" for c in tree.classes_]
    rules = export_text(tree, feature_names=list(feature_names), class_names=names, decimals=2)
    logger.info("Surrogate tree (depth <= %d): fidelity %.3f", max_depth, fidelity)
    return Drivers(
        fidelity=fidelity,
        train_fidelity=train_fidelity,
        max_depth=max_depth,
        rules=rules,
        importance=importance,
        tree=tree,
        feature_names=list(feature_names),
    )
