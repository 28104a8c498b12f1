"""Customer features and segments for data that lives in Spark.

Needs the ``spark`` extra (``pip install 'deepseg[spark]'``) and Java 17+. Both functions take
and return Spark DataFrames and stay lazy, so they compose with the rest of a Spark job::

    from deepseg.data.spark import predict_spark, spark_customer_features

    customers = spark_customer_features("s3://shop/transactions/*.parquet")
    segments = predict_spark(customers, "bundles/kmeans")  # adds a 'segment' column
    segments.write.parquet("s3://shop/segments/")

The features are the ones of :func:`deepseg.data.transactions.customer_features`, from the same
SQL text; the segments are ``deepseg.load(path).predict`` applied to each Arrow batch of rows on
the executors (the bundle directory must be readable from them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepseg.data.engine import EngineConfig, SparkEngine, as_files, read_sql

#: Columns the feature query adds for the driver's checks; not features.
_TOTALS = ("n_rows", "n_rows_with_id", "n_bad_quantity", "n_bad_price", "n_bad_date")


def spark_customer_features(
    source: str | Path | Sequence[str | Path],
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
    spark: Any = None,
) -> Any:
    """The per-customer feature table of a transaction log, as a lazy Spark DataFrame.

    Unlike :func:`~deepseg.data.transactions.customer_features` (``engine="spark"``), which
    collects the table to pandas and checks it, this leaves the table in Spark: values that do
    not parse become missing instead of raising.

    Args:
        source: CSV / Parquet file(s), a directory of them or a glob, on local disk.
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
        spark: the SparkSession; None uses the active one (or starts a local one).

    Returns:
        A Spark DataFrame with the id column and the feature columns, ordered by id.
    """
    from deepseg.data.engine import Source
    from deepseg.data.transactions import _FIELD_OPTIONS, _reference_us

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
    engine = SparkEngine(EngineConfig(name="spark"), spark=spark)
    src = Source(files=as_files(source))
    available = engine.columns(src)
    missing = [c for c in options.values() if c not in available]
    if missing:
        raise ValueError(f"Transaction log {src.label}: column(s) {missing} not found.")
    engine.stage(src, {field: options[key] for field, key in _FIELD_OPTIONS.items()})
    engine.set_params(
        {"cancel_prefix": str(cancel_prefix), "reference_us": _reference_us(reference_date)},
        {"cancel_prefix": "VARCHAR", "reference_us": "BIGINT"},
    )
    table = engine.query_frame(read_sql("customer_features"))
    table = table.where(table["customer_id"].isNotNull()).drop(*_TOTALS)
    return table.withColumnRenamed("customer_id", id_column)


def predict_spark(frame: Any, path: str | Path, *, column: str = "segment") -> Any:
    """Segments of the rows of a Spark DataFrame, from a saved bundle.

    A pandas function (``mapInPandas``) loads the bundle once per partition and applies
    ``deepseg.load(path).predict`` to each batch: the same rows get the same segments as the
    bundle's own ``predict`` (and ``deepseg-predict``).

    Args:
        frame: Spark DataFrame of the rows the bundle takes: the customer table (the raw columns
            of a table bundle, the features of a transactions bundle) or the feature matrix
            columns of a matrix bundle.
        path: the bundle directory, readable from every executor.
        column: name of the added segment column.

    Returns:
        ``frame`` with an int64 column ``column`` (lazy).
    """
    from pyspark.sql.types import LongType, StructField, StructType

    if column in frame.columns:
        raise ValueError(f"The DataFrame already has a column '{column}'; pass another column=.")
    bundle = str(path)
    schema = StructType([*frame.schema.fields, StructField(column, LongType(), False)])

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from deepseg.bundle import load

        segmenter = load(bundle)
        for batch in batches:
            labels = segmenter.predict(batch) if len(batch) else np.zeros(0, np.int64)
            yield batch.assign(**{column: pd.array(labels, dtype="int64")})

    return frame.mapInPandas(score, schema)
