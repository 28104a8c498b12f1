"""The one dataset type every loader returns."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from deepseg.features.columns import ColumnRoles, closest_match, require_columns

__all__ = ["ColumnRoles", "Dataset", "closest_match", "require_columns"]

logger = logging.getLogger(__name__)


@dataclass
class Dataset:
    """A dataset: either a table with column roles, or a ready numeric matrix.

    Exactly one of ``frame`` and ``X`` is set. ``frame`` holds the feature columns named in
    ``roles`` (the label column is removed and kept in ``labels``). ``X`` is used for data that is
    already a matrix (images), of shape (n_samples, n_features).

    Attributes:
        name: dataset name used in results.
        frame: table of raw features, or None.
        X: array of shape (n_samples, n_features), or None.
        labels: ground-truth labels of shape (n_samples,), or None. Only used for scoring.
        ids: row identifiers of shape (n_samples,).
        roles: column roles of ``frame`` (for ``X`` data all roles are empty).
        n_clusters: the dataset's natural number of segments, if known.
        feature_names: names of the columns of ``X``.
        source: the file(s) it was read from, when a loader knows them (report titles).
    """

    name: str
    ids: np.ndarray
    frame: pd.DataFrame | None = None
    X: np.ndarray | None = None
    labels: np.ndarray | None = None
    roles: ColumnRoles = field(default_factory=ColumnRoles)
    n_clusters: int | None = None
    feature_names: list[str] | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if (self.frame is None) == (self.X is None):
            raise ValueError("A Dataset needs exactly one of 'frame' and 'X'.")
        n = len(self)
        if len(self.ids) != n:
            raise ValueError(f"Dataset '{self.name}': {len(self.ids)} ids for {n} rows.")
        if self.labels is not None and len(self.labels) != n:
            raise ValueError(f"Dataset '{self.name}': {len(self.labels)} labels for {n} rows.")
        if n == 0:
            raise ValueError(f"Dataset '{self.name}' is empty: it has no rows.")

    def __len__(self) -> int:
        if self.frame is not None:
            return len(self.frame)
        assert self.X is not None
        return int(self.X.shape[0])

    @property
    def is_matrix(self) -> bool:
        return self.X is not None

    def subset(self, index: np.ndarray) -> Dataset:
        """Rows ``index`` of this dataset, as a new Dataset."""
        index = np.asarray(index)
        return Dataset(
            name=self.name,
            ids=self.ids[index],
            frame=None if self.frame is None else self.frame.iloc[index].reset_index(drop=True),
            X=None if self.X is None else self.X[index],
            labels=None if self.labels is None else self.labels[index],
            roles=self.roles,
            n_clusters=self.n_clusters,
            feature_names=self.feature_names,
            source=self.source,
        )
