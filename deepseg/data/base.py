"""The one dataset type every loader returns."""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


@dataclass
class ColumnRoles:
    """Which column of a table plays which part.

    Attributes:
        id: name of the customer/row id column, or None (row numbers are used).
        label: name of the ground-truth label column, or None.
        numeric: numeric feature columns.
        categorical: categorical feature columns.
        text: free-text columns.
    """

    id: str | None = None
    label: str | None = None
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def feature_columns(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.text]

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "label": self.label,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "text": list(self.text),
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> ColumnRoles:
        return cls(
            id=d.get("id"),  # type: ignore[arg-type]
            label=d.get("label"),  # type: ignore[arg-type]
            numeric=list(d.get("numeric") or []),  # type: ignore[call-overload]
            categorical=list(d.get("categorical") or []),  # type: ignore[call-overload]
            text=list(d.get("text") or []),  # type: ignore[call-overload]
        )


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
    """

    name: str
    ids: np.ndarray
    frame: pd.DataFrame | None = None
    X: np.ndarray | None = None
    labels: np.ndarray | None = None
    roles: ColumnRoles = field(default_factory=ColumnRoles)
    n_clusters: int | None = None
    feature_names: list[str] | None = None

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
        )


def closest_match(name: str, options: list[str]) -> str:
    """A ' Did you mean ...?' hint for a misspelt name, or '' when nothing is close."""
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    if not match:
        lowered = {o.lower(): o for o in options}
        if name.lower() in lowered:
            match = [lowered[name.lower()]]
    return f" Did you mean '{match[0]}'?" if match else ""


def require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    """Raise a ValueError naming every column of ``columns`` missing from ``frame``."""
    available = [str(c) for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if not missing:
        return
    hints = "".join(closest_match(c, available) for c in missing[:3])
    raise ValueError(
        f"{what}: column(s) {missing} not found.{hints} Available columns: {available[:30]}"
        + (" ..." if len(available) > 30 else "")
    )
