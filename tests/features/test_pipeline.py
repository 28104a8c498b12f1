import json
import logging

import numpy as np
import pandas as pd
import pytest

from deepseg.data.base import ColumnRoles
from deepseg.data.synthetic import make_synthetic_customers
from deepseg.features.blocks import CategoricalBlock, MatrixBlock, NumericBlock
from deepseg.features.pipeline import FeaturePipeline


@pytest.fixture(scope="module")
def customers():
    return make_synthetic_customers(n_samples=800, random_state=3)


def test_numeric_block_imputes_logs_clips_and_standardises():
    rng = np.random.default_rng(0)
    spend = rng.lognormal(3, 1.5, 1000)
    spend[:5] = np.nan
    flat = rng.normal(0, 1, 1000)
    frame = pd.DataFrame({"spend": spend, "flat": flat})
    block = NumericBlock(["spend", "flat"], log1p="auto", clip_quantiles=(0.01, 0.99)).fit(frame)
    assert block.log_mask_.tolist() == [True, False]  # only the skewed, non-negative column
    out = block.transform(frame)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-9)
    # imputed rows take the median of the training data, after the log
    expected = (np.log1p(np.nanmedian(spend)) - block.mean_[0]) / block.std_[0]
    np.testing.assert_allclose(out[:5, 0], expected)
    # clipping: values far outside the training range land on the clip bound
    extreme = block.transform(pd.DataFrame({"spend": [1e12], "flat": [-1e6]}))
    np.testing.assert_allclose(
        extreme[0], (np.r_[block.clip_high_[0], block.clip_low_[1]] - block.mean_) / block.std_
    )


def test_numeric_block_log1p_options():
    frame = pd.DataFrame({"a": [1.0, 2.0, 100.0, 3.0], "b": [-1.0, 0.0, 50.0, 1.0]})
    assert NumericBlock(["a", "b"], log1p=True).fit(frame).log_mask_.tolist() == [True, False]
    assert NumericBlock(["a", "b"], log1p=False).fit(frame).log_mask_.tolist() == [False, False]
    assert NumericBlock(["a", "b"], log1p=["b"]).fit(frame).log_mask_.tolist() == [False, False]
    with pytest.raises(ValueError, match="not numeric columns"):
        NumericBlock(["a"], log1p=["zzz"]).fit(frame)


def test_numeric_block_refuses_text_and_all_nan():
    frame = pd.DataFrame({"x": ["1", "2", "abc", " "], "y": [np.nan] * 4})
    with pytest.raises(ValueError, match=r"Column 'x' is used as numeric but holds text.*'abc'"):
        NumericBlock(["x"]).fit(frame)
    with pytest.raises(ValueError, match=r"\['y'\] hold no values"):
        NumericBlock(["y"]).fit(frame)
    # numbers stored as text, with blanks, are fine (blank = missing)
    ok = NumericBlock(["x"]).fit(pd.DataFrame({"x": ["1", "2", " ", "4"]}))
    assert ok.medians_[0] == 2.0


def test_categorical_block_rare_unknown_and_missing():
    frame = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 45 + ["z"] * 2 + [None] * 3})
    block = CategoricalBlock(["c"], min_frequency=0.03).fit(frame)
    assert block.feature_names_out == ["c=__missing__", "c=a", "c=b", "c=__rare__"]
    out = block.transform(pd.DataFrame({"c": ["a", "z", "never-seen", None]}))
    np.testing.assert_array_equal(out, [[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1], [1, 0, 0, 0]])
    # without rare categories in training, an unseen category is an all-zero row
    block = CategoricalBlock(["c"], min_frequency=1).fit(pd.DataFrame({"c": ["a", "b"]}))
    np.testing.assert_array_equal(block.transform(pd.DataFrame({"c": ["q"]})), [[0, 0]])


