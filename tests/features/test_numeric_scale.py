"""Numeric columns of one scale are scaled as a whole (``features.numeric.scale=auto``)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from deepseg.features.blocks import NumericBlock
from deepseg.features.columns import (
    SPREAD_RATIO,
    ColumnRoles,
    infer_roles,
    one_scale,
    spread_ratio,
)
from deepseg.features.pipeline import FeaturePipeline


def pixels(n: int = 300, d: int = 16, seed: int = 0) -> pd.DataFrame:
    """Integer intensities 0..16, most columns reaching most of the range and skewed
    (strokes are rare), a quarter of them nearly blank (an image's border: the full range,
    rarely)."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 17, size=(n, d)) * (rng.random((n, d)) < 0.3)
    border = d // 4
    values[:, :border] = rng.integers(0, 17, size=(n, border)) * (rng.random((n, border)) < 0.01)
    values[0, :border] = 16  # the border reaches the range once
    return pd.DataFrame(values.astype(float), columns=[f"p{i}" for i in range(d)])


def customers(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "income": rng.lognormal(10, 0.5, n),
        "age": rng.integers(18, 90, n).astype(float),
        "visits": rng.poisson(3, n).astype(float),
    })  # fmt: skip


def test_one_scale_tells_pixels_from_a_customer_table() -> None:
    assert one_scale(pixels().to_numpy())[0]
    assert spread_ratio(pixels().to_numpy()) >= SPREAD_RATIO
    assert not one_scale(customers().to_numpy())[0]
    # two columns: both must span the range (the lower median), not one of them
    income_age = customers()[["income", "age"]].to_numpy()
    assert not one_scale(income_age)[0]
    # one column, a constant matrix, date columns: never shared
    assert not one_scale(pixels().to_numpy()[:, :1])[0]
    assert not one_scale(np.ones((5, 3)))[0]
    assert not one_scale(pixels().to_numpy(), dates=True)[0]


def test_common_scale_keeps_the_columns_relative_spread(caplog: pytest.LogCaptureFixture) -> None:
    frame = pixels()
    caplog.set_level(logging.INFO, logger="deepseg")
    caplog.clear()
    block = NumericBlock(list(frame.columns)).fit(frame)
    out = block.transform(frame)
    assert block.scale_ == "common"
    assert not block.log_mask_.any()  # log1p=auto logs none of a shared scale
    assert "share one scale" in caplog.text and "features.numeric.scale=standard" in caplog.text
    # one factor for every column: ratios of the columns' spreads are those of the input
    raw = frame.to_numpy()
    clipped = np.clip(raw, block.clip_low_, block.clip_high_)
    np.testing.assert_allclose(out.std(axis=0), clipped.std(axis=0) / block.std_[0], rtol=1e-9)
    assert np.unique(block.std_).size == 1 and np.unique(block.clip_high_).size == 1
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-9 * np.abs(out).max())
    # the border pixel stays small beside the others, where per-column scaling inflates it
    standard = NumericBlock(list(frame.columns), scale="standard").fit(frame)
    assert standard.scale_ == "standard"
    assert out[:, 0].std() < 0.5 * out[:, 4:].std(axis=0).mean()
    np.testing.assert_allclose(standard.transform(frame)[:, 4:].std(axis=0), 1.0, rtol=1e-9)


def test_columns_of_one_scale_and_similar_spread_keep_per_column_scaling() -> None:
    """Letters' 16 measurements on one 0..15 scale, spreads alike: per-column scaling
    rescales no column much, and the development suite's such tables do no better as a whole."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.integers(0, 16, size=(300, 6)).astype(float))
    frame.columns = [f"m{i}" for i in range(6)]
    assert one_scale(frame.to_numpy())[0] and spread_ratio(frame.to_numpy()) < SPREAD_RATIO
    assert NumericBlock(list(frame.columns)).fit(frame).scale_ == "standard"


def test_a_customer_table_keeps_per_column_scaling() -> None:
    frame = customers()
    block = NumericBlock(list(frame.columns)).fit(frame)
    assert block.scale_ == "standard"
    assert block.log_mask_[0]  # income is skewed: log1p as before
    np.testing.assert_allclose(block.transform(frame).std(axis=0), 1.0, rtol=1e-9)


def test_explicit_log1p_and_scale_are_honoured() -> None:
    frame = pixels()
    forced = NumericBlock(list(frame.columns), scale="common", log1p=True).fit(frame)
    assert forced.scale_ == "common" and forced.log_mask_.all()
    with pytest.raises(ValueError, match="'scale' of the numeric block must be one of"):
        NumericBlock(["a"], scale="whole")


def test_a_state_saved_before_scale_auto_loads_as_it_was_fitted() -> None:
    frame = customers()
    block = NumericBlock(list(frame.columns), scale="standard").fit(frame)
    state, arrays = block.get_state()
    del state["fitted_scale"]  # what a pipeline saved before this option wrote
    again = NumericBlock.from_state(state, arrays)
    assert again.scale_ == "standard"
    np.testing.assert_array_equal(again.transform(frame), block.transform(frame))


def test_the_fitted_scale_survives_save_and_load(tmp_path) -> None:
    frame = pixels()
    pipe = FeaturePipeline(numeric={"scale": "auto"})
    out = pipe.fit_transform(frame, roles=ColumnRoles(numeric=list(frame.columns)))
    pipe.save(tmp_path)
    again = FeaturePipeline.load(tmp_path)
    assert again.blocks_["numeric"].scale_ == "common"
    np.testing.assert_array_equal(again.transform(frame), out)


def test_border_pixels_with_few_values_stay_columns_of_the_matrix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An integer column with few values is a code in a customer table, but in a matrix of
    one scale (an image's border pixel) it is one more numeric column."""
    frame = pixels(d=16)
    rng = np.random.default_rng(1)
    # four border pixels with few values: without any one of them, the others still make
    # the matrix one that the numeric block scales as a whole
    for column in ("p0", "p1", "p2", "p3"):
        frame[column] = rng.integers(0, 3, len(frame)).astype(float)
    caplog.set_level(logging.INFO, logger="deepseg")
    caplog.clear()
    roles, _ = infer_roles(frame, ColumnRoles())
    assert "p0" in roles.numeric and not roles.categorical
    assert "not codes" in caplog.text
    # the table's order: the border pixel first (near-blank ones may be dropped)
    assert roles.numeric == [c for c in frame.columns if c in roles.numeric]
    assert roles.numeric[0] == "p0"
    # the same few-valued integer column beside a customer table's columns: a code
    table = customers().assign(segment=frame["p0"].to_numpy())
    roles, _ = infer_roles(table, ColumnRoles())
    assert roles.categorical == ["segment"]
    # a code whose values lie outside the shared range is still a code
    frame["p0"] = frame["p0"] + 100
    roles, _ = infer_roles(frame, ColumnRoles())
    assert roles.categorical == ["p0"]


def test_codes_beside_scores_of_one_scale_stay_codes() -> None:
    """Scores 0..100 of uneven spread beside a region (1..8) and a channel (1..3): the codes'
    names are not the scores', so they stay categorical (and are not scaled away)."""
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({
        "score_math": rng.integers(0, 101, n).astype(float),
        "score_art": np.clip(rng.normal(50, 30, n), 0, 100).round(),
        "score_sport": np.where(rng.random(n) < 0.05, rng.integers(0, 101, n), 50).astype(float),
        "region": rng.integers(1, 9, n),
        "channel": rng.integers(1, 4, n),
    })  # fmt: skip
    roles, _ = infer_roles(frame, ColumnRoles())
    assert sorted(roles.categorical) == ["channel", "region"]
