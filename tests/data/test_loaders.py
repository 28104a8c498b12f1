import logging

import numpy as np
import pandas as pd
import pytest

from deepseg.data.base import ColumnRoles, Dataset
from deepseg.data.images import load_digits, load_mnist, read_idx
from deepseg.data.table import infer_roles, load_table, load_text_corpus, resolve_paths
from tests.conftest import require_data


def test_dataset_validation():
    with pytest.raises(ValueError, match="exactly one of"):
        Dataset(name="x", ids=np.arange(2))
    with pytest.raises(ValueError, match="empty"):
        Dataset(name="x", ids=np.arange(0), X=np.zeros((0, 3)))
    with pytest.raises(ValueError, match="3 labels for 2 rows"):
        Dataset(name="x", ids=np.arange(2), X=np.zeros((2, 3)), labels=np.arange(3))
    d = Dataset(name="x", ids=np.arange(4), X=np.arange(8).reshape(4, 2), labels=np.arange(4))
    sub = d.subset(np.array([3, 1]))
    np.testing.assert_array_equal(sub.X, [[6, 7], [2, 3]])
    np.testing.assert_array_equal(sub.labels, [3, 1])


def test_digits():
    d = load_digits()
    assert d.X.shape == (1797, 64) and d.n_clusters == 10
    assert sorted(np.unique(d.labels)) == list(range(10))


def _table(tmp_path, name="t.csv"):
    rng = np.random.default_rng(0)
    n = 80
    frame = pd.DataFrame(
        {
            "customer_id": [f"u{i}" for i in range(n)],
            "spend": rng.lognormal(3, 1, n),
            "visits": rng.integers(0, 10, n),
            "total": [str(v) if i % 7 else " " for i, v in enumerate(rng.integers(0, 99, n))],
            "plan": rng.choice(["basic", "pro"], n),
            "email": [f"user{i}@example.com" for i in range(n)],
            "review": [f"the product was really quite good number {i}" for i in range(n)],
            "segment": rng.choice(["a", "b"], n),
        }
    )
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path, frame


def test_infer_roles_logs_and_fills_what_is_not_given(tmp_path, caplog):
    path, frame = _table(tmp_path)
    with caplog.at_level(logging.INFO):
        d = load_table(path, label_column="segment")
    assert d.roles.id == "customer_id"
    assert d.roles.numeric == ["spend", "visits", "total"]  # blanks in 'total' are missing values
    assert d.roles.categorical == ["plan"]
    assert d.roles.text == ["review"]
    assert "email" not in d.frame.columns  # nearly unique strings: ignored, not one-hot encoded
    assert "segment" not in d.frame.columns  # the label never becomes a feature
    assert list(d.labels[:3]) == list(frame["segment"][:3])
    assert "Column roles" in caplog.text and "ignored=['email']" in caplog.text
    # given roles win; the others are still inferred
    roles, _ = infer_roles(
        frame, ColumnRoles(id="customer_id", label="segment", numeric=["spend"])
    )
    assert roles.numeric == ["spend"] and roles.categorical == ["plan"]


def test_table_from_glob_and_directory(tmp_path):
    _table(tmp_path, "part-1.csv")
    _table(tmp_path, "part-2.csv")
    assert (
        len(load_table(str(tmp_path / "part-*.csv"), id_column=None, exclude=["customer_id"]))
        == 160
    )
    assert len(resolve_paths(tmp_path)) == 2
    with pytest.raises(FileNotFoundError, match="matches"):
        resolve_paths(str(tmp_path / "nothing-*.csv"))


def test_table_parquet(tmp_path):
    _, frame = _table(tmp_path)
    frame.to_parquet(tmp_path / "t.parquet")
    d = load_table(tmp_path / "t.parquet", label_column="segment")
    assert len(d) == len(frame) and d.roles.categorical == ["plan"]


def test_text_corpus(tmp_path):
    pd.DataFrame(
        {"label": [1, 2, 1], "title": ["a b", "c d", None], "body": ["x y z", "u v", "w"]}
    ).to_csv(tmp_path / "c.csv", index=False)
    d = load_text_corpus(tmp_path / "c.csv", text_columns=["title", "body"])
    assert d.roles.text == ["title", "body"] and d.roles.numeric == []
    assert list(d.labels) == [1, 2, 1]


def test_read_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="IDX file not found"):
        read_idx(tmp_path / "missing-idx1-ubyte")
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad)
    truncated = tmp_path / "trunc"
    truncated.write_bytes(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + b"\x00" * 5)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(truncated)


def test_mnist_real_files():
    path = require_data("mnist")
    d = load_mnist(path, split="test")
    assert d.X.shape == (10000, 784) and d.X.dtype == np.uint8
    assert np.bincount(d.labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    sub = load_mnist(path, split="test", n_samples=500, random_state=1)
    assert len(sub) == 500


def test_telco_churn_real_file():
    path = require_data("telco_churn", "WA_Fn-UseC_-Telco-Customer-Churn.csv")
    d = load_table(path, id_column="customerID", label_column="Churn")
    assert len(d) == 7043 and len(set(d.ids)) == 7043
    assert "TotalCharges" in d.roles.numeric  # 11 blanks: missing values, not text
    assert "Contract" in d.roles.categorical
    assert (pd.Series(d.labels).value_counts().to_dict()) == {"No": 5174, "Yes": 1869}


def test_ag_news_real_file():
    path = require_data("ag_news", "test.csv")
    d = load_text_corpus(path, text_columns=["title", "description"], label_column="label")
    assert len(d) == 7600
    assert np.unique(d.labels, return_counts=True)[1].tolist() == [1900] * 4