def test_matrix_block_scales():
    X = np.array([[0, 8], [16, 4]], dtype=np.uint8)
    np.testing.assert_allclose(MatrixBlock("max").fit(X).transform(X), X / 16.0)
    np.testing.assert_allclose(MatrixBlock("minmax").fit(X).transform(X), [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="matrix 'scale'"):
        MatrixBlock("zscore")


def test_pipeline_output_is_float32_with_names(customers):
    pipe = FeaturePipeline(text={"n_components": 8})
    X = pipe.fit_transform(customers)
    assert X.dtype == np.float32
    assert X.shape == (len(customers), len(pipe.feature_names_))
    assert set(pipe.block_slices_) == {"numeric", "categorical", "text"}
    assert pipe.feature_names_[0] == "total_spend"
    assert any(n.startswith("channel=") for n in pipe.feature_names_)
    # balanced columns: 10 numeric, 5 categorical columns, one text column counting as 5
    var = {b: X[:, s[0] : s[1]].var(axis=0).sum() for b, s in pipe.block_slices_.items()}
    assert var["numeric"] / var["categorical"] == pytest.approx(10 / 5, rel=1e-3)
    assert var["text"] / var["categorical"] == pytest.approx(5 / 5, rel=1e-3)
    np.testing.assert_allclose(X.var(axis=0).mean(), 1.0, rtol=1e-3)
    # every categorical column's indicators together carry the variance of one numeric column
    a, _ = pipe.block_slices_["categorical"]
    start = a
    for size in pipe.blocks_["categorical"].group_sizes:
        group = X[:, start : start + size].var(axis=0).sum()
        assert group == pytest.approx(X[:, 0].var(), rel=1e-3)
        start += size
    # the former behaviour: equal total variance per block at equal weights
    blocks = FeaturePipeline(text={"n_components": 8}, balance="blocks")
    Xb = blocks.fit_transform(customers)
    variances = [Xb[:, a:b].var(axis=0).sum() for a, b in blocks.block_slices_.values()]
    np.testing.assert_allclose(variances, variances[0], rtol=1e-3)
    legacy = FeaturePipeline(text={"n_components": 8}, balance_blocks=True)
    np.testing.assert_allclose(legacy.fit_transform(customers), Xb, atol=1e-5)
    with pytest.raises(ValueError, match="'balance' parameter of FeaturePipeline"):
        FeaturePipeline(balance="equal").fit(customers)


def test_one_binary_categorical_weighs_as_one_column():
    """Three numeric columns beside one binary categorical: the categorical gets a quarter of
    the variance (under block balancing it had half)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"])
    frame["sex"] = rng.choice(["f", "m"], 400)
    roles = ColumnRoles(numeric=["a", "b", "c"], categorical=["sex"])
    for balance, share in (("columns", 1 / 4), ("blocks", 1 / 2)):
        pipe = FeaturePipeline(balance=balance)
        X = pipe.fit_transform(frame, roles)
        a, b = pipe.block_slices_["categorical"]
        assert X[:, a:b].var(axis=0).sum() / X.var(axis=0).sum() == pytest.approx(share, 1e-3)


def test_pipeline_block_weights(customers):
    base = FeaturePipeline(text={"n_components": 8}).fit(customers)
    heavy = FeaturePipeline(numeric={"weight": 3.0}, text={"n_components": 8})
    X = heavy.fit_transform(customers)
    var = {b: X[:, s[0] : s[1]].var(axis=0).sum() for b, s in heavy.block_slices_.items()}
    assert var["numeric"] / var["categorical"] == pytest.approx(3.0 * 10 / 5, rel=1e-3)
    no_text = FeaturePipeline(text={"weight": 0}).fit(customers)
    assert "text" not in no_text.block_slices_
    assert len(no_text.feature_names_) < len(base.feature_names_)
    with pytest.raises(ValueError, match="weight of the numeric block"):
        FeaturePipeline(numeric={"weight": -1}).fit(customers)


def test_pipeline_save_load_round_trip(customers, tmp_path):
    pipe = FeaturePipeline(text={"n_components": 8})
    X = pipe.fit_transform(customers)
    pipe.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline.json", "pipeline.npz"]
    json.loads((tmp_path / "pipeline.json").read_text())  # plain JSON
    with np.load(tmp_path / "pipeline.npz", allow_pickle=False) as npz:  # plain arrays
        assert all(npz[k].dtype != object for k in npz.files)
    loaded = FeaturePipeline.load(tmp_path)
    np.testing.assert_allclose(loaded.transform(customers.frame), X, atol=1e-6)
    assert loaded.feature_names_ == pipe.feature_names_


def test_pipeline_new_data_missing_and_extra_columns(customers, caplog):
    pipe = FeaturePipeline(text={"n_components": 8}).fit(customers)
    new = customers.frame.head(20).copy()
    new["unrelated"] = 1
    with caplog.at_level(logging.WARNING):
        out = pipe.transform(new)
    assert out.shape == (20, len(pipe.feature_names_))
    assert "unrelated" in caplog.text
    with pytest.raises(ValueError, match=r"\['channel'\] not found"):
        pipe.transform(new.drop(columns=["channel"]))
    # unseen categories and unknown words are handled
    new.loc[0, "channel"] = "carrier-pigeon"
    new.loc[0, "products_text"] = "zzyzx unheard words"
    assert np.isfinite(pipe.transform(new)).all()


def test_pipeline_on_matrix_and_frame_with_roles():
    X = np.random.default_rng(0).integers(0, 255, size=(50, 6)).astype(np.uint8)
    pipe = FeaturePipeline()
    out = pipe.fit_transform(X)
    np.testing.assert_allclose(out, X / X.max(), rtol=1e-6)
    frame = pd.DataFrame({"a": np.arange(10.0), "b": list("xyxyxyxyxy")})
    with pytest.raises(ValueError, match="needs its column roles"):
        FeaturePipeline().fit(frame)
    out = FeaturePipeline().fit_transform(frame, ColumnRoles(numeric=["a"], categorical=["b"]))
    assert out.shape == (10, 3)
    with pytest.raises(ValueError, match="no input"):
        FeaturePipeline().fit(frame, ColumnRoles())


def test_a_constant_numeric_column_takes_no_variance_budget(caplog):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": rng.normal(size=200), "flat": 3.0, "c": rng.choice(["x", "y"], 200)}
    )
    roles = ColumnRoles(numeric=["a", "flat"], categorical=["c"])
    with caplog.at_level(logging.WARNING):
        pipe = FeaturePipeline()
        X = pipe.fit_transform(frame, roles)
    assert "['flat'] are constant" in caplog.text
    a, b = pipe.block_slices_["categorical"]
    # one informative numeric column and one categorical: half the variance each
    assert X[:, a:b].var(axis=0).sum() == pytest.approx(X[:, 0].var(), rel=1e-3)


def test_a_large_table_is_fitted_on_a_seeded_sample_and_applied_in_chunks(customers):
    n = len(customers)
    pipe = FeaturePipeline(text={"n_components": 8}, fit_sample_rows=300, chunk_rows=128)
    X = pipe.fit_transform(customers)
    assert X.shape == (n, len(pipe.feature_names_)) and X.dtype == np.float32
    # the same as a pipeline fitted on exactly those sample rows, applied to every row at once
    rows = np.sort(np.random.default_rng(0).choice(n, 300, replace=False))
    reference = FeaturePipeline(text={"n_components": 8}, fit_sample_rows=None, chunk_rows=n)
    reference.fit(customers.frame.iloc[rows], customers.roles)
    assert pipe.factors_ == reference.factors_
    np.testing.assert_array_equal(
        pipe.blocks_["numeric"].medians_, reference.blocks_["numeric"].medians_
    )
    # chunking only splits the rows: every row's arithmetic is the same (float32, values of
    # order 1; 1e-6 allows a different BLAS blocking of the text projection)
    np.testing.assert_allclose(X, reference.transform(customers.frame), rtol=0, atol=1e-6)
    # seeded: the same sample again, another seed another one
    np.testing.assert_array_equal(
        FeaturePipeline(text={"n_components": 8}, fit_sample_rows=300).fit_transform(customers),
        X,
    )
    other = FeaturePipeline(text={"n_components": 8}, fit_sample_rows=300, sample_seed=1)
    other.fit(customers)
    assert not np.array_equal(other.blocks_["numeric"].mean_, pipe.blocks_["numeric"].mean_)
    # a table up to fit_sample_rows is fitted on every row, as before
    whole = FeaturePipeline(text={"n_components": 8}, fit_sample_rows=n).fit_transform(customers)
    np.testing.assert_array_equal(
        whole,
        FeaturePipeline(text={"n_components": 8}, fit_sample_rows=None).fit_transform(customers),
    )
    with pytest.raises(ValueError, match="'fit_sample_rows' must be an int >= 2"):
        FeaturePipeline(fit_sample_rows=1).fit(customers)


def test_the_matrix_can_be_written_into_a_memory_map(customers, tmp_path):
    from deepseg.io import feature_storage

    expected = FeaturePipeline(text={"n_components": 8}).fit_transform(customers)
    for sample in (None, 300):  # fitted on every row, and on a sample (then chunked)
        pipe = FeaturePipeline(text={"n_components": 8}, fit_sample_rows=sample, chunk_rows=128)
        mapped = pipe.fit_transform(customers, out=feature_storage(tmp_path, 0))
        assert isinstance(mapped, np.memmap)
        if sample is None:
            np.testing.assert_array_equal(mapped, expected)
        np.testing.assert_array_equal(
            pipe.transform(customers, out=feature_storage(tmp_path, 0)), mapped
        )
    # below the size limit: an ordinary array
    small = FeaturePipeline(text={"n_components": 8}).fit_transform(
        customers, out=feature_storage(tmp_path, 1.0)
    )
    assert type(small) is np.ndarray
    np.testing.assert_array_equal(small, expected)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="features_memmap_gb"):
        feature_storage(tmp_path, -1)
