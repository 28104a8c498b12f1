"""Transaction logs (e.g. UCI Online Retail) turned into one feature row per customer.

A transaction log has one row per invoice line: invoice number, product, quantity, unit price,
invoice timestamp, customer id and country. :func:`customer_features` (alias
:func:`build_customer_table`) aggregates it into RFM-style behavioural features per customer, on
a query engine (DuckDB in-process by default, Spark on request; see :mod:`deepseg.data.engine`),
so the log may be far larger than memory; :func:`load_transactions` wraps reading and
aggregation into a :class:`~deepseg.data.base.Dataset`.

Conventions:
    * A *cancellation row* is a row whose invoice number starts with ``cancel_prefix`` ("C" in
      the UCI data) or whose quantity is negative. Every other row is a *purchase row*.
    * A *purchase invoice* is a distinct invoice number among a customer's purchase rows, a
      *cancellation invoice* a distinct invoice number among the customer's cancellation rows.
    * Day counts (recency, tenure) are whole elapsed days, the usual RFM convention: a purchase
      at 2011-12-07 15:52 has recency 2 against the reference 2011-12-10 00:00.
    * Hour bands (:data:`HOUR_BANDS`) follow the shape of a retail day: ``morning`` before
      12:00, ``afternoon`` from 12:00 to 15:59 (lunchtime peak), ``evening`` from 16:00 on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepseg.data.base import ColumnRoles, Dataset, closest_match, require_columns
from deepseg.data.engine import (
    SOURCE_FILE,
    DuckDBEngine,
    EngineConfig,
    Source,
    SparkEngine,
    as_files,
    make_engine,
    read_sql,
)
from deepseg.data.table import read_table

logger = logging.getLogger(__name__)

#: Hour bands as (name, first hour, last hour + 1); purchase-invoice shares become the columns
#: ``share_hour_<name>``.
HOUR_BANDS: tuple[tuple[str, int, int], ...] = (
    ("morning", 0, 12),
    ("afternoon", 12, 16),
    ("evening", 16, 24),
)

#: Names of the numeric feature columns produced by :func:`build_customer_table`, in order.
NUMERIC_FEATURES: tuple[str, ...] = (
    "recency",
    "frequency",
    "monetary",
    "avg_basket_value",
    "items_per_invoice",
    "distinct_products",
    "cancellation_rate",
    "tenure_days",
    "mean_days_between_purchases",
    *(f"share_weekday_{d}" for d in range(7)),
    *(f"share_hour_{name}" for name, _, _ in HOUR_BANDS),
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: Words for the feature columns in segment names and reports (``report.labels`` overrides
#: them): "high share of evening orders", not "high share hour evening".
FEATURE_LABELS: dict[str, str] = {
    "avg_basket_value": "average basket value",
    "cancellation_rate": "cancellation rate",
    "tenure_days": "tenure",
    "mean_days_between_purchases": "days between orders",
    **{f"share_weekday_{d}": f"share of {day} orders" for d, day in enumerate(_WEEKDAYS)},
    **{f"share_hour_{name}": f"share of {name} orders" for name, _, _ in HOUR_BANDS},
}
CATEGORICAL_FEATURES: tuple[str, ...] = ("country",)
TEXT_FEATURES: tuple[str, ...] = ("products_text",)


def normalise_ids(ids: pd.Series) -> pd.Series:
    """Customer ids as clean strings: "12347.0" -> "12347", blank -> missing.

    Args:
        ids: raw id column (strings, floats or integers).

    Returns:
        A string Series of the same index; missing or blank ids are missing (NaN).
    """
    out = ids.astype("string").str.strip()
    out = out.str.replace(r"^(-?\d+)\.0*$", r"\1", regex=True)
    return _to_text(out.mask(out == ""))


def _to_text(values: pd.Series) -> pd.Series:
    """``values`` as pandas' default string dtype, with NaN for missing values."""
    text = values.astype("string").to_numpy(dtype=object, na_value=np.nan)
    return pd.Series(text, index=values.index, name=values.name)


