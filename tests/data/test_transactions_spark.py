"""engine=spark in local mode: the same features as DuckDB, and bundle scoring on Spark.

Skipped when pyspark (the ``spark`` extra) or Java is absent. Marked slow: a local Spark session
takes ~10 s to start and the two tests ~40 s together on 2 cores.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepseg.data.transactions import customer_features, load_transactions
from tests.bundle.test_transactions_bundle import _log as synthetic_log
from tests.conftest import require_data
from tests.data.features_check import absolute_value_per_customer, assert_same_features
from tests.data.test_transactions import COLUMNS, SMALL_ROWS

pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("engine=spark needs Java on the PATH", allow_module_level=True)

N_ROWS = 10_000
pytestmark = [
    pytest.mark.slow,
    # pyspark 4.3 warns that it does not fully support pandas 3; these tests check the results
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("deepseg-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def retail_sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """10,000 Online Retail rows (the hand-made edge cases first) as a CSV and a Parquet part."""
    part = require_data("online_retail", "online_retail_2011-11.csv.gz")
    raw = pd.read_csv(part, dtype=str, nrows=N_ROWS - len(SMALL_ROWS))
    edge = pd.DataFrame(SMALL_ROWS, columns=COLUMNS).astype(object)
    log = pd.concat([edge.astype(str).where(edge.notna()), raw], ignore_index=True)
    assert len(log) == N_ROWS
    folder = tmp_path_factory.mktemp("spark_log")
    log.iloc[:6000].to_csv(folder / "a.csv", index=False)
    log.iloc[6000:].to_parquet(folder / "b.parquet", index=False)
    return folder, log


def test_spark_features_equal_duckdb_features(
    spark: object, retail_sample: tuple[Path, pd.DataFrame]
) -> None:
    folder, log = retail_sample
    duck = customer_features(folder)
    sparked = customer_features(folder, engine={"name": "spark"})
    assert len(duck) > 300
    assert_same_features(sparked, duck, monetary_scale=absolute_value_per_customer(log))


def test_spark_scoring_equals_the_bundle_predict(spark: object, tmp_path: Path) -> None:
    from sklearn.cluster import KMeans

    from deepseg.bundle import load, save_bundle
    from deepseg.data.spark import predict_spark, spark_customer_features
    from deepseg.features.pipeline import FeaturePipeline

    path = tmp_path / "log.csv"
    synthetic_log().to_csv(path, index=False)
    dataset = load_transactions(path)
    pipeline = FeaturePipeline(text={"n_components": 3, "min_df": 1})
    X = pipeline.fit_transform(dataset)
    est = KMeans(3, n_init=3, random_state=0).fit(X)
    data_config = {"_target_": "deepseg.data.transactions.load_transactions", "path": str(path)}
    save_bundle(tmp_path / "b", estimator=est, pipeline=pipeline, dataset=dataset, X=X,
                method="kmeans", method_config={}, data_config=data_config)  # fmt: skip
    seg = load(tmp_path / "b")

    customers = spark_customer_features(path, spark=spark)  # the table stays in Spark
    scored = predict_spark(customers.repartition(3), tmp_path / "b").toPandas()
    scored = scored.sort_values("CustomerID").reset_index(drop=True)
    table = customer_features(path)
    assert scored["CustomerID"].tolist() == table["CustomerID"].tolist()
    np.testing.assert_array_equal(scored["segment"].to_numpy(), seg.predict(table))
    np.testing.assert_array_equal(scored["segment"].to_numpy(), est.labels_)
    assert len(set(scored["segment"])) == 3
