"""The pandas implementation of the customer features, kept only as the reference for tests.

This is ``deepseg.data.transactions.build_customer_table`` as it was before the features moved
onto a query engine (DuckDB / Spark SQL). The engine's features must equal these: the same
customers, every column within 1e-9 relative, the same product text.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from deepseg.data.base import require_columns
from deepseg.data.transactions import (
    CATEGORICAL_FEATURES,
    HOUR_BANDS,
    NUMERIC_FEATURES,
    TEXT_FEATURES,
    normalise_ids,
)

logger = logging.getLogger("deepseg.data.transactions")


def _parse_dates(values: pd.Series, column: str) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    try:
        return pd.to_datetime(values, format="ISO8601")
    except (ValueError, TypeError):
        pass
    try:
        return pd.to_datetime(values)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"Column '{column}' does not hold parseable dates: {exc}") from exc


def _to_numeric(values: pd.Series, column: str) -> np.ndarray:
    try:
        return pd.to_numeric(values).to_numpy(dtype=float, na_value=np.nan)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"Column '{column}' is not numeric: {exc}") from exc


def _sum_per_customer(codes: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(codes, weights=weights, minlength=n).astype(float)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full(len(numerator), np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _products_text(codes: np.ndarray, descriptions: np.ndarray, n: int) -> np.ndarray:
    """Per customer code, its distinct normalised descriptions, sorted and joined with spaces."""
    desc_codes, uniques = pd.factorize(descriptions, use_na_sentinel=True)
    # Normalise each distinct description once: collapse whitespace, lowercase.
    cleaned = np.array([" ".join(str(d).split()).lower() for d in uniques] + [""], dtype=object)
    pairs = pd.DataFrame({"code": codes, "text": cleaned[desc_codes]})  # -1 (NA) -> ""
    pairs = pairs[pairs["text"] != ""].drop_duplicates().sort_values(["code", "text"])
    texts = np.full(n, "", dtype=object)
    pair_codes = pairs["code"].to_numpy()
    if len(pair_codes):
        starts = np.flatnonzero(np.r_[True, pair_codes[1:] != pair_codes[:-1]])
        for code, group in zip(
            pair_codes[starts], np.split(pairs["text"].to_numpy(dtype=object), starts[1:])
        ):
            texts[code] = " ".join(group)
    return texts


def _empty_table(id_column: str) -> pd.DataFrame:
    columns = [id_column, *NUMERIC_FEATURES, *CATEGORICAL_FEATURES, *TEXT_FEATURES]
    text_columns = {id_column, *CATEGORICAL_FEATURES, *TEXT_FEATURES}
    return pd.DataFrame({c: pd.Series(dtype=str if c in text_columns else float) for c in columns})


def reference_customer_table(
    log: pd.DataFrame,
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
) -> pd.DataFrame:
    """Aggregate a transaction log into one row of behavioural features per customer.

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
    * ``products_text``: the distinct descriptions of purchased products, lowercased, sorted and
      joined with spaces ("" when there are none).

    Customers with cancellations only keep a row with frequency 0, cancellation_rate 1.0 and
    NaN for the features that need a purchase. An invoice's date is its earliest row's date.

    Args:
        log: the transaction log, one row per invoice line.
        id_column: customer id column.
        invoice_column: invoice number column.
        product_column: product code column.
        description_column: product description column.
        quantity_column: quantity column.
        date_column: invoice timestamp column (datetimes or parseable strings).
        price_column: unit price column.
        country_column: country column.
        reference_date: date recency is measured to; by default the day after the last invoice
            date in the whole log (rows without a customer id included).
        cancel_prefix: invoice-number prefix marking cancellations.

    Returns:
        One row per customer, sorted by id, with a RangeIndex, the id column (named
        ``id_column``, as strings) and the feature columns listed above.

    Raises:
        ValueError: when a column is missing (with a closest-match hint), or quantities / prices
            / dates cannot be parsed.
    """
    columns = [
        id_column,
        invoice_column,
        product_column,
        description_column,
        quantity_column,
        date_column,
        price_column,
        country_column,
    ]
    require_columns(log, columns, "Transaction log")

    dates_all = _parse_dates(log[date_column], date_column)
    if reference_date is None:
        last = dates_all.max()
        reference = None if pd.isna(last) else last.normalize() + pd.Timedelta(days=1)
    else:
        try:
            reference = pd.Timestamp(reference_date)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"reference_date {reference_date!r} is not a date: {exc}") from exc
        if reference.tzinfo is not None:
            reference = reference.tz_localize(None)

    ids_all = normalise_ids(log[id_column])
    has_id = ids_all.notna().to_numpy()
    n_dropped = int((~has_id).sum())
    logger.info(
        "Dropped %d of %d transaction rows without a customer id (column '%s').",
        n_dropped,
        len(log),
        id_column,
    )
    if not has_id.any():
        return _empty_table(id_column)

    codes, uniques = pd.factorize(ids_all[has_id], sort=True)
    n = len(uniques)
    invoices = log[invoice_column].astype("string")[has_id].reset_index(drop=True)
    quantity = _to_numeric(log[quantity_column][has_id], quantity_column)
    price = _to_numeric(log[price_column][has_id], price_column)
    dates = dates_all[has_id].reset_index(drop=True)
    value = quantity * price
    is_cancel = invoices.str.startswith(cancel_prefix).fillna(False).to_numpy(dtype=bool)
    is_cancel |= quantity < 0
    is_buy = ~is_cancel

    # Net value over all rows.
    monetary = _sum_per_customer(codes, n, np.nan_to_num(value))

    # Purchase rows: gross value, quantity and distinct products.
    buy_codes = codes[is_buy]
    gross = _sum_per_customer(buy_codes, n, np.nan_to_num(value[is_buy]))
    bought_items = _sum_per_customer(buy_codes, n, np.nan_to_num(quantity[is_buy]))
    products = pd.DataFrame(
        {"code": buy_codes, "product": log[product_column][has_id].to_numpy()[is_buy]}
    )
    products = products.dropna().drop_duplicates()
    distinct_products = np.bincount(products["code"].to_numpy(), minlength=n)

    # Invoices: one row per (customer, invoice), dated by its earliest line.
    lines = pd.DataFrame({"code": codes, "invoice": invoices, "date": dates, "cancel": is_cancel})
    per_invoice = (
        lines.dropna(subset=["invoice"])
        .groupby(["cancel", "code", "invoice"], sort=False, observed=True)["date"]
        .min()
        .reset_index()
    )
    cancel_invoices = per_invoice.loc[per_invoice["cancel"], "code"].to_numpy(dtype=np.int64)
    buy_inv = per_invoice.loc[~per_invoice["cancel"]]
    buy_inv_codes = buy_inv["code"].to_numpy(dtype=np.int64)
    frequency = np.bincount(buy_inv_codes, minlength=n)
    n_cancel = np.bincount(cancel_invoices, minlength=n)

    # First / last purchase dates and the per-invoice weekday / hour shares.
    dated = buy_inv.dropna(subset=["date"])
    dated_codes = dated["code"].to_numpy(dtype=np.int64)
    span = dated.groupby("code")["date"].agg(["min", "max"]).reindex(range(n))
    tenure = (span["max"] - span["min"]).dt.days.to_numpy(dtype=float, na_value=np.nan)
    if reference is None:
        recency = np.full(n, np.nan)
    else:
        recency = (reference - span["max"]).dt.days.to_numpy(dtype=float, na_value=np.nan)
    n_dated = np.bincount(dated_codes, minlength=n).astype(float)
    weekday = dated["date"].dt.day_of_week.to_numpy(dtype=np.int64)
    hour = dated["date"].dt.hour.to_numpy(dtype=np.int64)
    weekday_counts = np.bincount(dated_codes * 7 + weekday, minlength=7 * n).reshape(n, 7)

    features: dict[str, object] = {
        id_column: np.asarray(uniques, dtype=object),
        "recency": recency,
        "frequency": frequency.astype(np.int64),
        "monetary": monetary,
        "avg_basket_value": _safe_divide(gross, frequency),
        "items_per_invoice": _safe_divide(bought_items, frequency),
        "distinct_products": distinct_products.astype(np.int64),
        "cancellation_rate": _safe_divide(n_cancel.astype(float), frequency + n_cancel),
        "tenure_days": tenure,
        "mean_days_between_purchases": _safe_divide(tenure, frequency - 1.0),
    }
    for day in range(7):
        features[f"share_weekday_{day}"] = _safe_divide(
            weekday_counts[:, day].astype(float), n_dated
        )
    for name, start, stop in HOUR_BANDS:
        in_band = (hour >= start) & (hour < stop)
        features[f"share_hour_{name}"] = _safe_divide(
            _sum_per_customer(dated_codes[in_band], n), n_dated
        )

    # Most frequent country over all of the customer's rows; ties broken alphabetically.
    countries = pd.DataFrame({"code": codes, "country": log[country_column][has_id].to_numpy()})
    country_counts = countries.dropna().value_counts().rename("count").reset_index()
    top = country_counts.sort_values(
        ["code", "count", "country"], ascending=[True, False, True]
    ).drop_duplicates("code")
    country = np.full(n, np.nan, dtype=object)
    country[top["code"].to_numpy()] = top["country"].to_numpy(dtype=object)
    features["country"] = country

    features["products_text"] = _products_text(
        buy_codes, log[description_column][has_id].to_numpy()[is_buy], n
    )

    return pd.DataFrame(features)
