"""Estimator parameters declared as dataclass fields, checked in scikit-learn's wording.

An estimator declares each constructor parameter once, as a dataclass field whose metadata holds
its constraint (:func:`param`, in the vocabulary of :mod:`deepseg.constraints`, re-exported
here); :func:`validate` checks every field of an instance and raises a ``ValueError`` such as
"The 'lr' parameter of DEC must be a float in the range (0, inf). Got -1 instead."
"""

from __future__ import annotations

import dataclasses
from typing import Any

from deepseg.constraints import (
    BOOL,
    MAPPING_OR_NONE,
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    NONE,
    PATH_OR_NONE,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    UNIT_FLOAT,
    AnyOf,
    InstanceOf,
    Interval,
    ListOf,
    Options,
    check_value,
)

__all__ = [
    "BOOL",
    "MAPPING_OR_NONE",
    "NONE",
    "NON_NEGATIVE_FLOAT",
    "NON_NEGATIVE_INT",
    "PATH_OR_NONE",
    "POSITIVE_FLOAT",
    "POSITIVE_INT",
    "UNIT_FLOAT",
    "AnyOf",
    "InstanceOf",
    "Interval",
    "ListOf",
    "Options",
    "check_value",
    "param",
    "validate",
]


def param(default: Any, constraint: Any) -> Any:
    """A keyword-only dataclass field with its constraint in the metadata."""
    return dataclasses.field(default=default, metadata={"constraint": constraint}, kw_only=True)


def validate(estimator: Any) -> None:
    """Check every declared parameter of a dataclass estimator against its constraint."""
    owner = type(estimator).__name__
    for f in dataclasses.fields(estimator):
        constraint = f.metadata.get("constraint")
        if constraint is not None:
            check_value(owner, f.name, getattr(estimator, f.name), constraint)
