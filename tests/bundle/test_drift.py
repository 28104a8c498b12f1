"""The drift check: a copy of the training data is stable, a shifted column is flagged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepseg.drift import DriftAccumulator, fingerprint, psi
from deepseg.tasks.predict import run_predict

SHIFTED = "total_spend"


@pytest.fixture
def new_data(trained, tmp_path):
    same = tmp_path / "same.csv"
    trained.frame.to_csv(same, index=False)
    shifted = tmp_path / "shifted.csv"
    trained.frame.assign(**{SHIFTED: trained.frame[SHIFTED] * 3}).to_csv(shifted, index=False)
    return same, shifted


def test_a_copy_of_the_training_data_shows_no_drift(trained, new_data, tmp_path):
    summary = run_predict(
        trained.bundle("dec"), new_data[0], tmp_path / "same_out.csv", drift=True, chunk_size=70
    )
    report = json.loads((tmp_path / "same_out.drift.json").read_text())
    assert summary["resegment_advised"] is False and report["drifted_columns"] == []
    assert max(r["psi"] for r in report["columns"]) < 1e-3
    assert report["segments"]["psi"] < 1e-3
    assert (tmp_path / "same_out.drift.md").read_text().startswith("# Drift report")


def test_a_feature_scaled_by_three_is_flagged_on_that_feature(trained, new_data, tmp_path):
    summary = run_predict(
        trained.bundle("dec"), new_data[1], tmp_path / "shift_out.csv", drift=True, chunk_size=70
    )
    report = json.loads((tmp_path / "shift_out.drift.json").read_text())
    assert report["drifted_columns"] == [SHIFTED]
    by_column = {r["column"]: r for r in report["columns"]}
    assert by_column[SHIFTED]["psi"] > 0.2 and by_column[SHIFTED]["level"] == "significant"
    assert all(r["psi"] < 1e-3 for c, r in by_column.items() if c != SHIFTED)
    assert summary["resegment_advised"] is True
    assert f"column '{SHIFTED}'" in " ".join(report["reasons"])


def test_categorical_shift_and_chunking_do_not_change_counts(trained):
    roles = trained.dataset.roles
    fp = fingerprint(trained.dataset.frame, numeric=roles.numeric, categorical=roles.categorical)
    whole = DriftAccumulator(fp, roles.numeric, roles.categorical)
    whole.update(trained.dataset.frame)
    chunked = DriftAccumulator(fp, roles.numeric, roles.categorical)
    for start in range(0, 300, 64):
        chunked.update(trained.dataset.frame.iloc[start : start + 64])
    assert whole.report()["columns"] == chunked.report()["columns"]
    moved = trained.dataset.frame.assign(channel="store")
    acc = DriftAccumulator(fp, roles.numeric, roles.categorical)
    acc.update(moved)
    assert acc.report()["drifted_columns"] == ["channel"]


def test_psi_values():
    assert psi([0.25] * 4, [0.25] * 4) == 0.0
    assert psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.1 * np.log(1.2) + 0.1 * np.log(1.25))
