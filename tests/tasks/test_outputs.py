"""What deepseg writes is shareable and strict: with umask 022 every output file is 0644 (and
every directory 0755), and every JSON file parses with a strict parser (no bare NaN)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from deepseg.tasks.predict import run_predict
from deepseg.tasks.train import train
from tests.tasks.test_resume import customers_csv, table_cfg


def _strict(path) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{path}: non-standard JSON constant {constant}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_train_and_predict_outputs_honour_the_umask_and_are_strict_json(tmp_path, umask_022):
    data = tmp_path / "customers.csv"
    customers_csv(data, 200)  # no label column: acc, nmi, ... are NaN in the row and manifest
    run, jobs = tmp_path / "run", tmp_path / "jobs"
    row = train(table_cfg(data, jobs), run)
    assert row["status"] == "ok" and row["acc"] != row["acc"]  # NaN
    out = tmp_path / "pred" / "assignments.csv"
    run_predict(run / "bundle", data, out, drift=True)
    files = [p for root in (run, jobs, out.parent) for p in root.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {
        "results.csv", "assignments.csv", "config.yaml", "manifest.json", "weights.safetensors",
        "pipeline.npz", "assignments.drift.json", "assignments.drift.md",
    }  # fmt: skip
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert set(modes.values()) == {0o644}, modes
    assert stat.S_IMODE((run / "bundle").stat().st_mode) == 0o755
    jsons = [p for p in files if p.suffix == ".json"]
    assert len(jsons) == 3  # the manifest, the job record, the drift report
    for path in jsons:
        _strict(path)
    record = _strict(next(jobs.glob("*.json")))
    assert record["row"]["acc"] is None  # NaN written as null
