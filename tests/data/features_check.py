"""Comparing two customer-feature tables: same customers, columns within 1e-9 relative."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepseg.data.transactions import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    TEXT_FEATURES,
    normalise_ids,
)

RTOL = 1e-9


def absolute_value_per_customer(log: pd.DataFrame, id_column: str = "CustomerID") -> pd.Series:
    """Sum of |quantity * price| per customer: the magnitude a net sum's rounding scales with.

    ``monetary`` nets purchases against cancellations; a customer whose cancellations undo their
    purchases has a true value of 0, and two summation orders leave different ~1e-13 residues.
    Relative to the terms summed (the condition of a sum), those residues are ~1e-16.
    """
    ids = normalise_ids(log[id_column])
    value = (pd.to_numeric(log["Quantity"]) * pd.to_numeric(log["UnitPrice"])).abs()
    return value.groupby(ids.to_numpy()).sum()


def assert_same_features(
    actual: pd.DataFrame,
    expected: pd.DataFrame,
    id_column: str = "CustomerID",
    monetary_scale: pd.Series | None = None,
) -> None:
    """Raise AssertionError unless the tables hold the same customers and features.

    Args:
        actual: table under test.
        expected: reference table.
        id_column: the customer id column of both.
        monetary_scale: per customer id, the scale ``monetary`` is compared relative to (at
            least the values themselves); None compares it like the other columns.
    """
    assert actual.columns.tolist() == expected.columns.tolist()
    assert actual[id_column].tolist() == expected[id_column].tolist(), "customers differ"
    assert isinstance(actual.index, pd.RangeIndex)
    for column in NUMERIC_FEATURES:
        a = actual[column].to_numpy(dtype=float)
        b = expected[column].to_numpy(dtype=float)
        assert actual[column].dtype == expected[column].dtype, column
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{column}: NaNs differ")
        scale = np.maximum(np.abs(a), np.abs(b))
        if column == "monetary" and monetary_scale is not None:
            scale = np.maximum(scale, monetary_scale.reindex(expected[id_column]).to_numpy())
        ok = np.isnan(b) | (np.abs(a - b) <= RTOL * scale)
        worst = np.flatnonzero(~ok)
        assert not worst.size, (
            f"{column}: {worst.size} customers differ beyond {RTOL} relative, e.g. "
            f"{expected[id_column].iloc[worst[0]]}: {a[worst[0]]!r} != {b[worst[0]]!r}"
        )
    for column in (*CATEGORICAL_FEATURES, *TEXT_FEATURES):
        a = actual[column].fillna("<NA>").tolist()
        b = expected[column].fillna("<NA>").tolist()
        differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        assert not differ, (
            f"{column}: {len(differ)} customers differ, e.g. "
            f"{expected[id_column].iloc[differ[0]]}: {a[differ[0]]!r} != {b[differ[0]]!r}"
        )
