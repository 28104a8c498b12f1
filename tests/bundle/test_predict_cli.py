"""``deepseg-predict`` and ``deepseg-embed``: outputs, errors, chunking, no clobbering."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from deepseg.cli.embed import run as embed
from deepseg.cli.predict import run as predict
from tests.cli.scripts import run_in_process

# Values read back from a CSV written with %.7g differ from the float32 ones by up to half a
# unit in the 7th significant digit (5e-7 relative), plus float32 rounding of other summation
# orders (a few eps = a few 1e-7): 2e-6 covers both with room.
CSV_RTOL = 2e-6


@pytest.fixture
def new_csv(trained, tmp_path):
    path = tmp_path / "new.csv"
    trained.frame.to_csv(path, index=False)
    return path


def test_console_script_writes_id_segment_confidence(trained, new_csv, tmp_path):
    out = tmp_path / "assignments.csv"
    result = subprocess.run(
        ["deepseg-predict", f"bundle={trained.bundle('dec')}", f"input={new_csv}",
         f"output={out}", "embedding=true"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["id", "segment", "confidence", "z_0", "z_1", "z_2", "z_3"]
    assert frame["id"].tolist() == trained.frame["customer_id"].tolist()
    np.testing.assert_array_equal(frame["segment"], trained.estimators["dec"].labels_)
    proba = trained.estimators["dec"].predict_proba(trained.X)
    np.testing.assert_allclose(frame["confidence"], proba.max(axis=1), rtol=1e-6)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_progress_lines_in_the_log_off_a_terminal(trained, tmp_path, suffix):
    """stderr is a pipe: log lines instead of a bar, with the total and an ETA when the input
    says how many rows it has (Parquet metadata), and the rows done otherwise (CSV)."""
    path = tmp_path / f"new{suffix}"
    if suffix == ".parquet":
        trained.frame.to_parquet(path)
    else:
        trained.frame.to_csv(path, index=False)
    out = tmp_path / "out.csv"
    result = subprocess.run(
        ["deepseg-predict", f"bundle={trained.bundle('gmm')}", f"input={path}",
         f"output={out}", "chunk_size=100"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if "out.csv: " in line]
    if suffix == ".parquet":
        counts = ["100/300 rows (33%)", "200/300 rows (67%)", "300/300 rows (100%)"]
        assert [c in line for c, line in zip(counts, lines)] == [True] * 3 and len(lines) == 3
        assert all("ETA" in line for line in lines)
    else:
        assert [line.split("out.csv: ")[1].split(",")[0] for line in lines] == [
            "100 rows done", "200 rows done", "300 rows done"
        ]  # fmt: skip
    assert "\r" not in result.stderr  # no bar
    assert json.loads(result.stdout)["rows"] == 300  # stdout holds the summary only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new" + suffix, "out.csv"]


def test_missing_columns_exit_2_with_their_names(trained, tmp_path):
    bad = tmp_path / "bad.csv"
    # two columns the bundle segments on (profile-only columns are not asked for)
    assert not {"age", "tenure_months"} & set(trained.pipeline.profile_only_)
    trained.frame.drop(columns=["age", "tenure_months"]).to_csv(bad, index=False)
    out = tmp_path / "out.csv"
    # in this process: the exit code and the stderr line are the command's, not the process's
    result = run_in_process(
        "deepseg-predict", f"bundle={trained.bundle('dec')}", f"input={bad}", f"output={out}",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepseg-predict: error: ")
    assert "column(s) ['tenure_months', 'age'] not found" in lines[0]  # in the pipeline's order
    assert not out.exists()


def test_a_failed_run_keeps_the_previous_output(trained, tmp_path, capsys):
    out = tmp_path / "out.csv"
    out.write_text("previous run\n")
    # text in a numeric column, only in the last chunk: the failure comes mid-stream
    frame = trained.frame.astype({"age": object})
    frame.loc[290, "age"] = "forty"
    bad = tmp_path / "late_error.csv"
    frame.to_csv(bad, index=False)
    args = [f"bundle={trained.bundle('dec')}", f"input={bad}", f"output={out}", "chunk_size=50"]
    with pytest.raises(SystemExit) as info:
        predict(args)
    assert info.value.code == 2
    assert "'age' is used as numeric but holds text" in capsys.readouterr().err
    assert out.read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late_error.csv", "out.csv"]


def test_chunked_output_equals_one_shot_output(trained, new_csv, tmp_path):
    one = tmp_path / "one.csv"
    chunked = tmp_path / "chunked.csv"
    common = [f"bundle={trained.bundle('idec')}", f"input={new_csv}", "embedding=true"]
    predict([*common, f"output={one}", "chunk_size=1000000"])
    predict([*common, f"output={chunked}", "chunk_size=37"])
    a, b = pd.read_csv(one), pd.read_csv(chunked)
    assert len(a) == 300
    pd.testing.assert_frame_equal(a[["id", "segment"]], b[["id", "segment"]])
    # other batch sizes take other BLAS paths (sums in another order), and both files hold 7
    # significant digits (%.7g): one unit in the 7th digit is up to 1e-6 relative; twice that
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=CSV_RTOL, atol=1e-6)


def test_row_numbers_run_on_across_chunks_without_an_id_column(trained, tmp_path):
    path = tmp_path / "no_ids.parquet"
    trained.frame.drop(columns=["customer_id"]).to_parquet(path)
    out = tmp_path / "out.csv"
    predict([f"bundle={trained.bundle('gmm')}", f"input={path}", f"output={out}", "chunk_size=64"])
    frame = pd.read_csv(out)
    assert frame["id"].tolist() == list(range(300))
    np.testing.assert_array_equal(frame["segment"], trained.estimators["gmm"].labels_)


def test_embed_writes_embeddings_only(trained, new_csv, tmp_path):
    out = tmp_path / "z.csv"
    embed([f"bundle={trained.bundle('vade')}", f"input={new_csv}", f"output={out}"])
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["id", "z_0", "z_1", "z_2", "z_3"]
    np.testing.assert_allclose(
        frame[["z_0", "z_1", "z_2", "z_3"]], trained.estimators["vade"].transform(trained.X),
        rtol=CSV_RTOL, atol=1e-6,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bundle=b", "input=i"], "Missing option(s) ['output']"),
        (["bundle=b", "input=i", "output=o.csv", "colour=red"], "Unknown option 'colour'"),
        (["bundle=b", "input=i", "output=o.csv", "bundel=x"], "(did you mean 'bundle'?)"),
        (["bundle=b", "input=i", "output=o.csv", "chunk_size=abc"], "'chunk_size' must be an int"),
        (["bundle=b", "input=i", "output=o.csv", "drift=maybe"], "must be true or false"),
        (["bundle=b", "input=i", "output=o.parquet"], "must be a .csv file"),
    ],
)
def test_bad_arguments(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        predict(args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
