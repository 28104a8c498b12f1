"""The constraint vocabulary of every option and parameter, and its one error message.

A constraint ``accepts`` a value and its ``describe`` says what it expects, in scikit-learn's
words; :func:`check_value` raises "The 'lr' parameter of DEC must be a float in the range (0, inf).
Got -1 instead." The declarations that use it are :mod:`deepseg.options` (the options
the commands and the estimators share) and each estimator's own parameters
(:mod:`deepseg.deep.params`). Nothing of deepseg is imported here.
"""

from __future__ import annotations

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
POSITIVE_INT = Interval(int, 1, None)
NON_NEGATIVE_INT = Interval(int, 0, None)
POSITIVE_FLOAT = Interval(float, 0, None, closed="neither")
NON_NEGATIVE_FLOAT = Interval(float, 0, None)
UNIT_FLOAT = Interval(float, 0, 1, closed="neither")


@dataclass(frozen=True)
class ListOf:
    """A list (or tuple) whose every item ``item`` accepts.

    >>> ListOf(POSITIVE_INT, "a list of positive ints").accepts([8, -1])
    False
    """

    item: Any
    name: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list | tuple) and all(self.item.accepts(v) for v in value)

    def describe(self) -> str:
        return self.name


def check_value(owner: str | None, name: str, value: Any, constraint: Any) -> None:
    """Raise a ValueError in scikit-learn's wording unless ``constraint`` accepts ``value``
    (``owner``: the estimator or function; None for a command's option)."""
    if not constraint.accepts(value):
        of = f" of {owner}" if owner else ""
        raise ValueError(
            f"The '{name}' parameter{of} must be {constraint.describe()}. Got {value!r} instead."
        )
