"""No single attribute runs the show: column-balanced features and the report's warning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans

from deepseg.data.base import Dataset
from deepseg.features.columns import ColumnRoles
from deepseg.features.pipeline import FeaturePipeline
from deepseg.insight.association import attribute_association, cramers_v
from deepseg.metrics import acc
from deepseg.tasks.report import segment_report


def _three_groups_and_a_coin(seed: int, n: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    """Three informative numeric columns (three groups) and a binary categorical that carries
    no information about them."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 3, n)
    centres = np.array([[0.0, 0.0, 0.0], [2.5, 2.5, 0.0], [0.0, 2.5, 2.5]])
    frame = pd.DataFrame(centres[groups] + rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    frame["gender"] = rng.choice(["f", "m"], n)
    return frame, groups


def test_cramers_v():
    assert cramers_v([0, 0, 1, 1], ["x", "x", "y", "y"]) == pytest.approx(1.0)
    assert cramers_v([0, 1, 0, 1], ["x", "x", "x", "x"]) == 0.0
    rng = np.random.default_rng(0)
    assert cramers_v(rng.integers(0, 4, 5000), rng.integers(0, 2, 5000)) < 0.05


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_uninformative_binary_categorical_does_not_split_the_segments(seed):
    frame, groups = _three_groups_and_a_coin(seed)
    roles = ColumnRoles(numeric=["a", "b", "c"], categorical=["gender"])
    X = FeaturePipeline().fit_transform(frame, roles)
    labels = KMeans(3, n_init=10, random_state=seed).fit_predict(X)
    table = attribute_association(frame, labels, numeric=["a", "b", "c"], categorical=["gender"])
    v = table.set_index("column")["cramers_v"]
    assert v["gender"] < 0.25  # measured 0.06-0.13
    assert acc(groups, labels) > 0.85  # the numeric groups are found (measured 0.92-0.93)
    assert not table["dominant"].any()
    # the former block balancing gave the one binary column half the variance, and K-Means
    # split the customers by it (the "every segment 100% one gender")
    X_blocks = FeaturePipeline(balance="blocks").fit_transform(frame, roles)
    split = KMeans(3, n_init=10, random_state=seed).fit_predict(X_blocks)
    assert cramers_v(split, frame["gender"]) > 0.9


def _report(frame: pd.DataFrame, labels: np.ndarray, roles: ColumnRoles) -> str:
    dataset = Dataset(name="t", ids=np.arange(len(frame)), frame=frame, roles=roles)
    pipeline = FeaturePipeline()
    X = pipeline.fit_transform(dataset)
    page, _, _ = segment_report(
        dataset, X, pipeline, labels, method="kmeans", options={"map": "pca"}
    )
    return page


def test_the_report_warns_when_one_categorical_determines_the_segments():
    rng = np.random.default_rng(0)
    n = 800
    education = rng.choice(["basic", "graduate", "master", "phd"], n)
    frame = pd.DataFrame(
        {"spend": rng.lognormal(5, 1, n), "visits": rng.poisson(5, n), "education": education}
    )
    roles = ColumnRoles(numeric=["spend", "visits"], categorical=["education"])
    labels = pd.Series(education).map({"basic": 0, "graduate": 1, "master": 2, "phd": 2})
    page = _report(frame, labels.to_numpy(), roles)
    assert "One attribute runs the show" in page
    assert "<b>education</b> almost determines the segments (Cramér's V 1.00)" in page
    assert "features.categorical.weight" in page
    # the same table segmented by its numeric columns gets no warning
    logs = np.log1p(frame[["spend", "visits"]])
    quiet = KMeans(3, n_init=4, random_state=0).fit_predict((logs - logs.mean()) / logs.std())
    assert "One attribute runs the show" not in _report(frame, quiet, roles)
