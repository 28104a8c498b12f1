"""Column specs: which column of a raw table plays which part, and column checks."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import pandas as pd


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
