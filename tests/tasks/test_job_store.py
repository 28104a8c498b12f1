"""One job store for every command: benchmark and suite jobs resume like train's, and a changed
option or input runs the jobs it affects again."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from deepseg.cli.common import config_dir
from deepseg.tasks.benchmark import run_benchmark
from deepseg.tasks.store import JobStore
from deepseg.tasks.suite import run_suite
from tests.tasks.test_suite import COMMAND as SUITE_COMMAND
from tests.tasks.test_suite import write_tiny_suite

SCORES = ["acc", "nmi", "ari", "silhouette", "davies_bouldin", "calinski_harabasz"]


def compose_config(name: str, *overrides: str):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))


def ran(results: pd.DataFrame) -> list[tuple[str, int]]:
    """The (method, seed) jobs a run fitted (not taken from the store)."""
    fresh = results[results["resumed_from"].fillna("").astype(str) == ""]
    return sorted(zip(fresh["method"], fresh["seed"].astype(int)))


def test_the_store_keys_jobs_by_config_and_input_contents():
    a = JobStore.job({"method": "kmeans", "seed": 0}, {"data.path": {"sha256": "1" * 64}})
    assert a == JobStore.job({"seed": 0, "method": "kmeans"}, {"data.path": {"sha256": "1" * 64}})
    other_input = JobStore.job(
        {"method": "kmeans", "seed": 0}, {"data.path": {"sha256": "2" * 64}}
    )
    assert other_input.key != a.key and other_input.config_hash == a.config_hash
    assert JobStore.job({"method": "kmeans", "seed": 1}).config_hash != a.config_hash


def test_a_benchmark_rerun_takes_finished_jobs_and_runs_changed_ones(tmp_path, caplog):
    store = tmp_path / "jobs"
    base = ["data.n_samples=300", "methods=[kmeans,gmm]", "seeds=[0,1]", f"resume_dir={store}"]
    first = run_benchmark(compose_config("benchmark", *base), tmp_path / "run1")
    assert ran(first) == [("gmm", 0), ("gmm", 1), ("kmeans", 0), ("kmeans", 1)]
    assert first["job_hash"].nunique() == 4 and len(list(store.glob("*.json"))) == 4

    caplog.set_level(logging.INFO, logger="deepseg.tasks.store")
    again = run_benchmark(compose_config("benchmark", *base), tmp_path / "run2")
    assert ran(again) == []
    assert (again["resumed_from"] == str(tmp_path / "run1")).all()
    assert caplog.text.count("not run again") == 4
    pd.testing.assert_frame_equal(first[SCORES], again[SCORES])
    on_disk = pd.read_csv(tmp_path / "run2" / "results.csv")
    assert on_disk["job_hash"].tolist() == first["job_hash"].tolist()

    # a changed option of one method runs that method's jobs, and only those
    changed = [*base, "baseline.gmm.n_init=2"]
    third = run_benchmark(compose_config("benchmark", *changed), tmp_path / "run3")
    assert ran(third) == [("gmm", 0), ("gmm", 1)]
    # an option every job shares (the features) runs them all; the requested seeds decide
    # which jobs there are, not what a job computes
    scaled = [*base[:2], "seeds=[1]", f"resume_dir={store}", "features.numeric.log1p=false"]
    fourth = run_benchmark(compose_config("benchmark", *scaled), tmp_path / "run4")
    assert ran(fourth) == [("gmm", 1), ("kmeans", 1)]
    one_seed = compose_config("benchmark", *base[:2], "seeds=[1]", f"resume_dir={store}")
    same_seed = run_benchmark(one_seed, tmp_path / "run5")
    assert ran(same_seed) == []


def test_a_benchmark_on_changed_file_contents_runs_again(tmp_path, caplog):
    path = tmp_path / "t.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)}).to_csv(path, index=False)
    overrides = ["data=table", f"data.path={path}", "methods=[kmeans]", "n_clusters=3",
                 f"resume_dir={tmp_path / 'jobs'}"]  # fmt: skip
    assert ran(run_benchmark(compose_config("benchmark", *overrides), tmp_path / "r1")) == [
        ("kmeans", 0), ("kmeans", 1)
    ]  # fmt: skip
    pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)}).to_csv(path, index=False)
    caplog.set_level(logging.INFO, logger="deepseg.tasks.store")
    assert len(ran(run_benchmark(compose_config("benchmark", *overrides), tmp_path / "r2"))) == 2
    assert "the input changed since the run in" in caplog.text


def test_resume_false_runs_every_job_again(tmp_path):
    base = ["data.n_samples=300", "methods=[kmeans]", "seeds=[0]", f"resume_dir={tmp_path / 'j'}"]
    run_benchmark(compose_config("benchmark", *base), tmp_path / "a")
    again = run_benchmark(compose_config("benchmark", *base, "resume=false"), tmp_path / "b")
    assert ran(again) == [("kmeans", 0)]


def test_a_suite_rerun_with_other_options_does_not_serve_the_old_rows(tmp_path):
    write_tiny_suite(tmp_path / "data")
    common = [*SUITE_COMMAND, f"paths.data_dir={tmp_path / 'data'}", "seeds=[0,1]",
              f"resume_dir={tmp_path / 'jobs'}"]  # fmt: skip
    run = tmp_path / "run"
    first = run_suite(compose_config("suite", *common), run).results
    ok = first[first["status"] == "ok"]
    assert len(ran(ok)) == 8  # 2 datasets x 2 methods x 2 seeds
    # the same folder, another option: the old results.csv holds every (method, seed) asked
    # for, but of other options; the jobs of the changed method run again
    second = run_suite(compose_config("suite", *common, "baseline.kmeans.n_init=3"), run).results
    ok = second[second["status"] == "ok"]
    assert ran(ok) == [("kmeans", 0), ("kmeans", 0), ("kmeans", 1), ("kmeans", 1)]
    rows = pd.read_csv(run / "wine" / "results.csv")
    kmeans = rows[rows["method"] == "kmeans"]
    assert kmeans["config"].str.contains('"n_init": 3').all()
    # and the same command again runs nothing
    third = run_suite(compose_config("suite", *common, "baseline.kmeans.n_init=3"), run).results
    assert ran(third[third["status"] == "ok"]) == []


@pytest.mark.parametrize("report", [False, True])
def test_the_report_fit_always_runs(tmp_path, report):
    base = ["data.n_samples=300", "methods=[kmeans,gmm]", "seeds=[0]",
            f"resume_dir={tmp_path / 'j'}"]  # fmt: skip
    run_benchmark(compose_config("benchmark", *base), tmp_path / "a")
    extra = ["report=default", "report.method=gmm", "report.map=pca"] if report else []
    again = run_benchmark(compose_config("benchmark", *base, *extra), tmp_path / "b")
    assert ran(again) == ([("gmm", 0)] if report else [])
    assert (tmp_path / "b" / "segments.csv").exists() == report
