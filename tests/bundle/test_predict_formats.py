"""``deepseg-predict`` reads what training reads (every CSV encoding, separator and line
ending, Excel, Parquet, names with glob characters), and a killed predict leaves nothing behind
once the next run is done."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from deepseg.tasks.predict import run_predict
from tests.data.test_formats import CASES, write_formats


@pytest.fixture(scope="module")
def inputs(trained, tmp_path_factory):
    frame = trained.frame.copy()
    # ids that only survive a correct decoding
    frame["customer_id"] = [f"Kunde-Ä{i:03d}" for i in range(len(frame))]
    return frame, write_formats(frame, tmp_path_factory.mktemp("predict_formats"))


@pytest.mark.parametrize("case", CASES)
def test_predict_accepts_every_form(case, inputs, trained, tmp_path):
    frame, paths = inputs
    out = tmp_path / "out.csv"
    summary = run_predict(trained.bundle("dec"), paths[case], out, chunk_size=128)
    assert summary["rows"] == len(frame)
    result = pd.read_csv(out, encoding="utf-8")
    assert result["id"].tolist() == frame["customer_id"].tolist()
    np.testing.assert_array_equal(result["segment"], trained.estimators["dec"].labels_)


def test_a_killed_predict_leaves_no_file_after_the_next_run(trained, tmp_path):
    big = pd.concat([trained.frame] * 200, ignore_index=True)
    big["customer_id"] = np.arange(len(big))
    source = tmp_path / "big.csv"
    big.to_csv(source, index=False)
    out = tmp_path / "out" / "assignments.csv"
    args = [f"bundle={trained.bundle('kmeans')}", f"input={source}", f"output={out}"]
    code = "import sys\nfrom deepseg.cli.predict import main\nsys.argv[1:] = sys.argv[2:]\nmain()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "x", *args, "chunk_size=200"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while not list(out.parent.glob(".assignments.csv.*.tmp")):  # the run is mid-write
            assert proc.poll() is None, "predict ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and len(list(out.parent.iterdir())) == 1  # the partial file
    run_predict(trained.bundle("kmeans"), source, out, chunk_size=10_000)
    assert sorted(p.name for p in out.parent.iterdir()) == ["assignments.csv"]
    assert len(pd.read_csv(out)) == len(big)
