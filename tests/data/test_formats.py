"""The files customers have: every common CSV encoding, separator and line ending, Excel and
Parquet, and names with glob characters, load to the same dataset and the same features."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from deepseg.data.table import load_table, read_table, sniff_separator
from deepseg.features.pipeline import FeaturePipeline

CITIES = ["Zürich", "Gävle", "Málaga", "Kraków", "Nîmes", "Łódź"]


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:03d}" for i in range(n)],
            "age": rng.integers(18, 80, n),
            "spend": np.round(rng.gamma(2.0, 50.0, n), 2),
            "city": rng.choice(CITIES[:4], n),  # latin-1 can hold these four
        }
    )


def _csv(frame: pd.DataFrame, sep: str = ",", line: str = "\n") -> str:
    return frame.to_csv(index=False, sep=sep, lineterminator=line)


def write_formats(frame: pd.DataFrame, root) -> dict[str, object]:
    """The same table in every form the issue lists; returns {case: path}."""
    paths = {}
    paths["latin1"] = root / "latin1.csv"
    paths["latin1"].write_bytes(_csv(frame).encode("latin-1"))
    paths["utf8_bom"] = root / "bom.csv"
    paths["utf8_bom"].write_bytes(_csv(frame).encode("utf-8-sig"))
    paths["semicolon_crlf"] = root / "semi.csv"
    paths["semicolon_crlf"].write_bytes(_csv(frame, ";", "\r\n").encode("utf-8"))
    paths["tab_named_csv"] = root / "tabs.csv"
    paths["tab_named_csv"].write_bytes(_csv(frame, "\t").encode("utf-8"))
    paths["cr_only"] = root / "old_mac.csv"
    paths["cr_only"].write_bytes(_csv(frame, ",", "\r").encode("utf-8"))
    paths["xlsx"] = root / "table.xlsx"
    frame.to_excel(paths["xlsx"], index=False, sheet_name="customers")
    paths["parquet"] = root / "table.parquet"
    frame.to_parquet(paths["parquet"])
    paths["glob_name"] = root / "cust[2024].csv"
    paths["glob_name"].write_text(_csv(frame), encoding="utf-8")
    return paths


@pytest.fixture(scope="module")
def formats(reference, tmp_path_factory):
    return write_formats(reference, tmp_path_factory.mktemp("formats"))


CASES = ["latin1", "utf8_bom", "semicolon_crlf", "tab_named_csv", "cr_only", "xlsx", "parquet",
         "glob_name"]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_every_form_loads_to_the_same_features(case, formats, reference):
    expected_ds = load_table(formats["parquet"], id_column="customer_id")
    expected_X = FeaturePipeline().fit_transform(expected_ds)
    ds = load_table(formats[case], id_column="customer_id")
    assert list(ds.ids) == reference["customer_id"].tolist()
    pd.testing.assert_frame_equal(ds.frame, expected_ds.frame, check_dtype=False)
    assert set(ds.frame["city"]) == set(reference["city"])  # the accents survived
    np.testing.assert_array_equal(FeaturePipeline().fit_transform(ds), expected_X)


def test_the_encoding_used_is_logged(formats, caplog):
    with caplog.at_level(logging.INFO, logger="deepseg.data.table"):
        read_table(formats["latin1"])
        read_table(formats["utf8_bom"])
        read_table(formats["semicolon_crlf"])
    assert "as cp1252 text" in caplog.text and "as utf-8-sig text" in caplog.text
    assert "separator ';' (sniffed)" in caplog.text


def test_declared_encoding_separator_and_sheet(reference, tmp_path):
    greek = reference.assign(city="Αθήνα")
    path = tmp_path / "greek.csv"
    path.write_bytes(_csv(greek, "|").encode("iso-8859-7"))
    frame = read_table(path, encoding="iso-8859-7", sep="|")
    assert set(frame["city"]) == {"Αθήνα"}
    with pytest.raises(ValueError, match="unknown encoding 'klingon'"):
        read_table(path, encoding="klingon")
    xlsx = tmp_path / "two.xlsx"
    with pd.ExcelWriter(xlsx) as writer:
        reference.head(3).to_excel(writer, sheet_name="first", index=False)
        reference.to_excel(writer, sheet_name="customers", index=False)
    assert len(read_table(xlsx)) == 3
    assert len(read_table(xlsx, sheet="customers")) == len(reference)
    with pytest.raises(ValueError, match=r"two.xlsx.*data.sheet='nope'.*\['first', 'customers'\]"):
        read_table(xlsx, sheet="nope")


def test_a_glob_still_matches_parts_and_an_existing_name_is_literal(reference, tmp_path):
    (tmp_path / "cust[2024].csv").write_text(_csv(reference.head(10)))
    (tmp_path / "cust2.csv").write_text(_csv(reference.head(7)))
    assert len(read_table(tmp_path / "cust[2024].csv")) == 10  # not the pattern cust2/0/4
    assert len(read_table(str(tmp_path / "cust*.csv"))) == 17
    with pytest.raises(FileNotFoundError, match="No file matches the pattern"):
        read_table(str(tmp_path / "nothing*.csv"))


@pytest.mark.parametrize(
    ("text", "sep"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1,5;2;3\n", ";"),  # decimal commas
        ('name\tnote\n"x, y"\t1\n', "\t"),
        ("a|b\n1|2\n", "|"),
        ("single\n1\n2\n", ","),
    ],
)
def test_sniff_separator(text, sep):
    assert sniff_separator(text) == sep


def test_duplicate_ids_and_infinities_are_refused_by_the_loader(reference, tmp_path):
    dup = reference.copy()
    dup.loc[3, "customer_id"] = dup.loc[2, "customer_id"]
    dup.to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(ValueError, match=r"dup.csv.*'customer_id' has 1 duplicate id\(s\) over 2 "
                       r"rows, e.g. \['C002'\]"):  # fmt: skip
        load_table(tmp_path / "dup.csv", id_column="customer_id")
    kept = load_table(tmp_path / "dup.csv", id_column="customer_id", duplicate_ids="last")
    assert len(kept) == len(reference) - 1 and kept.ids.tolist().count("C002") == 1
    assert kept.frame.loc[2, "age"] == reference.loc[3, "age"]  # the last row of C002
    with pytest.raises(ValueError, match="duplicate_ids must be one of"):
        load_table(tmp_path / "dup.csv", id_column="customer_id", duplicate_ids="any")
    inf = reference.assign(spend=reference["spend"].astype(object))
    inf.loc[11, "spend"] = "inf"  # as a spreadsheet exports it
    inf.to_csv(tmp_path / "inf.csv", index=False)
    with pytest.raises(ValueError, match=r"inf.csv': column 'spend' holds 1 infinite value\(s\) "
                       r"\(first at row 11"):  # fmt: skip
        load_table(tmp_path / "inf.csv", id_column="customer_id")


def test_infinities_in_a_matrix_name_column_and_row():
    from deepseg.features.blocks import MatrixBlock

    X = np.ones((5, 3))
    block = MatrixBlock().fit(X)
    X[3, 2] = np.inf
    with pytest.raises(ValueError, match=r"the first, infinite, in column 2 at row 3"):
        block.transform(X)
    with pytest.raises(ValueError, match=r"in column 2 at row 3"):
        MatrixBlock().fit(X)