def read_transaction_log(
    path: str | Path | Sequence[str | Path],
    *,
    id_column: str = "CustomerID",
    invoice_column: str = "InvoiceNo",
    product_column: str = "StockCode",
) -> pd.DataFrame:
    """Read a transaction log from one or more CSV / Parquet files into memory (pandas).

    For features, pass the path to :func:`customer_features` instead: the engine streams the
    files and never holds the whole log.

    Args:
        path: a CSV (optionally gzip-compressed) or Parquet file; a directory (all its
            ``*.csv``, ``*.csv.gz`` and ``*.parquet`` files, in sorted order); a glob pattern
            such as ``"dir/*.csv.gz"``; or a list of any of these. All files are concatenated.
        id_column: customer id column; read as string and normalised ("12347.0" -> "12347",
            blank -> missing).
        invoice_column: invoice number column, read as string.
        product_column: product code column, read as string.

    Returns:
        The concatenated log with a fresh RangeIndex.

    Raises:
        FileNotFoundError: when a path does not exist, a directory holds no log files or a glob
            pattern matches nothing.
    """
    log = read_table(path, dtype=dict.fromkeys([id_column, invoice_column, product_column], "str"))
    if id_column in log.columns:
        log[id_column] = normalise_ids(log[id_column])
    for column in (invoice_column, product_column):
        if column in log.columns:
            log[column] = _to_text(log[column])
    return log


#: Log fields of :data:`deepseg.data.engine.LOG_FIELDS` -> the keyword naming their column.
_FIELD_OPTIONS: dict[str, str] = {
    "customer_raw": "id_column",
    "invoice": "invoice_column",
    "product": "product_column",
    "description": "description_column",
    "quantity_raw": "quantity_column",
    "price_raw": "price_column",
    "date_raw": "date_column",
    "country": "country_column",
}
_BAD_VALUES = {  # totals column -> (log field, what its values must be)
    "n_bad_quantity": ("quantity_raw", "numbers"),
    "n_bad_price": ("price_raw", "numbers"),
    "n_bad_date": ("date_raw", "parseable ISO 8601 dates (e.g. 2011-12-09 12:50:00)"),
}
_TOTALS = ("n_rows", "n_rows_with_id", *_BAD_VALUES)
_INT_FEATURES = ("frequency", "distinct_products")


