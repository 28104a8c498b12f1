"""Declarative parameter constraints, checked in scikit-learn's wording.

An estimator declares each constructor parameter once, as a dataclass field whose metadata holds
its constraint (:func:`param`); :func:`validate` checks every field of an instance and raises a
``ValueError`` such as "The 'n_clusters' parameter of DEC must be an int in the range [2, inf).
Got 1 instead."
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A number in a range. ``kind`` is ``int`` (integers only) or ``float`` (any real).

    >>> Interval(int, 1, None).describe()
    'an int in the range [1, inf)'
    >>> Interval(float, 0, 1, closed="left").accepts(1.0)
    False
    """

    kind: type
    low: float | None
    high: float | None
    closed: str = "left"  # left | right | both | neither

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int:
            if not isinstance(value, int | np.integer):
                return False
        elif not isinstance(value, numbers.Real) or not np.isfinite(float(value)):
            return False
        low_ok = (
            self.low is None
            or value > self.low
            or (value == self.low and self.closed in ("left", "both"))
        )
        high_ok = (
            self.high is None
            or value < self.high
            or (value == self.high and self.closed in ("right", "both"))
        )
        return bool(low_ok and high_ok)

    def describe(self) -> str:
        left = "[" if self.closed in ("left", "both") and self.low is not None else "("
        right = "]" if self.closed in ("right", "both") and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        name = "an int" if self.kind is int else "a float"
        return f"{name} in the range {left}{low}, {high}{right}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values.

    >>> Options(("sgd", "adam")).describe()
    "one of ['sgd', 'adam']"
    """

    values: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str | bool | int | float | type(None)) and value in self.values

    def describe(self) -> str:
        if self.values == (None,):
            return "None"
        return f"one of {list(self.values)}"


@dataclass(frozen=True)
class InstanceOf:
    """An instance of one of ``types`` (e.g. a mapping of options, a path)."""

    types: tuple[type, ...]
    name: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class AnyOf:
    """Any of several constraints, e.g. None or an int."""

    options: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return any(c.accepts(value) for c in self.options)

    def describe(self) -> str:
        return " or ".join(c.describe() for c in self.options)


NONE = Options((None,))
BOOL = InstanceOf((bool, np.bool_), "a bool")
MAPPING_OR_NONE = AnyOf((InstanceOf((Mapping,), "a mapping of options"), NONE))
PATH_OR_NONE = AnyOf((InstanceOf((str,), "a path (str)"), NONE))
SEED = AnyOf((Interval(int, 0, None), NONE))
POSITIVE_INT = Interval(int, 1, None)
NON_NEGATIVE_INT = Interval(int, 0, None)
POSITIVE_FLOAT = Interval(float, 0, None, closed="neither")
NON_NEGATIVE_FLOAT = Interval(float, 0, None)
UNIT_FLOAT = Interval(float, 0, 1, closed="neither")


def param(default: Any, constraint: Any) -> Any:
    """A keyword-only dataclass field with its constraint in the metadata."""
    return dataclasses.field(default=default, metadata={"constraint": constraint}, kw_only=True)


def check_value(owner: str, name: str, value: Any, constraint: Any) -> None:
    """Raise a ValueError in scikit-learn's wording unless ``constraint`` accepts ``value``."""
    if not constraint.accepts(value):
        raise ValueError(
            f"The '{name}' parameter of {owner} must be {constraint.describe()}. "
            f"Got {value!r} instead."
        )


def validate(estimator: Any) -> None:
    """Check every declared parameter of a dataclass estimator against its constraint."""
    owner = type(estimator).__name__
    for f in dataclasses.fields(estimator):
        constraint = f.metadata.get("constraint")
        if constraint is not None:
            check_value(owner, f.name, getattr(estimator, f.name), constraint)
