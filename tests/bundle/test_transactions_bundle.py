"""A bundle trained from a transaction log takes a raw log and aggregates it the same way."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from deepseg.bundle import load, save_bundle
from deepseg.data.transactions import load_transactions, read_transaction_log
from deepseg.features.pipeline import FeaturePipeline
from deepseg.tasks.predict import run_predict

WORDS = ["red mug", "blue mug", "tea towel", "paper lantern", "garden gnome", "candle set"]


def _log(n_customers: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_customers):
        heavy = c % 3 == 0
        for i in range(int(rng.integers(2, 12 if heavy else 5))):
            invoice = f"{'C' if rng.random() < 0.05 else ''}{c:03d}{i:02d}"
            day = pd.Timestamp("2011-01-01") + pd.Timedelta(hours=int(rng.integers(0, 8000)))
            for _ in range(int(rng.integers(1, 4))):
                product = int(rng.integers(0, len(WORDS)))
                quantity = int(rng.integers(1, 30 if heavy else 5))
                rows.append({
                    "InvoiceNo": invoice, "StockCode": f"P{product}",
                    "Description": WORDS[product], "Quantity": quantity,
                    "InvoiceDate": day.isoformat(), "UnitPrice": float(rng.uniform(0.5, 9.0)),
                    "CustomerID": 10000 + c, "Country": "UK" if c % 4 else "France",
                })  # fmt: skip
    return pd.DataFrame(rows)


def test_a_transactions_bundle_predicts_from_a_raw_log(tmp_path):
    path = tmp_path / "log.csv"
    _log().to_csv(path, index=False)
    dataset = load_transactions(path)
    pipeline = FeaturePipeline(text={"n_components": 3, "min_df": 1})
    X = pipeline.fit_transform(dataset)
    est = KMeans(3, n_init=3, random_state=0).fit(X)
    data_config = {"_target_": "deepseg.data.transactions.load_transactions", "path": str(path)}
    save_bundle(tmp_path / "b", estimator=est, pipeline=pipeline, dataset=dataset, X=X,
                method="kmeans", method_config={}, data_config=data_config)  # fmt: skip
    seg = load(tmp_path / "b")
    assert seg.input_kind == "transactions"
    np.testing.assert_array_equal(seg.predict(read_transaction_log(path)), est.labels_)
    out = tmp_path / "out.csv"
    run_predict(tmp_path / "b", path, out, chunk_size=7)
    frame = pd.read_csv(out, dtype={"id": str})
    assert frame["id"].tolist() == dataset.ids.tolist()
    np.testing.assert_array_equal(frame["segment"], est.labels_)
