"""Segment profiles: statistics, lift, categories, terms, RFM scores and names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepseg.insight.profiles import find_rfm_columns, profile_segments


def _customers() -> tuple[pd.DataFrame, np.ndarray]:
    """Three segments of 40 with known behaviour: loyal, lapsed one-timers, and the middle."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 40)
    monetary = np.concatenate(
        [rng.uniform(900, 1100, 40), rng.uniform(10, 30, 40), rng.uniform(200, 300, 40)]
    )
    frequency = np.concatenate([rng.integers(20, 30, 40), np.ones(40), rng.integers(3, 6, 40)])
    recency = np.concatenate(
        [rng.uniform(1, 10, 40), rng.uniform(250, 350, 40), rng.uniform(40, 80, 40)]
    )
    frame = pd.DataFrame(
        {
            "recency": recency,
            "frequency": frequency,
            "monetary": monetary,
            "age": rng.normal(40, 5, 120),
            "country": ["UK"] * 30 + ["France"] * 10 + ["UK"] * 40 + ["Germany"] * 35 + ["UK"] * 5,
            "products": ["garden pot seed"] * 40 + ["toy kids gift"] * 40 + ["mug gift cake"] * 40,
        }
    )
    return frame, labels


def test_statistics_lift_and_names():
    frame, labels = _customers()
    p = profile_segments(
        frame,
        labels,
        numeric=["recency", "frequency", "monetary", "age"],
        categorical=["country"],
        text=["products"],
    )
    assert p.rfm == {"recency": "recency", "frequency": "frequency", "monetary": "monetary"}
    s = p.summary.set_index("segment")
    assert list(s["size"]) == [40, 40, 40]
    assert s["share"].sum() == pytest.approx(1.0)
    # mean, median and lift against the population, in original units
    for seg in (0, 1, 2):
        part = frame.loc[labels == seg, "monetary"]
        assert s.loc[seg, "monetary_mean"] == pytest.approx(part.mean())
        assert s.loc[seg, "monetary_median"] == pytest.approx(part.median())
        assert s.loc[seg, "monetary_lift"] == pytest.approx(part.mean() / frame["monetary"].mean())
    # RFM quintile scores: the loyal segment scores 5 on every dimension, the lapsed one 1
    assert s.loc[0, ["R_score", "F_score", "M_score"]].min() > 4.5
    assert s.loc[1, ["R_score", "M_score"]].max() < 1.5
    # names follow the statistics
    assert p.names[0].startswith("high-spend, frequent, recent")
    assert p.names[1].startswith("low-spend, one-time, lapsed")
    assert len(set(p.names.values())) == 3
    assert list(s["name"]) == [p.names[0], p.names[1], p.names[2]]
    # middle segment: Germany over-represented (35 of 40 against 35 of 120)
    cats = p.categories[(p.categories["segment"] == 2) & (p.categories["category"] == "Germany")]
    assert cats["share"].iloc[0] == pytest.approx(35 / 40)
    assert cats["lift"].iloc[0] == pytest.approx((35 / 40) / (35 / 120))
    assert "country=Germany" in p.names[2]
    # class-based TF-IDF: words unique to a segment outrank the shared 'gift'
    top = p.terms.groupby("segment")["term"].apply(list)
    assert set(top[0][:3]) == {"garden", "pot", "seed"}
    assert "gift" not in top[1][:2] and "gift" not in top[2][:2]
    z = p.zscores()
    assert z.loc[0, "monetary"] > 0 > z.loc[1, "monetary"]


def test_names_are_unique_when_segments_look_alike():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)})
    labels = np.arange(200) % 4  # four segments with no real differences
    p = profile_segments(frame, labels)
    assert len(set(p.names.values())) == 4


def test_rfm_columns_found_or_given():
    assert find_rfm_columns(["recency_days", "frequency", "total_spend", "age"]) == {
        "recency": "recency_days",
        "frequency": "frequency",
        "monetary": "total_spend",
    }
    assert find_rfm_columns(["a", "b"], {"monetary": "b"}) == {"monetary": "b"}
    with pytest.raises(ValueError, match="monetary column 'spend'"):
        find_rfm_columns(["a", "b"], {"monetary": "spend"})


def test_bad_labels():
    frame, labels = _customers()
    with pytest.raises(ValueError, match="labels must have shape"):
        profile_segments(frame, labels[:-1])
    with pytest.raises(ValueError, match="not in the table"):
        profile_segments(frame, labels, numeric=["spend"])
