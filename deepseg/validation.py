"""Input and parameter validation done as scikit-learn does it, for every deepseg estimator.

Each estimator declares ``_parameter_constraints`` in scikit-learn's vocabulary
(:mod:`sklearn.utils._param_validation`: ``Interval``, ``StrOptions``, types, ``None``) and
checks its input with :func:`fit_input` / :func:`new_input`, which wrap
:func:`sklearn.utils.validation.validate_data`: they set ``n_features_in_`` (and
``feature_names_in_`` for a DataFrame with string column names), and refuse sparse, complex,
empty, one-dimensional and non-finite input with scikit-learn's own messages.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from deepseg import constraints
from deepseg.options import N_CLUSTERS as _N_CLUSTERS
from deepseg.options import RANDOM_STATE as _RANDOM_STATE

__all__ = [
    "N_CLUSTERS",
    "SEED",
    "Integral",
    "Interval",
    "Real",
    "StrOptions",
    "fit_input",
    "new_input",
]


def sklearn_constraints(constraint: Any) -> list[Any]:
    """A declared constraint (:mod:`deepseg.constraints`) in scikit-learn's vocabulary, for
    ``_parameter_constraints``: the same range, scikit-learn's own message.

    >>> seed = constraints.AnyOf((constraints.Interval(int, 0, None), constraints.NONE))
    >>> [str(c) for c in sklearn_constraints(seed)]
    ['an int in the range [0, inf)', 'None']
    """
    if isinstance(constraint, constraints.AnyOf):
        return [c for option in constraint.options for c in sklearn_constraints(option)]
    if isinstance(constraint, constraints.Interval):
        kind = Integral if constraint.kind is int else Real
        return [Interval(kind, constraint.low, constraint.high, closed=constraint.closed)]
    if isinstance(constraint, constraints.Options):
        values = set(constraint.values)
        out: list[Any] = [None] if None in values else []
        if values - {None}:
            out.append(StrOptions(values - {None}))
        return out
    raise TypeError(f"No scikit-learn form for the constraint {constraint!r}")


#: every estimator's ``n_clusters`` (:data:`deepseg.options.N_CLUSTERS`)
N_CLUSTERS = sklearn_constraints(_N_CLUSTERS.constraint)
#: a seed (:data:`deepseg.options.RANDOM_STATE`): a non-negative int, or None for a fresh one
SEED = sklearn_constraints(_RANDOM_STATE.constraint)


#: float64, or float32 kept as it is (a float32 matrix is not copied to float64)
FLOATS = (np.float64, np.float32)


def _checked(estimator: Any, X: Any, reset: bool, dtype: Any, min_samples: int = 1) -> np.ndarray:
    """scikit-learn's ``validate_data`` with deepseg's settings: dense, C-contiguous, floats."""
    return validate_data(
        estimator,
        X,
        reset=reset,
        accept_sparse=False,
        dtype=list(dtype) if isinstance(dtype, tuple) else dtype,
        order="C",
        ensure_min_samples=min_samples,
    )


def fit_input(estimator: Any, X: Any, *, dtype: Any = FLOATS, min_samples: int = 1) -> np.ndarray:
    """``X`` checked for ``fit``: a dense, finite, C-contiguous 2-D float array with at least
    ``min_samples`` rows; sets ``n_features_in_`` (and ``feature_names_in_``)."""
    return _checked(estimator, X, True, dtype, min_samples)


def new_input(estimator: Any, X: Any, *, dtype: Any = FLOATS, fitted: Any = None) -> np.ndarray:
    """``X`` checked for ``predict`` / ``transform`` of a fitted estimator: the same checks,
    and the width (and column names) seen in ``fit``."""
    check_is_fitted(estimator, fitted)
    return _checked(estimator, X, False, dtype)
