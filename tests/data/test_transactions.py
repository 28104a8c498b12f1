"""Tests for deepseg.data.transactions."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepseg.data.base import Dataset
from deepseg.data.transactions import (
    NUMERIC_FEATURES,
    build_customer_table,
    load_transactions,
    read_transaction_log,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOGGER_NAME = "deepseg.data.transactions"


def _data_dir() -> Path:
    return Path(os.environ.get("DEEPSEG_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))


COLUMNS = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]

# 2011-01-03 is a Monday.
SMALL_ROWS = [
    # Customer 100 (UK): a two-line invoice (Mon 09:30), a one-line invoice (Wed 14:00) and a
    # cancellation (Thu). "Red Mug" / "RED  MUG" are one description after normalisation.
    ("1001", "P1", "Red Mug", 2, "2011-01-03 09:30:00", 3.0, "100.0", "United Kingdom"),
    ("1001", "P2", "Blue Plate", 1, "2011-01-03 09:30:00", 10.0, "100.0", "United Kingdom"),
    ("1005", "P1", "RED  MUG", 4, "2011-01-05 14:00:00", 3.0, "100", "United Kingdom"),
    ("C1006", "P2", "Blue Plate", -1, "2011-01-06 10:00:00", 10.0, "100", "United Kingdom"),
    # Customer 200: two France rows, one Germany row -> France. Sat 17:15 and Mon 12:00.
    ("1002", "P3", "Green Vase", 1, "2011-01-08 17:15:00", 5.0, "200", "France"),
    ("1002", "P4", "Yellow Cup", 3, "2011-01-08 17:15:00", 2.0, "200", "France"),
    ("1004", "P3", "Green Vase", 2, "2011-01-10 12:00:00", 5.0, "200", "Germany"),
    # Customer 300: a cancellation only.
    ("C1007", "P5", "Old Lamp", -2, "2011-01-09 11:00:00", 4.0, "300", "United Kingdom"),
    # Customer 400: one purchase (Tue 11:59, no description) and a negative-quantity line
    # without the "C" prefix, which also counts as a cancellation.
    ("1008", "P6", None, 1, "2011-01-11 11:59:00", 1.5, "400", "United Kingdom"),
    ("1010", "P6", None, -1, "2011-01-11 12:00:00", 1.5, "400", "United Kingdom"),
    # Rows without a customer id: dropped, but the last one sets the default reference date
    # (2011-01-12 -> reference 2011-01-13).
    ("1009", "P1", "Red Mug", 1, "2011-01-12 20:00:00", 3.0, None, "United Kingdom"),
    ("1011", "P2", "Blue Plate", 1, "2011-01-12 08:00:00", 10.0, " ", "United Kingdom"),
]

NAN = math.nan
# Expected features, computed by hand from SMALL_ROWS (reference date 2011-01-13).
EXPECTED = {
    "100": {
        "recency": 7,  # last purchase 2011-01-05 14:00: 7 days 10 h before 2011-01-13
        "frequency": 2,
        "monetary": 6 + 10 + 12 - 10,
        "avg_basket_value": (16 + 12) / 2,
        "items_per_invoice": (2 + 1 + 4) / 2,
        "distinct_products": 2,
        "cancellation_rate": 1 / 3,
        "tenure_days": 2,
        "mean_days_between_purchases": 2 / 1,
        "share_weekday_0": 0.5,
        "share_weekday_2": 0.5,
        "share_hour_morning": 0.5,
        "share_hour_afternoon": 0.5,
        "share_hour_evening": 0.0,
        "country": "United Kingdom",
        "products_text": "blue plate red mug",
    },
    "200": {
        "recency": 2,  # last purchase 2011-01-10 12:00: 2 days 12 h
        "frequency": 2,
        "monetary": 5 + 6 + 10,
        "avg_basket_value": 21 / 2,
        "items_per_invoice": (1 + 3 + 2) / 2,
        "distinct_products": 2,
        "cancellation_rate": 0.0,
        "tenure_days": 1,  # 2011-01-08 17:15 .. 2011-01-10 12:00
        "mean_days_between_purchases": 1.0,
        "share_weekday_0": 0.5,
        "share_weekday_5": 0.5,
        "share_hour_morning": 0.0,
        "share_hour_afternoon": 0.5,
        "share_hour_evening": 0.5,
        "country": "France",
        "products_text": "green vase yellow cup",
    },
    "300": {
        "recency": NAN,
        "frequency": 0,
        "monetary": -8.0,
        "avg_basket_value": NAN,
        "items_per_invoice": NAN,
        "distinct_products": 0,
        "cancellation_rate": 1.0,
        "tenure_days": NAN,
        "mean_days_between_purchases": NAN,
        "share_weekday_0": NAN,
        "share_hour_morning": NAN,
        "country": "United Kingdom",
        "products_text": "",
    },
    "400": {
        "recency": 1,  # last purchase 2011-01-11 11:59: 1 day 12 h
        "frequency": 1,
        "monetary": 0.0,
        "avg_basket_value": 1.5,
        "items_per_invoice": 1.0,
        "distinct_products": 1,
        "cancellation_rate": 0.5,
        "tenure_days": 0,
        "mean_days_between_purchases": NAN,
        "share_weekday_1": 1.0,
        "share_weekday_0": 0.0,
        "share_hour_morning": 1.0,
        "share_hour_afternoon": 0.0,
        "country": "United Kingdom",
        "products_text": "",
    },
}


@pytest.fixture
def small_log() -> pd.DataFrame:
    return pd.DataFrame(SMALL_ROWS, columns=COLUMNS)


def _check_row(table: pd.DataFrame, customer: str, expected: dict[str, object]) -> None:
    row = table.loc[table["CustomerID"] == customer]
    assert len(row) == 1, f"customer {customer} has {len(row)} rows"
    row = row.iloc[0]
    for column, value in expected.items():
        actual = row[column]
        if isinstance(value, str):
            assert actual == value, f"{customer}.{column}: {actual!r} != {value!r}"
        elif math.isnan(value):
            assert pd.isna(actual), f"{customer}.{column}: {actual!r} is not NaN"
        else:
            assert actual == pytest.approx(value), f"{customer}.{column}: {actual} != {value}"


def test_small_log_features(small_log: pd.DataFrame, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        table = build_customer_table(small_log)
    assert table["CustomerID"].tolist() == ["100", "200", "300", "400"]
    assert isinstance(table.index, pd.RangeIndex)
    expected_columns = ["CustomerID", *NUMERIC_FEATURES, "country", "products_text"]
    assert table.columns.tolist() == expected_columns
    for customer, expected in EXPECTED.items():
        _check_row(table, customer, expected)
    shares = table[[f"share_weekday_{d}" for d in range(7)]].iloc[:2].sum(axis=1)
    np.testing.assert_allclose(shares, 1.0)
    assert any("Dropped 2 of 12" in r.getMessage() for r in caplog.records)


def test_explicit_reference_date(small_log: pd.DataFrame) -> None:
    table = build_customer_table(small_log, reference_date="2011-01-20 06:00")
    recency = dict(zip(table["CustomerID"], table["recency"]))
    assert recency["100"] == 14  # 2011-01-05 14:00 .. 2011-01-20 06:00
    assert recency["200"] == 9
    assert recency["400"] == 8
    assert np.isnan(recency["300"])


def test_custom_column_names_and_prefix(small_log: pd.DataFrame) -> None:
    log = small_log.rename(columns={"CustomerID": "cust", "InvoiceNo": "inv"})
    log["inv"] = log["inv"].str.replace("C", "X")
    table = build_customer_table(log, id_column="cust", invoice_column="inv", cancel_prefix="X")
    assert "cust" in table.columns
    _check_row(table.rename(columns={"cust": "CustomerID"}), "100", EXPECTED["100"])


def test_missing_column_names_closest_match(small_log: pd.DataFrame) -> None:
    log = small_log.rename(columns={"CustomerID": "CustomerId"})
    with pytest.raises(ValueError, match="CustomerID") as info:
        build_customer_table(log)
    assert "Did you mean 'CustomerId'?" in str(info.value)


def test_missing_path_raises(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_log.csv"
    with pytest.raises(FileNotFoundError, match=r"no_such_log\.csv"):
        read_transaction_log(missing)
    with pytest.raises(FileNotFoundError, match=r"\*\.csv\.gz"):
        read_transaction_log(str(tmp_path / "*.csv.gz"))
    with pytest.raises(FileNotFoundError, match=r"no_such_log\.csv"):
        load_transactions(missing)


def test_read_formats_and_load(small_log: pd.DataFrame, tmp_path: Path) -> None:
    first, second = small_log.iloc[:6], small_log.iloc[6:]
    parts = tmp_path / "parts"
    parts.mkdir()
    first.to_csv(parts / "a.csv.gz", index=False)
    second.to_parquet(parts / "b.parquet", index=False)
    (parts / "notes.txt").write_text("ignored")

    by_dir = read_transaction_log(parts)  # notes.txt is not a log file: skipped
    assert len(by_dir) == len(small_log)
    assert by_dir.columns.tolist() == COLUMNS
    assert by_dir["CustomerID"].iloc[0] == "100"  # "100.0" normalised
    assert by_dir["CustomerID"].isna().sum() == 2  # missing and blank
    assert by_dir["InvoiceNo"].iloc[0] == "1001"
    by_glob = read_transaction_log(str(parts / "*.csv.gz"))
    pd.testing.assert_frame_equal(by_glob, by_dir.iloc[:6].reset_index(drop=True))

    listed = read_transaction_log([parts / "a.csv.gz", parts / "b.parquet"])
    pd.testing.assert_frame_equal(listed, by_dir)

    dataset = load_transactions(parts, name="small", n_clusters=2)
    assert isinstance(dataset, Dataset)
    assert dataset.name == "small"
    assert dataset.n_clusters == 2
    assert dataset.labels is None
    assert dataset.ids.tolist() == ["100", "200", "300", "400"]
    assert dataset.ids.dtype.kind == "U"
    assert dataset.roles.id == "CustomerID"
    assert dataset.roles.numeric == list(NUMERIC_FEATURES)
    assert dataset.roles.categorical == ["country"]
    assert dataset.roles.text == ["products_text"]
    assert dataset.frame is not None
    assert dataset.frame.columns.tolist() == dataset.roles.feature_columns()
    _check_row(dataset.frame.assign(CustomerID=dataset.ids), "200", EXPECTED["200"])


def test_empty_log_raises(small_log: pd.DataFrame, tmp_path: Path) -> None:
    no_ids = small_log.assign(CustomerID=None)
    no_ids.to_csv(tmp_path / "no_ids.csv", index=False)
    with pytest.raises(ValueError, match="empty"):
        load_transactions(tmp_path / "no_ids.csv")
    small_log.iloc[:0].to_csv(tmp_path / "no_rows.csv", index=False)
    with pytest.raises(ValueError, match="empty"):
        load_transactions(tmp_path / "no_rows.csv")
    assert build_customer_table(no_ids).empty


# --- real data: UCI Online Retail, 13 monthly gzip parts -------------------------------------

RETAIL_DIR = _data_dir() / "online_retail"


@pytest.fixture(scope="module")
def retail_log() -> pd.DataFrame:
    if not RETAIL_DIR.is_dir():
        pytest.skip(f"UCI Online Retail data not found at {RETAIL_DIR} (set DEEPSEG_DATA_DIR)")
    files = sorted(RETAIL_DIR.glob("*.csv.gz"))
    assert len(files) == 13
    return read_transaction_log(RETAIL_DIR)


@pytest.fixture(scope="module")
def retail_table(retail_log: pd.DataFrame) -> pd.DataFrame:
    return build_customer_table(retail_log)


def test_real_log_read(retail_log: pd.DataFrame) -> None:
    assert len(retail_log) == 541_909
    assert retail_log["CustomerID"].isna().sum() == 135_080
    assert retail_log["CustomerID"].nunique() == 4_372


def _customer(table: pd.DataFrame, customer: str) -> pd.Series:
    rows = table.loc[table["CustomerID"] == customer]
    assert len(rows) == 1
    return rows.iloc[0]


def test_real_customer_table(retail_log: pd.DataFrame, retail_table: pd.DataFrame) -> None:
    assert len(retail_table) == 4_372
    assert retail_table["CustomerID"].is_unique
    row = _customer(retail_table, "12347")
    assert row["frequency"] == 7
    assert row["monetary"] == pytest.approx(4310.00, rel=1e-6)
    assert row["cancellation_rate"] == 0.0
    assert row["country"] == "Iceland"
    # Last purchase 2011-12-07 15:52; default reference 2011-12-10 (the day after the last
    # invoice, 2011-12-09): 2 whole days elapsed, the usual RFM convention.
    last = pd.to_datetime(retail_log.loc[retail_log["CustomerID"] == "12347", "InvoiceDate"]).max()
    assert last == pd.Timestamp("2011-12-07 15:52:00")
    assert (pd.Timestamp("2011-12-10") - last).days == 2
    assert row["recency"] == 2
    assert retail_table["recency"].min() == 0  # purchases on the last day, 2011-12-09
    # Customers with only cancellations keep a row.
    only_cancelled = retail_table["frequency"] == 0
    assert only_cancelled.any()
    assert (retail_table.loc[only_cancelled, "cancellation_rate"] == 1.0).all()
    assert retail_table.loc[only_cancelled, "recency"].isna().all()


def test_real_explicit_reference_and_dropped_count(
    retail_log: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        table = build_customer_table(retail_log, reference_date="2011-12-10")
    dropped = [r for r in caplog.records if r.name == LOGGER_NAME and "Dropped" in r.getMessage()]
    assert len(dropped) == 1
    assert dropped[0].args[0] == 135_080
    assert _customer(table, "12347")["recency"] == 2
    assert len(table) == 4_372
