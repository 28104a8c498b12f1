"""Issue 34, point 2: one job loop (``run_jobs``) under train, benchmark, suite and choose-k.

The loop's contract (lock -> finished record or fit -> store an ok row -> next job, drawn only
then), the store asked before the expensive steps (a benchmark whose jobs all finished builds no
features; ``n_clusters=auto`` takes choose-k's k from the store), and choose-k's seeds as jobs.
The kill -9 tests of each command are in ``tests/cli/test_checkpoint_cli.py``."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from deepseg.jobs import CODE_VERSION, JobStore, Work, run_jobs
from deepseg.tasks.benchmark import run_benchmark
from deepseg.tasks.choose_k import final_recommendation, result_of, result_row, run_choose_k
from tests.tasks.test_job_store import compose_config, ran


def test_the_loop_stores_ok_rows_draws_jobs_one_at_a_time_and_reruns_on_request(tmp_path):
    store = JobStore(tmp_path / "store", resume=True)
    jobs = [JobStore.job({"i": i}) for i in range(3)]
    fitted: list[int] = []
    drawn: list[int] = []

    def fit(i: int):
        def run(job):
            fitted.append(i)
            status = "failed" if i == 1 else "ok"
            return {"status": status, "i": i}, np.arange(4) % 2

        return run

    def works(rerun: int | None = None):
        for i, job in enumerate(jobs):
            drawn.append(i)
            yield Work(job, f"job {i}", fit(i), rerun=i == rerun)

    loop = run_jobs(store, works(), tmp_path / "run1")
    first = next(loop)
    assert drawn == [0] and fitted == [0]  # the next job is drawn only after this one is done
    rows = [first, *loop]
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert store.load(jobs[0]) and store.load(jobs[1]) is None and store.load(jobs[2])
    np.testing.assert_array_equal(store.stored_labels(jobs[2], 4), np.arange(4) % 2)

    fitted.clear()
    again = list(run_jobs(store, works(), tmp_path / "run2"))
    assert fitted == [1]  # only the failed job runs again
    assert again[0]["resumed_from"] == again[2]["resumed_from"] == str(tmp_path / "run1")
    fitted.clear()
    list(run_jobs(store, works(rerun=2), tmp_path / "run3"))
    assert fitted == [1, 2]  # rerun: a finished job whose fit is needed runs anyway


def test_a_fit_that_raises_stores_nothing_and_frees_its_lock(tmp_path):
    store = JobStore(tmp_path / "store", resume=True)
    job = JobStore.job({"i": 0})

    def boom(job):
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        list(run_jobs(store, [Work(job, "job", boom)], tmp_path))
    assert store.load(job) is None
    row = next(run_jobs(store, [Work(job, "job", lambda job: ({"status": "ok"}, None))], tmp_path))
    assert row["status"] == "ok" and store.load(job) is not None  # the lock was free


def test_the_code_version_is_part_of_every_job(monkeypatch):
    job = JobStore.job({"method": "kmeans"})
    monkeypatch.setitem(CODE_VERSION, "deepseg", "0.0.0-other")
    other = JobStore.job({"method": "kmeans"})
    assert other.key != job.key and other.config_hash == job.config_hash


def test_a_finished_benchmark_builds_no_features_and_serves_choose_k(tmp_path, caplog):
    store = tmp_path / "jobs"
    base = ["data.n_samples=300", "methods=[kmeans,gmm]", "seeds=[0]", "n_clusters=auto",
            "features.text.method=tfidf",
            "k_selection.k_range=[2,5]", "k_selection.n_bootstrap=2",
            f"resume_dir={store}"]  # fmt: skip
    first = run_benchmark(compose_config("benchmark", *base), tmp_path / "run1")
    assert len(list(store.glob("*.json"))) == 3  # choose-k and the two methods
    caplog.set_level(logging.INFO, logger="deepseg")
    caplog.clear()  # the first run's lines, where another test left the level at INFO
    again = run_benchmark(compose_config("benchmark", *base), tmp_path / "run2")
    assert ran(again) == []
    assert "choose-k (seed 0): already done" in caplog.text
    assert "building features" not in caplog.text  # the store was asked first
    pd.testing.assert_frame_equal(first[["acc", "n_clusters"]], again[["acc", "n_clusters"]])
    for name in ("choose_k.csv", "choose_k.json"):
        assert (tmp_path / "run1" / name).read_bytes() == (tmp_path / "run2" / name).read_bytes()


def test_choose_k_seeds_are_jobs_of_the_store(tmp_path, caplog):
    store = tmp_path / "jobs"
    overrides = ["data.n_samples=300", "seeds=[0,1]", "k_selection.k_range=[2,5]",
                 "features.text.method=tfidf",  # the store is under test, not the encoder
                 "k_selection.n_bootstrap=2", f"resume_dir={store}"]  # fmt: skip
    k, results = run_choose_k(compose_config("choose_k", *overrides), tmp_path / "run1")
    assert len(list(store.glob("*.json"))) == 2
    caplog.set_level(logging.INFO, logger="deepseg")
    caplog.clear()
    k2, results2 = run_choose_k(compose_config("choose_k", *overrides, "seeds=[0,1,2]"),
                                tmp_path / "run2")  # fmt: skip
    assert caplog.text.count("not run again") == 2 and "Running choose-k (seed 2)" in caplog.text
    assert len(list(store.glob("*.json"))) == 3
    assert k2 == final_recommendation(results2) and k == final_recommendation(results)
    for a, b in zip(results, results2):
        pd.testing.assert_frame_equal(a.table, b.table)
        assert (a.choices, a.recommended, a.reasons) == (b.choices, b.recommended, b.reasons)
    table1 = pd.read_csv(tmp_path / "run1" / "choose_k.csv")
    table2 = pd.read_csv(tmp_path / "run2" / "choose_k.csv")
    pd.testing.assert_frame_equal(table1, table2[table2["seed"] < 2])
    summary = json.loads((tmp_path / "run2" / "recommendation.json").read_text())
    assert set(summary["seeds"]) == {"0", "1", "2"}


def test_a_choose_k_result_round_trips_through_its_stored_row():
    from deepseg.insight.choose_k import ChooseKResult

    table = pd.DataFrame({"k": [2, 3, 4], "gap": [0.1, np.nan, 0.3], "stability": [1 / 3] * 3})
    result = ChooseKResult(table, {"gap": 4, "knee": 3}, 3, ["because"])
    row = json.loads(json.dumps(result_row(result, 0), default=str).replace("NaN", "null"))
    back = result_of(row)
    pd.testing.assert_frame_equal(back.table, table)
    assert (back.choices, back.recommended, back.reasons) == ({"gap": 4, "knee": 3}, 3,
                                                             ["because"])  # fmt: skip


def test_second_view_enabled_on_other_features_is_refused_even_when_the_jobs_are_stored(tmp_path):
    base = ["data.n_samples=200", "methods=[kmeans]", "seeds=[0]", "features.text.method=tfidf",
            f"resume_dir={tmp_path / 'jobs'}"]  # fmt: skip
    run_benchmark(compose_config("benchmark", *base), tmp_path / "run1")
    with pytest.raises(ValueError, match=r"second_view\.enabled=true needs text features"):
        run_benchmark(compose_config("benchmark", *base, "second_view.enabled=true"),
                      tmp_path / "run2")  # fmt: skip
    assert not (tmp_path / "run2" / "results.csv").exists()


def test_the_job_identity_says_whether_text_method_auto_can_embed_sentences(monkeypatch):
    from deepseg import jobs as store

    features = {"text": {"method": "auto", "model": None, "precision": "float32"}}
    monkeypatch.setattr(store, "_sentence_model_available", lambda model: True)
    with_model = store.features_identity(features)
    monkeypatch.setattr(store, "_sentence_model_available", lambda model: False)
    without = store.features_identity(features)
    assert with_model != without and features["text"] == {
        "method": "auto", "model": None, "precision": "float32"
    }  # fmt: skip
    fixed = {"text": {"method": "tfidf"}}
    assert store.features_identity(fixed) == fixed  # an explicit method is what it says
