"""Issue 26: segment reports that tell the truth on customer tables.

Names follow the evidence (a distinct segment is never "average", the largest differences come
first), categorical columns that go with nothing else describe the segments without running
them (``features.profile_only: auto``), names read as words ("Region 1", "responded",
"mnt wines"), missing values are counted, a wrong separator is refused, and no CSV cell runs as a
spreadsheet formula.
"""

from __future__ import annotations

import logging
import os
import subprocess

import numpy as np
import pandas as pd
import pytest

from deepseg.insight.association import cramers_v
from deepseg.tasks.benchmark import run_benchmark
from tests.cli.scripts import console_script
from tests.insight.test_report_task import compose_benchmark

#: (income, spending score, share, age shift): the mall's five groups in income x spending; the
#: middle group (median income and spending) is the older one, so that every group differs from
#: the rest by 1 to 2 sd in some column.
MALL_GROUPS = [(55, 50, 0.40, 11), (26, 20, 0.12, -4), (26, 80, 0.11, -10), (88, 17, 0.17, 0),
               (87, 82, 0.20, -8)]  # fmt: skip
#: The mall's own layout, whose middle group is average in every column.
MALL_AS_IS = [(55, 50, 0.40, 0), (26, 20, 0.12, 5), (26, 80, 0.11, -8), (88, 17, 0.17, 8),
              (87, 82, 0.20, -6)]  # fmt: skip


