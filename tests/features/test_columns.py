"""Reading columns for what they are: codes, dates, constants and identifiers."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from deepseg.features.blocks import CategoricalBlock, NumericBlock
from deepseg.features.columns import ColumnRoles, date_format, infer_roles, numeric_values
from deepseg.features.pipeline import FeaturePipeline
from tests.conftest import require_data


def _table(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    since = pd.Timestamp("2012-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    return pd.DataFrame(
        {
            "customer_number": np.arange(1001, 1001 + n),  # id-like: unique integers
            "row": rng.permutation(n),  # unique and consecutive: an id without the name
            "region": rng.integers(1, 4, n),  # a code 1-3
            "channel": rng.integers(1, 3, n),  # a code 1-2
            "kids": rng.integers(0, 3, n),  # a count: stays numeric
            "income": rng.normal(50_000, 12_000, n).round(0),
            "customer_since": since.strftime("%d-%m-%Y"),  # day first, as in the issue
            "cost_contact": 3,  # constant
            "complained": np.r_[np.ones(2, int), np.zeros(n - 2, int)],  # near-constant
            "plan": rng.choice(["basic", "pro"], n),
        }
    )


def test_a_generated_table_is_read_for_what_it_is(caplog):
    frame = _table()
    with caplog.at_level(logging.INFO):
        roles, ignored = infer_roles(frame, ColumnRoles())
    assert roles.categorical == ["region", "channel", "plan"]
    assert roles.numeric == ["kids", "income", "customer_since"]
    assert ignored == ["customer_number", "row", "cost_contact", "complained"]
    log = caplog.text
    assert "codes, integers with <= 10 values: ['region', 'channel']" in log
    assert "dates (numeric: days since the reference date): ['customer_since']" in log
    assert "constant (dropped): ['cost_contact']" in log
    assert "near-constant" in log and "['complained']" in log
    assert "identifiers, unique per row (dropped): ['customer_number', 'row']" in log
    # overridable: a code declared numeric stays numeric
    roles, _ = infer_roles(frame, ColumnRoles(numeric=["region", "income"]))
    assert roles.numeric == ["region", "income"] and "region" not in roles.categorical


def test_dates_become_days_since_the_configured_reference():
    frame = _table()
    assert date_format(frame["customer_since"]) == "%d-%m-%Y"
    roles = ColumnRoles(numeric=["income", "customer_since"], categorical=["region"])
    pipe = FeaturePipeline(numeric={"reference_date": "2015-01-01", "log1p": False})
    X = pipe.fit_transform(frame, roles)
    block = pipe.blocks_["numeric"]
    assert block.date_formats_ == {"customer_since": "%d-%m-%Y"}
    assert block.reference_date_ == "2015-01-01T00:00:00"
    days = pd.Timestamp("2015-01-01") - pd.to_datetime(frame["customer_since"], dayfirst=True)
    expected = days.dt.days.to_numpy(dtype=float)
    np.testing.assert_allclose(block.medians_[1], np.median(expected))
    col = pipe.feature_names_.index("customer_since")
    assert np.corrcoef(X[:, col], expected)[0, 1] > 0.999
    # the reference date and format travel with the saved state: new rows read the same
    state, arrays = pipe.get_state()
    loaded = FeaturePipeline.from_state(state, arrays)
    np.testing.assert_allclose(loaded.transform(frame.head(5)), X[:5], atol=1e-5)
    # default reference: the latest date of the training data
    default = NumericBlock(["customer_since"]).fit(frame)
    assert (
        pd.Timestamp(default.reference_date_)
        == pd.to_datetime(frame["customer_since"], format="%d-%m-%Y").max()
    )
    assert numeric_values(frame["customer_since"]).min() == 0.0
    with pytest.raises(ValueError, match="'reference_date' of the numeric block"):
        NumericBlock(["customer_since"], reference_date="soon").fit(frame)


def test_code_columns_read_the_same_from_numbers_and_from_text():
    """Training reads a code column as int (float when it has gaps); deepseg-predict reads
    categories as text: both give the same indicators."""
    frame = pd.DataFrame({"region": [1, 2, 3, np.nan, 2.0]})
    block = CategoricalBlock(["region"], min_frequency=1).fit(frame)
    assert block.feature_names_out == ["region=1", "region=2", "region=3", "region=__missing__"]
    as_text = pd.DataFrame({"region": pd.array(["1", "2", "3", None, "2"], dtype="string")})
    np.testing.assert_array_equal(block.transform(as_text), block.transform(frame))


def test_telco_senior_citizen_is_categorical():
    from deepseg.data.table import load_table

    path = require_data("telco_churn", "WA_Fn-UseC_-Telco-Customer-Churn.csv")
    dataset = load_table(path, id_column="customerID", label_column="Churn")
    assert "SeniorCitizen" in dataset.roles.categorical
    assert "SeniorCitizen" not in dataset.roles.numeric
    assert {"tenure", "MonthlyCharges", "TotalCharges"} <= set(dataset.roles.numeric)