def _reference_us(reference_date: str | None) -> int | None:
    if reference_date is None:
        return None
    try:
        reference = pd.Timestamp(reference_date)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"reference_date {reference_date!r} is not a date: {exc}") from exc
    if pd.isna(reference):
        raise ValueError(f"reference_date {reference_date!r} is not a date.")
    if reference.tzinfo is not None:
        reference = reference.tz_localize(None)
    return int(reference.value // 1000)  # nanoseconds -> microseconds since the epoch


def _plain_frame(log: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The used columns of ``log``, timezone-aware dates as their wall-clock time."""
    frame = log[list(dict.fromkeys(columns))]
    aware = [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]
    if aware:
        frame = frame.assign(**{c: frame[c].dt.tz_localize(None) for c in aware})
    return frame


def _first_bad_value(engine: DuckDBEngine | SparkEngine, field: str) -> tuple[str, str | None]:
    """One offending raw value of ``field`` and its file (None for in-memory logs)."""
    target = "DOUBLE" if field != "date_raw" else "TIMESTAMP"
    rows = engine.fetch(
        f"SELECT CAST({field} AS {'STRING' if isinstance(engine, SparkEngine) else 'VARCHAR'}), "
        f"{SOURCE_FILE} FROM deepseg_log "
        f"WHERE {field} IS NOT NULL AND TRY_CAST({field} AS {target}) IS NULL LIMIT 1"
    )
    value, source_file = rows[0] if rows else ("?", None)
    return str(value), (None if source_file is None else str(source_file))


def customer_features(
    source: pd.DataFrame | str | Path | Sequence[str | Path],
    *,
    id_column: str = "CustomerID",
    invoice_column: str = "InvoiceNo",
    product_column: str = "StockCode",
    description_column: str = "Description",
    quantity_column: str = "Quantity",
    date_column: str = "InvoiceDate",
    price_column: str = "UnitPrice",
    country_column: str = "Country",
    reference_date: str | None = None,
    cancel_prefix: str = "C",
    engine: str | Mapping[str, Any] | EngineConfig | None = None,
) -> pd.DataFrame:
    """Aggregate a transaction log into one row of behavioural features per customer.

    The aggregation runs on a query engine (DuckDB in-process by default, Spark with
    ``engine="spark"``), from one SQL text (``deepseg/data/sql/customer_features.sql``), so a
    log larger than memory is read in a stream and spilled to ``engine.temp_directory``.

    Rows without a customer id are dropped (their count is logged at INFO level). Features,
    with purchase / cancellation rows and invoices as defined in the module docstring:

    * ``recency``: whole days elapsed from the last purchase invoice to ``reference_date``.
    * ``frequency``: number of distinct purchase invoices.
    * ``monetary``: sum of quantity * price over all rows, net of cancellations.
    * ``avg_basket_value``: gross purchase value / frequency.
    * ``items_per_invoice``: purchased quantity / frequency.
    * ``distinct_products``: number of distinct products purchased.
    * ``cancellation_rate``: cancellation invoices / (purchase + cancellation invoices).
    * ``tenure_days``: whole days elapsed between the first and the last purchase.
    * ``mean_days_between_purchases``: tenure_days / (frequency - 1), NaN when frequency < 2.
    * ``share_weekday_0`` .. ``share_weekday_6``: share of purchase invoices on Monday .. Sunday.
    * ``share_hour_morning``, ``share_hour_afternoon``, ``share_hour_evening``: share of purchase
      invoices per hour band (see :data:`HOUR_BANDS`).
    * ``country``: the customer's most frequent country over their rows (ties: alphabetical).
    * ``products_text``: the distinct descriptions of purchased products, whitespace runs
      collapsed, lowercased, sorted and joined with spaces ("" when there are none).

    Customers with cancellations only keep a row with frequency 0, cancellation_rate 1.0 and
    NaN for the features that need a purchase. An invoice's date is its earliest row's date.

    Args:
        source: the log: a DataFrame with one row per invoice line, or a CSV (optionally
            gzip-compressed) / Parquet file, a directory of such files, a glob pattern or a
            list of them (see :func:`deepseg.data.table.resolve_paths`).
        id_column: customer id column ("12347.0" and "12347" are one customer).
        invoice_column: invoice number column.
        product_column: product code column.
        description_column: product description column.
        quantity_column: quantity column.
        date_column: invoice timestamp column (timestamps or ISO 8601 strings).
        price_column: unit price column.
        country_column: country column.
        reference_date: date recency is measured to; by default the day after the last invoice
            date in the whole log (rows without a customer id included).
        cancel_prefix: invoice-number prefix marking cancellations.
        engine: ``"duckdb"`` (default) or ``"spark"``, or a mapping of
            :class:`~deepseg.data.engine.EngineConfig` fields (``name``, ``memory_limit``,
            ``threads``, ``temp_directory``, ``master``).

    Returns:
        One row per customer, sorted by id, with a RangeIndex, the id column (named
        ``id_column``, as strings) and the feature columns listed above.

    Raises:
        FileNotFoundError: when a path does not exist or a glob / directory matches no file.
        ValueError: when a column is missing (with a closest-match hint), quantities / prices
            / dates cannot be parsed (naming the column, a value and its file), or the engine's
            memory limit is too small for the query.
    """
    config = EngineConfig.parse(engine)
    options = {
        "id_column": id_column,
        "invoice_column": invoice_column,
        "product_column": product_column,
        "description_column": description_column,
        "quantity_column": quantity_column,
        "date_column": date_column,
        "price_column": price_column,
        "country_column": country_column,
    }
    mapping = {field: options[key] for field, key in _FIELD_OPTIONS.items()}
    reference_us = _reference_us(reference_date)
    if isinstance(source, pd.DataFrame):
        require_columns(source, list(mapping.values()), "Transaction log")
        src = Source(frame=_plain_frame(source, list(mapping.values())))
    else:
        src = Source(files=as_files(source))

    start = time.perf_counter()
    runner = make_engine(config)
    try:
        if src.files is not None:
            available = runner.columns(src)
            missing = [c for c in mapping.values() if c not in available]
            if missing:
                key = next(k for k, v in options.items() if v == missing[0])
                raise ValueError(
                    f"Transaction log {src.label}: column '{missing[0]}' (data.{key}) not "
                    f"found.{closest_match(missing[0], available)} Available columns: "
                    f"{available[:30]}"
                )
            logger.info("Reading the transaction log %s on %s", src.label, config.name)
        runner.stage(src, mapping)
        runner.set_params(
            {"cancel_prefix": str(cancel_prefix), "reference_us": reference_us},
            {"cancel_prefix": "VARCHAR", "reference_us": "BIGINT"},
        )
        table = runner.query(read_sql("customer_features"), "customer features")
        first = table.iloc[0] if len(table) else {}
        totals = {k: int(first[k]) if k in first and pd.notna(first[k]) else 0 for k in _TOTALS}
        for key, (field, expected) in _BAD_VALUES.items():
            if totals[key]:
                column = mapping[field]
                value, source_file = _first_bad_value(runner, field)
                where = ""
                if source_file is not None:
                    row = None
                    if isinstance(runner, DuckDBEngine):
                        cast = "TIMESTAMP" if field == "date_raw" else "DOUBLE"
                        row = runner.first_bad_row(Path(source_file), column, cast)
                    where = f" in '{source_file}'" + (f", data row {row}" if row else "")
                raise ValueError(
                    f"Column '{column}' must hold {expected}; {totals[key]} value(s) do not, "
                    f"e.g. {value!r}{where}."
                )
    finally:
        runner.close()

    if src.files is not None and totals["n_rows"] == 0:
        raise ValueError(f"Transaction log {src.label} is empty: it has no rows.")
    logger.info(
        "Dropped %d of %d transaction rows without a customer id (column '%s').",
        totals["n_rows"] - totals["n_rows_with_id"],
        totals["n_rows"],
        id_column,
    )
    table = table.loc[table["customer_id"].notna()].drop(columns=list(_TOTALS))
    # the engines may hand the ordered rows back in batches out of order: order by id here
    table = table.sort_values("customer_id", kind="stable")
    table = table.rename(columns={"customer_id": id_column}).reset_index(drop=True)
    logger.info(
        "Built %d customers from %d transaction rows in %.1f s (engine %s)",
        len(table),
        totals["n_rows"],
        time.perf_counter() - start,
        config.name,
    )
    return _typed(table, id_column)


def _typed(table: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """The engine's result with fixed dtypes: int64 counts, float64 (NaN) features, and text
    (id, country, products_text) as pandas' string dtype with NaN for missing values."""
    text = pd.StringDtype("pyarrow", na_value=np.nan)
    out: dict[str, Any] = {id_column: table[id_column].astype(text)}
    for name in NUMERIC_FEATURES:
        values = table[name]
        if name in _INT_FEATURES:
            out[name] = values.to_numpy(dtype=np.int64)
        else:
            out[name] = values.to_numpy(dtype=float, na_value=np.nan)
    for name in (*CATEGORICAL_FEATURES, *TEXT_FEATURES):
        out[name] = table[name].astype(text)
    return pd.DataFrame(out)


def build_customer_table(
    log: pd.DataFrame | str | Path | Sequence[str | Path],
    *,
    id_column: str = "CustomerID",
    invoice_column: str = "InvoiceNo",
    product_column: str = "StockCode",
    description_column: str = "Description",
    quantity_column: str = "Quantity",
    date_column: str = "InvoiceDate",
    price_column: str = "UnitPrice",
    country_column: str = "Country",
    reference_date: str | None = None,
    cancel_prefix: str = "C",
    engine: str | Mapping[str, Any] | EngineConfig | None = None,
) -> pd.DataFrame:
    """One row of features per customer from a transaction log (see :func:`customer_features`).

    Args:
        log: the log as a DataFrame (one row per invoice line), or its file(s).
        id_column: customer id column.
        invoice_column: invoice number column.
        product_column: product code column.
        description_column: product description column.
        quantity_column: quantity column.
        date_column: invoice timestamp column.
        price_column: unit price column.
        country_column: country column.
        reference_date: date recency is measured to (default: day after the last invoice).
        cancel_prefix: invoice-number prefix marking cancellations.
        engine: the query engine (default DuckDB).

    Returns:
        One row per customer, sorted by id (see :func:`customer_features`).
    """
    return customer_features(
        log,
        id_column=id_column,
        invoice_column=invoice_column,
        product_column=product_column,
        description_column=description_column,
        quantity_column=quantity_column,
        date_column=date_column,
        price_column=price_column,
        country_column=country_column,
        reference_date=reference_date,
        cancel_prefix=cancel_prefix,
        engine=engine,
    )


def load_transactions(
    path: str | Path | Sequence[str | Path],
    *,
    name: str = "transactions",
    id_column: str = "CustomerID",
    invoice_column: str = "InvoiceNo",
    product_column: str = "StockCode",
    description_column: str = "Description",
    quantity_column: str = "Quantity",
    date_column: str = "InvoiceDate",
    price_column: str = "UnitPrice",
    country_column: str = "Country",
    reference_date: str | None = None,
    cancel_prefix: str = "C",
    n_clusters: int | None = None,
    engine: str | Mapping[str, Any] | EngineConfig | None = None,
) -> Dataset:
    """Read a transaction log and return its per-customer feature table as a Dataset.

    Args:
        path: file, directory, glob pattern or list of them (see :func:`read_transaction_log`).
        name: dataset name.
        id_column: customer id column.
        invoice_column: invoice number column.
        product_column: product code column.
        description_column: product description column.
        quantity_column: quantity column.
        date_column: invoice timestamp column.
        price_column: unit price column.
        country_column: country column.
        reference_date: date recency is measured to (default: day after the last invoice).
        cancel_prefix: invoice-number prefix marking cancellations.
        n_clusters: the natural number of segments, if known.
        engine: the query engine that builds the features: ``"duckdb"`` (default) or
            ``"spark"``, or a mapping with ``name``, ``memory_limit``, ``threads``,
            ``temp_directory`` (see :class:`~deepseg.data.engine.EngineConfig`).

    Returns:
        A Dataset whose ``frame`` holds the feature columns of :func:`build_customer_table`
        and whose ``ids`` are the customer ids (strings).

    Raises:
        FileNotFoundError: when ``path`` matches no file.
        ValueError: when a column is missing, values do not parse, the engine's memory limit is
            too small, or the log has no rows with a customer id.
    """
    table = customer_features(
        path,
        id_column=id_column,
        invoice_column=invoice_column,
        product_column=product_column,
        description_column=description_column,
        quantity_column=quantity_column,
        date_column=date_column,
        price_column=price_column,
        country_column=country_column,
        reference_date=reference_date,
        cancel_prefix=cancel_prefix,
        engine=engine,
    )
    if table.empty:
        raise ValueError(
            f"Customer table from '{path}' is empty: no row has a customer id in column "
            f"'{id_column}'."
        )
    roles = ColumnRoles(
        id=id_column,
        numeric=list(NUMERIC_FEATURES),
        categorical=list(CATEGORICAL_FEATURES),
        text=list(TEXT_FEATURES),
    )
    frame = table[roles.feature_columns()].reset_index(drop=True)
    return Dataset(
        name=name,
        ids=table[id_column].to_numpy(dtype=str),
        frame=frame,
        labels=None,
        roles=roles,
        n_clusters=n_clusters,
    )