def mall_like(seed: int = 1, n: int = 200, groups=MALL_GROUPS) -> pd.DataFrame:
    """Three numeric columns holding five groups whose effects against the rest are 1 to 2 sd,
    and a binary Gender independent of them."""
    rng = np.random.default_rng(seed)
    parts = []
    for g, (income, spending, share, age) in enumerate(groups):
        m = round(share * n)
        parts.append(
            pd.DataFrame(
                {
                    "AnnualIncome": rng.normal(income, 7, m).round(),
                    "SpendingScore": rng.normal(spending, 7, m).round().clip(1, 100),
                    "Age": rng.normal(38 + age, 9, m).round().clip(18, 80),
                    "group": g,
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    frame["Gender"] = rng.choice(["Female", "Male"], len(frame), p=[0.56, 0.44])
    frame.insert(0, "CustomerID", np.arange(1, len(frame) + 1))
    return frame


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def _one_error_line(proc: subprocess.CompletedProcess, command: str) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [x for x in proc.stderr.splitlines() if x.startswith(f"{command}: error: ")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


def _run(tmp_path, frame: pd.DataFrame, *overrides: str):
    path = tmp_path / "input.csv"
    frame.to_csv(path, index=False)
    cfg = compose_benchmark(
        "data=table", f"data.path={path}", "data.id_column=CustomerID", "methods=[kmeans]",
        "seeds=[0]", "report=default", "report.map=pca", *overrides,
    )  # fmt: skip
    out = tmp_path / "run"
    out.mkdir()
    run_benchmark(cfg, out)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_mall_like_segments_are_named_by_their_numbers_not_by_gender(tmp_path, seed):
    # five draws: K-Means merges a group with part of its neighbour on some (ARI 0.71 on an
    # earlier layout), and the merged segment must still be named by its differences
    frame = mall_like(seed)
    out = _run(tmp_path, frame.drop(columns="group"), "n_clusters=5")
    profiles = pd.read_csv(out / "profiles.csv")
    segments = pd.read_csv(out / "segments.csv")
    # the binary column independent of the groups no longer runs the segmentation
    gender = frame.set_index("CustomerID").loc[segments["CustomerID"], "Gender"]
    assert cramers_v(segments["segment"], gender) < 0.3
    html = (out / "report.html").read_text()
    assert "&#x27;Gender&#x27; describes the segments but was kept out" in html
    # no segment is average, and every name states its largest numeric difference
    words = {"AnnualIncome": "annual income", "SpendingScore": "spending score", "Age": "age"}
    for row in profiles.itertuples():
        effects = {c: getattr(row, f"{c}_effect") for c in words}
        largest = max(effects, key=lambda c: abs(effects[c]))
        assert not row.name.startswith(("average", "no distinct")), (row.name, effects)
        side = "high" if effects[largest] > 0 else "low"
        assert row.name.startswith(f"{side} {words[largest]}"), (row.name, effects)
    # a "Spending Score" is not an amount of money: no RFM words or scores from it
    assert not profiles["name"].str.contains("spend,|-spend").any()
    assert "M_score" not in profiles.columns


@pytest.mark.parametrize("seed", [2, 3])
def test_a_segment_that_merges_a_group_with_part_of_another_is_named_by_its_differences(
    tmp_path, seed
):
    # the mall's own layout: on these draws K-Means merges the young, low-income, high-spending
    # group with part of the middle one (ARI about 0.7); that segment passes no separation test
    # of its own, but it is younger and poorer than the rest (d = -1.4, -1.2)
    frame = mall_like(seed, groups=MALL_AS_IS)
    out = _run(tmp_path, frame.drop(columns="group"), "n_clusters=5")
    profiles = pd.read_csv(out / "profiles.csv")
    words = {"AnnualIncome": "annual income", "SpendingScore": "spending score", "Age": "age"}
    merged = 0
    for row in profiles.itertuples():
        effects = {c: getattr(row, f"{c}_effect") for c in words}
        largest = max(effects, key=lambda c: abs(effects[c]))
        if abs(effects[largest]) >= 1.0:
            side = "high" if effects[largest] > 0 else "low"
            assert row.name.startswith(f"{side} {words[largest]}"), (row.name, effects)
            merged += row.pair_gap < 3.5 and row.separation < 0 and row.gap < 4
        else:
            assert row.name.startswith("average"), (row.name, effects)  # the middle group
    assert merged >= 1  # the case under test did occur


def test_codes_flags_and_camel_case_read_as_words(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    group = np.repeat([0, 1, 2], n // 3)
    frame = pd.DataFrame(
        {
            "CustomerID": np.arange(n),
            "MntWines": np.r_[
                rng.normal(100, 15, 100), rng.normal(600, 15, 100), rng.normal(350, 15, 100)
            ].round(),
            "NumWebVisits": np.r_[
                rng.normal(8, 1, 100), rng.normal(2, 1, 100), rng.normal(5, 1, 100)
            ].round(),
            "Region": np.where(group == 0, 1, rng.choice([2, 3], n)),
            "Response": np.where(group == 1, 1, rng.choice([0, 1], n, p=[0.95, 0.05])),
        }
    )
    out = _run(tmp_path, frame, "n_clusters=3", "data.categorical=[Region,Response]",
               "features.profile_only=null")  # fmt: skip
    names = pd.read_csv(out / "profiles.csv").set_index("segment")["name"].tolist()
    joined = " | ".join(names)
    assert "Region 1" in joined and "responded" in joined and "mnt wines" in joined, names
    assert "MntWines" not in joined and "Response 1" not in joined
    segments = pd.read_csv(out / "segments.csv", dtype=str)
    bare = segments["segment_name"].str.fullmatch(r"\s*-?\d+(\.\d+)?\s*(,.*)?")
    assert not bare.any(), segments["segment_name"].unique()
    # labels from the config replace a column's words
    labelled = tmp_path / "labelled"
    labelled.mkdir()
    out2 = _run(
        labelled, frame, "n_clusters=3", "data.categorical=[Region,Response]",
        "features.profile_only=null", "+report.labels={MntWines: wine spending}",
    )  # fmt: skip  # fmt: skip
    names = pd.read_csv(out2 / "profiles.csv")["name"].tolist()
    assert any("wine spending" in name for name in names), names
    html = (out2 / "report.html").read_text()
    assert "<title>Segment report: input.csv / kmeans</title>" in html


def test_missing_values_are_counted_in_the_log_and_the_report(tmp_path, caplog):
    frame = mall_like(n=200).drop(columns="group")
    frame.loc[[3, 10, 17], "Age"] = np.nan
    frame.loc[[5], "Gender"] = np.nan
    with caplog.at_level(logging.WARNING, logger="deepseg.features.columns"):
        out = _run(tmp_path, frame, "n_clusters=5")
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert (
        "4 missing values in 2 column(s): Age 3 of 200 (1.5%, imputed as the column's median)"
        in logged
    )
    html = (out / "report.html").read_text()
    assert "About the input" in html and "the column's median" in html


def test_a_wrong_separator_is_refused_with_the_one_it_suspects(tmp_path):
    frame = mall_like(n=60).drop(columns="group")
    path = tmp_path / "tabs.csv"
    frame.to_csv(path, index=False, sep="\t")
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [console_script("deepseg-benchmark"), "data=table", f"data.path={path}", "data.sep=','",
         "methods=[kmeans]", "n_clusters=3", f"hydra.run.dir={run_dir}",
         f"paths.output_dir={tmp_path / 'outputs'}"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    line = _one_error_line(proc, "deepseg-benchmark")
    assert "contain TAB: is the separator right?" in line and "tabs.csv" in line, line


def test_exports_cannot_run_formulas(tmp_path):
    rng = np.random.default_rng(0)
    n = 240
    group = np.repeat([0, 1, 2, 3], n // 4)
    values = np.array(['=HYPERLINK("http://evil.example","x")', "+1", "-2", "@SUM(1,2)"])
    frame = pd.DataFrame(
        {
            "CustomerID": [f"=C{i}" if i == 0 else f"C{i}" for i in range(n)],
            "Balance": np.r_[
                rng.normal(-500, 20, 60),
                rng.normal(0, 20, 60),
                rng.normal(500, 20, 60),
                rng.normal(1000, 20, 60),
            ].round(2),
            "Shop": values[group],
        }
    )
    out = _run(tmp_path, frame, "n_clusters=4", "features.profile_only=null")
    for name in ("segments.csv", "profiles.csv"):
        table = pd.read_csv(out / name, dtype=str, keep_default_na=False)
        text = [
            c for c in table.columns if not pd.to_numeric(table[c], errors="coerce").notna().all()
        ]
        for column in text:
            assert not table[column].str.match(r"[=+\-@\t\r]").any(), (name, column)
        assert not any(str(c).startswith(("=", "+", "-", "@")) for c in table.columns)
    profiles = pd.read_csv(out / "profiles.csv")
    assert (profiles["Balance_median"] < 0).any()  # numbers stay numbers
    assert profiles["name"].str.contains("HYPERLINK").any()  # neutralised, not dropped


def test_constant_columns_describe_no_segment_and_built_features_read_as_words(caplog):
    from deepseg.data.base import ColumnRoles, Dataset
    from deepseg.data.transactions import NUMERIC_FEATURES
    from deepseg.tasks.report import column_labels, raw_table

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((50, len(NUMERIC_FEATURES))), columns=list(NUMERIC_FEATURES))
    frame["share_weekday_5"] = 0.0  # a shop closed on Saturdays
    dataset = Dataset(
        name="t", ids=np.arange(50), frame=frame, roles=ColumnRoles(numeric=list(NUMERIC_FEATURES))
    )
    with caplog.at_level(logging.INFO, logger="deepseg.tasks.report"):
        _, numeric, _, _ = raw_table(dataset)
    assert "share_weekday_5" not in numeric and len(numeric) == len(NUMERIC_FEATURES) - 1
    assert "constant column(s) share_weekday_5" in caplog.text
    # the words deepseg has for the features it builds, under the user's own labels
    words = column_labels(frame, {"tenure_days": "months with us"})
    assert words["share_hour_evening"] == "share of evening orders"
    assert words["share_weekday_0"] == "share of Monday orders"
    assert words["tenure_days"] == "months with us"
    # a table that is not the built one gets only the user's labels
    assert column_labels(frame.drop(columns="recency"), {"x": "y"}) == {"x": "y"}


def test_look_alike_segments_are_told_apart_by_their_own_strongest_trait():
    # Online Retail's case: two segments share "low-spend" and differ most from each other in
    # the morning share (one high, one low), while the second's own strongest trait is a high
    # afternoon share; its name says what it is, not only what it is not
    from deepseg.insight.profiles import Descriptor, _name_segments

    def d(word: str, column: str, strength: float) -> Descriptor:
        return Descriptor(word, frozenset({column}), strength, "", column=column)

    found = {
        1: [d("low-spend", "monetary", 0.7), d("high morning share", "morning", 2.6)],
        2: [
            d("low-spend", "monetary", 0.9),
            d("high afternoon share", "afternoon", 2.4),
            d("low morning share", "morning", 1.6),
        ],
    }
    gaps = {"morning": 4.2, "afternoon": 4.1}  # each sets the two apart; morning by more
    summary = pd.DataFrame({"segment": [1, 2], "share": [0.4, 0.6]})
    names = _name_segments(
        [1, 2], found, summary, max_words=1, differs=lambda s, o, x: gaps.get(x.column)
    )
    assert names == {1: "low-spend, high morning share", 2: "low-spend, high afternoon share"}
