"""Customer features on the DuckDB engine: equal to the pandas reference, engine settings, input.

The pandas implementation that built the features before they moved onto an engine lives on in
``tests/data/reference_transactions.py``, only as the reference these tests compare against.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from deepseg.cli.common import config_dir
from deepseg.data.engine import DuckDBEngine, EngineConfig, InputNotFoundError, read_sql
from deepseg.data.transactions import customer_features, load_transactions, read_transaction_log
from tests.conftest import require_data
from tests.data.features_check import absolute_value_per_customer, assert_same_features
from tests.data.reference_transactions import reference_customer_table
from tests.data.test_transactions import COLUMNS, SMALL_ROWS

LOGGER_NAME = "deepseg.data.transactions"


@pytest.fixture
def small_log() -> pd.DataFrame:
    return pd.DataFrame(SMALL_ROWS, columns=COLUMNS)


# --- identity with the pandas reference ------------------------------------------------------


def test_online_retail_features_equal_the_pandas_reference() -> None:
    """Acceptance 1: same customers, every column within 1e-9 relative, same product text."""
    retail = require_data("online_retail")
    log = read_transaction_log(retail)
    expected = reference_customer_table(log)
    actual = customer_features(retail)  # the 13 gzip CSV parts, read by DuckDB
    assert len(actual) == 4_372
    assert_same_features(actual, expected, monetary_scale=absolute_value_per_customer(log))
    # the identity is not vacuous: the columns vary and the text is there
    assert actual["products_text"].str.len().gt(0).sum() > 4_000
    assert actual["country"].nunique() == 37
    assert actual["frequency"].max() > 200


def test_small_log_equals_the_reference_from_files_and_frames(
    small_log: pd.DataFrame, tmp_path: Path
) -> None:
    expected = reference_customer_table(small_log)
    assert_same_features(customer_features(small_log), expected)
    parts = tmp_path / "parts"
    parts.mkdir()
    small_log.iloc[:5].to_csv(parts / "a.csv.gz", index=False)
    small_log.iloc[5:9].to_parquet(parts / "b.parquet", index=False)
    small_log.iloc[9:].to_csv(parts / "c.csv", index=False)
    assert_same_features(customer_features(parts), expected)  # a directory of mixed parts
    assert_same_features(customer_features([parts / "a.csv.gz", parts / "b.parquet",
                                            parts / "c.csv"]), expected)  # fmt: skip
    by_glob = customer_features(str(parts / "*.csv*"))
    rows = pd.concat([small_log.iloc[:5], small_log.iloc[9:]], ignore_index=True)
    assert_same_features(by_glob, reference_customer_table(rows))


def test_reference_date_custom_columns_and_prefix_match_the_reference(
    small_log: pd.DataFrame,
) -> None:
    log = small_log.rename(columns={"CustomerID": "cust", "InvoiceNo": "inv"})
    log["inv"] = log["inv"].str.replace("C", "X")
    options = {"id_column": "cust", "invoice_column": "inv", "cancel_prefix": "X",
               "reference_date": "2011-01-09 06:00"}  # fmt: skip
    actual = customer_features(log, **options)
    # the reference date falls before some purchases: negative recency, floored like pandas
    assert actual["recency"].min() < 0
    assert_same_features(actual, reference_customer_table(log, **options), id_column="cust")


def test_ids_dates_and_text_edge_cases_match_the_reference() -> None:
    rows = [
        # ids as floats and padded text; tab and double spaces inside descriptions; a purchase
        # before the epoch and one without a date; a description that is only whitespace
        ("1", "A", "Big\tRED  mug ", 1, "1969-12-31 23:30:00", 2.5, " 7.0 ", "UK"),
        ("2", "B", "   ", 2, None, 1.25, "7", "UK"),
        ("3", "A", "big red mug", 1, "2011-03-06 16:00:00", 2.5, "8", "France"),
        ("3", "C", "Zebra", 1, "2011-03-06 15:59:59", 4.0, "8", "Spain"),
        ("C4", "C", "Zebra", -1, "2011-03-07 00:00:00", 4.0, "8", "Spain"),
        (None, "C", "Zebra", 3, "2011-03-08 00:00:01", 4.0, "8", "France"),  # no invoice number
    ]
    log = pd.DataFrame(rows, columns=COLUMNS)
    expected = reference_customer_table(log)
    actual = customer_features(log)
    assert actual["CustomerID"].tolist() == ["7", "8"]
    assert actual.loc[0, "products_text"] == "big red mug"
    assert actual.loc[1, "country"] == "France"  # 2 France rows, 2 Spain: ties alphabetical
    assert_same_features(actual, expected)


# --- engine settings, progress and bad input -------------------------------------------------


def test_engine_settings_reach_duckdb(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    engine = DuckDBEngine(EngineConfig(memory_limit="300MB", threads=1, temp_directory=str(spill)))
    try:
        limit, threads, temp = engine.fetch(
            "SELECT current_setting('memory_limit'), current_setting('threads'), "
            "current_setting('temp_directory')"
        )[0]
    finally:
        engine.close()
    assert limit.replace(" ", "") in {"286.1MiB", "300.0MB"}
    assert threads == 1
    assert Path(temp) == spill and spill.is_dir()
    assert EngineConfig.parse("spark").name == "spark"
    assert EngineConfig.parse({"name": "duckdb", "threads": 2}).threads == 2
    with pytest.raises(ValueError, match=r"engine\.name"):
        EngineConfig.parse("polars")
    with pytest.raises(ValueError, match=r"engine\.threads"):
        EngineConfig.parse({"threads": 0})
    with pytest.raises(ValueError, match="Unknown engine option"):
        EngineConfig.parse({"memory": "4GB"})
    assert "unix_micros" in read_sql("customer_features")


def test_config_instantiates_with_engine_limits(small_log: pd.DataFrame, tmp_path: Path) -> None:
    small_log.to_parquet(tmp_path / "log.parquet", index=False)
    cfg = OmegaConf.load(Path(config_dir()) / "data" / "transactions.yaml")
    cfg.path = str(tmp_path / "log.parquet")
    cfg.engine.memory_limit = "500MB"
    cfg.engine.threads = 1
    cfg.engine.temp_directory = str(tmp_path / "spill")
    dataset = instantiate(cfg)
    assert dataset.ids.tolist() == ["100", "200", "300", "400"]


def test_progress_lines_name_rows_and_customers(
    small_log: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    small_log.to_csv(tmp_path / "log.csv", index=False)
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        load_transactions(tmp_path / "log.csv")
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert any(m.startswith("Reading the transaction log") for m in messages), messages
    assert any("Dropped 2 of 12" in m for m in messages), messages
    assert any(m.startswith("Built 4 customers from 12 transaction rows") for m in messages)


def test_missing_column_names_the_file_and_the_config_key(
    small_log: pd.DataFrame, tmp_path: Path
) -> None:
    small_log.to_csv(tmp_path / "log.csv", index=False)
    with pytest.raises(ValueError, match=r"column 'CustomerId' \(data.id_column\) not found") as e:
        customer_features(tmp_path / "log.csv", id_column="CustomerId")
    assert "log.csv" in str(e.value) and "Did you mean 'CustomerID'?" in str(e.value)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_unparseable_dates_name_column_file_and_row(
    small_log: pd.DataFrame, tmp_path: Path, suffix: str
) -> None:
    small_log.loc[5, "InvoiceDate"] = "5th of May"
    path = tmp_path / f"log{suffix}"
    if suffix == ".csv":
        small_log.to_csv(path, index=False)
    else:
        small_log.to_parquet(path, index=False)
    with pytest.raises(ValueError, match="Column 'InvoiceDate' must hold parseable") as e:
        customer_features(path)
    message = str(e.value)
    assert "'5th of May'" in message and f"log{suffix}" in message and "data row 6" in message
    assert "\n" not in message


def test_text_quantity_names_the_column(small_log: pd.DataFrame, tmp_path: Path) -> None:
    small_log["Quantity"] = small_log["Quantity"].astype(str)
    small_log.loc[3, "Quantity"] = "two"
    small_log.to_csv(tmp_path / "log.csv", index=False)
    with pytest.raises(ValueError, match=r"Column 'Quantity' must hold numbers; 1 value\(s\)"):
        customer_features(tmp_path / "log.csv")


def test_glob_matching_nothing_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"No file matches the pattern .*nothing\*\.parquet") as e:
        customer_features(str(tmp_path / "nothing*.parquet"))
    assert isinstance(e.value, InputNotFoundError | FileNotFoundError)


def test_memory_limit_below_duckdb_needs(small_log: pd.DataFrame, tmp_path: Path) -> None:
    small_log.to_csv(tmp_path / "log.csv", index=False)
    with pytest.raises(ValueError, match=r"engine.memory_limit='1MB' is below what DuckDB needs"):
        customer_features(tmp_path / "log.csv", engine={"memory_limit": "1MB"})
    with pytest.raises(ValueError, match="memory_limit"):
        customer_features(tmp_path / "log.csv", engine={"memory_limit": "lots"})


def test_bad_input_is_one_line_and_exit_2_on_the_command_line(
    small_log: pd.DataFrame, tmp_path: Path
) -> None:
    """Acceptance 4 through ``deepseg-benchmark data=transactions``: exit 2, one error line.

    Run in this process (:func:`tests.cli.scripts.run_in_process`: the exit code and stderr a
    process would give); that a real process exits 2 is tested in ``tests/cli``."""
    from tests.cli.scripts import run_in_process

    small_log.to_csv(tmp_path / "log.csv", index=False)
    bad_dates = small_log.copy()
    bad_dates.loc[5, "InvoiceDate"] = "5th of May"
    bad_dates.to_csv(tmp_path / "bad_dates.csv", index=False)
    cases = {
        "missing column": (["data.path=" + str(tmp_path / "log.csv"), "data.id_column=Cust"],
                           "column 'Cust' (data.id_column) not found"),
        "bad dates": (["data.path=" + str(tmp_path / "bad_dates.csv")],
                      "Column 'InvoiceDate' must hold parseable"),
        "empty glob": ([f"data.path='{tmp_path / 'nothing*.parquet'}'"], "No file matches"),
        "memory limit": (["data.path=" + str(tmp_path / "log.csv"),
                          "data.engine.memory_limit=1MB"], "engine.memory_limit='1MB' is below"),
    }  # fmt: skip
    procs = {
        name: run_in_process(
            "deepseg-benchmark",
            "data=transactions",
            "methods=[kmeans]",
            *args,
            f"hydra.run.dir={tmp_path / name.replace(' ', '_')}",
            cwd=tmp_path,
        )
        for name, (args, _) in cases.items()
    }
    for name, proc in procs.items():
        lines = [x for x in proc.stderr.splitlines() if x.startswith("deepseg-benchmark: error:")]
        assert proc.returncode == 2, (name, proc.stderr[-2000:])
        assert len(lines) == 1 and cases[name][1] in lines[0], (name, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, name
