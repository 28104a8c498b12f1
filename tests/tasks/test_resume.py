"""Resume sees the data: the same command on changed file contents trains again; the store is
shared safely by concurrent sweeps."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepseg.data.synthetic import make_synthetic_customers
from deepseg.tasks.train import train, train_job
from tests.cli.scripts import console_script
from tests.tasks.test_train import compose_train


def customers_csv(path: Path, n: int, random_state: int = 0) -> None:
    ds = make_synthetic_customers(n_samples=n, random_state=random_state)
    frame = ds.frame.copy()
    frame.insert(0, "customer_id", ds.ids)
    frame.to_csv(path, index=False)


def table_cfg(path: Path, jobs: Path):
    return compose_train(
        "kmeans",
        "data=table",
        f"data.path={path}",
        "data.id_column=customer_id",
        "n_clusters=4",
        f"resume_dir={jobs}",
    )


def test_replaced_file_contents_train_again(tmp_path, caplog):
    data, jobs = tmp_path / "monthly.csv", tmp_path / "jobs"
    customers_csv(data, 300)
    first = train(table_cfg(data, jobs), tmp_path / "run1")
    assert first["n_samples"] == 300 and first["resumed_from"] == ""
    # the same command on the same bytes is not run again, and the log says why
    with caplog.at_level(logging.INFO, logger="deepseg.jobs"):
        again = train(table_cfg(data, jobs), tmp_path / "run2")
    assert again["resumed_from"] == str(tmp_path / "run1")
    assert "same config, same input" in caplog.text
    # next month: the same path, more rows
    customers_csv(data, 600, random_state=1)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deepseg.jobs"):
        new = train(table_cfg(data, jobs), tmp_path / "run3")
    assert "the input changed since the run in" in caplog.text
    assert new["resumed_from"] == "" and new["n_samples"] == 600
    assignments = pd.read_csv(tmp_path / "run3" / "assignments.csv")
    assert len(assignments) == 600
    assert (tmp_path / "run3" / "bundle" / "manifest.json").is_file()
    assert pd.read_csv(tmp_path / "run3" / "results.csv").loc[0, "n_samples"] == 600
    # the records are strict JSON and name the input they were made from
    for record in jobs.glob("*.json"):
        parsed = json.loads(record.read_text(), parse_constant=lambda c: pytest.fail(c))
        assert parsed["inputs"]["data.path"]["n_files"] == 1


def test_job_hash_follows_the_contents_not_the_modification_time(tmp_path):
    data = tmp_path / "t.csv"
    customers_csv(data, 50)
    cfg = table_cfg(data, tmp_path / "jobs")
    key = train_job(cfg).key
    os.utime(data, (1, 1))  # a copy or a touch: the same data
    assert train_job(cfg).key == key
    text = data.read_text().splitlines()
    data.write_text("\n".join([*text[:-1], text[-1].replace(",", ",9", 1)]) + "\n")
    assert train_job(cfg).key != key


@pytest.mark.slow
def test_two_sweeps_started_together_run_every_job_once(tmp_path):
    """Acceptance 6: two ``deepseg-train -m`` on one resume store, started at the same moment."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    store = tmp_path / "jobs"
    seeds = [0, 1, 2, 3]

    def sweep(name: str) -> subprocess.Popen:
        args = [
            "-m", "model=kmeans", "data.n_samples=200", f"seed={','.join(map(str, seeds))}",
            f"resume_dir={store}", f"paths.output_dir={tmp_path / 'out'}",
            f"hydra.sweep.dir={tmp_path / name}",
        ]  # fmt: skip
        return subprocess.Popen(
            [console_script("deepseg-train"), *args], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    procs = [sweep("a"), sweep("b")]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    rows = pd.concat(pd.read_csv(f) for f in tmp_path.glob("[ab]/*/results.csv"))
    assert len(rows) == 2 * len(seeds)
    ran = rows[rows["resumed_from"].fillna("") == ""]
    assert sorted(ran["seed"]) == seeds, rows[["seed", "resumed_from"]]  # each job once
    records = sorted(store.glob("*.json"))
    assert len(records) == len(seeds)
    for record in records:
        parsed = json.loads(record.read_text(), parse_constant=lambda c: pytest.fail(c))
        assert parsed["row"]["status"] == "ok"
    # the job that resumed got the row of the one that ran: the same labels' scores
    by_seed = rows.groupby("seed")["silhouette"].agg(lambda s: np.ptp(s.to_numpy()))
    assert (by_seed == 0).all()


def test_deep_jobs_checkpoint_under_their_hash_and_clean_up(tmp_path, monkeypatch):
    """Issue 13, acceptance 2 in-process: where a train job's checkpoints go, that they do not
    enter the job hash, and when they are removed."""
    from deepseg.deep.checkpoint import PhaseCheckpoint
    from tests.tasks.test_train import SMALL, TINY_AE

    jobs = tmp_path / "jobs"
    overrides = [*SMALL, *TINY_AE, "model.epochs=2", "logger=none", f"resume_dir={jobs}"]
    cfg = compose_train("dec", *overrides)
    key = train_job(cfg).key
    assert train_job(compose_train("dec", *overrides, "checkpoint.every_n_epochs=1")).key == key
    written = []
    real_save = PhaseCheckpoint.save

    def save(self, trainer, epochs_done, done):
        path = real_save(self, trainer, epochs_done, done)
        written.append((path, path.is_file()))
        return path

    monkeypatch.setattr(PhaseCheckpoint, "save", save)
    assert train(cfg, tmp_path / "run1")["status"] == "ok"
    # one at the end of each phase (the default interval is 60 s)
    assert [p.name.split("-")[0] for p, _ in written] == ["pretrain", "cluster"]
    assert all(p.parent == jobs / key / "checkpoints" and ok for p, ok in written)
    assert not (jobs / key).exists()  # the record answers re-runs now
    # resume=false starts over: checkpoints of an earlier, killed attempt go first
    stale = jobs / key / "checkpoints" / "cluster-0123456789ab-e00001.ckpt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    written.clear()
    assert train(compose_train("dec", *overrides, "resume=false"), tmp_path / "run2")["status"]
    assert not (jobs / key).exists() and len(written) == 2
    # checkpoint.enabled=false: none
    written.clear()
    off = compose_train("dec", *overrides, "resume=false", "checkpoint.enabled=false")
    train(off, tmp_path / "run3")
    assert written == []
    # the bundle does not keep the directory
    manifest = json.loads((tmp_path / "run1" / "bundle" / "manifest.json").read_text())
    assert str(jobs) not in json.dumps(manifest)
