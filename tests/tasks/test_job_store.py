"""One job store for every command: benchmark and suite jobs resume like train's, and a changed
option or input runs the jobs it affects again."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from deepseg.cli.common import config_dir
from deepseg.jobs import JobStore
from deepseg.tasks.benchmark import run_benchmark
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

    caplog.set_level(logging.INFO, logger="deepseg.jobs")
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
    caplog.set_level(logging.INFO, logger="deepseg.jobs")
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


# auto's candidates restricted to kmeans and gmm; no consensus, so that nothing else fits a
# K-Means (the spies below catch any candidate fit)
AUTO_OF_TWO = [
    "model.auto.consensus=false",
    *[
        f"model.auto.candidates.{name}=null"
        for name in ("agglomerative", "spectral", "ae_kmeans", "dec", "idec", "n2d")
    ],
]


def _no_fit(*args, **kwargs):
    raise AssertionError("a stored candidate was fitted")


def _stored_labels(store, results: pd.DataFrame, method: str) -> np.ndarray:
    key = results.set_index("method").loc[method, "job_hash"]
    return np.load(store / f"{key}.labels.npy")


def test_auto_takes_its_stored_candidates_from_the_store_without_fitting_them(
    tmp_path, caplog, monkeypatch
):
    store = tmp_path / "jobs"
    base = ["data.n_samples=300", "seeds=[0]", f"resume_dir={store}", *AUTO_OF_TWO]
    first = run_benchmark(
        compose_config("benchmark", *base, "methods=[kmeans,gmm]"), tmp_path / "a"
    )
    # every finished job keeps its partition beside its record
    for method in ("kmeans", "gmm"):
        assert len(_stored_labels(store, first, method)) == 300

    from sklearn.cluster import KMeans

    from deepseg.baselines import GMMClusterer

    monkeypatch.setattr(KMeans, "fit", _no_fit)
    monkeypatch.setattr(GMMClusterer, "fit", _no_fit)
    caplog.set_level(logging.INFO)
    second = run_benchmark(
        compose_config("benchmark", *base, "methods=[kmeans,gmm,auto]"), tmp_path / "b"
    )
    assert (second["status"] == "ok").all(), second["error"].tolist()
    assert ran(second) == [("auto", 0)]
    row = second.set_index("method").loc["auto"]
    selection = json.loads(row["auto_selection"])
    assert selection["reused"] == ["kmeans", "gmm"] and selection["failed"] == {}
    for method in ("kmeans", "gmm"):
        key = first.set_index("method").loc[method, "job_hash"]
        assert selection["served"][method] == f"the job store (job {key})"
        assert (
            f"auto: candidate {method} served from the job store (job {key}), not refitted"
            in caplog.text
        )
    assert "auto: candidate kmeans fitted" not in caplog.text
    assert "auto: candidate gmm fitted" not in caplog.text
    monkeypatch.undo()

    # auto alone, fitting its candidates in a fresh store: the same choice and labels
    alone_store = tmp_path / "fresh"
    alone = run_benchmark(
        compose_config(
            "benchmark", *base[:2], *AUTO_OF_TWO, f"resume_dir={alone_store}", "methods=[auto]"
        ),
        tmp_path / "c",
    )  # fmt: skip
    fresh = alone.set_index("method").loc["auto"]
    assert json.loads(fresh["auto_selection"])["reused"] == []
    assert fresh["job_hash"] == row["job_hash"]  # the same job
    assert fresh["auto_chosen"] == row["auto_chosen"]
    for metric in SCORES:
        assert fresh[metric] == row[metric], metric
    np.testing.assert_array_equal(
        _stored_labels(store, second, "auto"), _stored_labels(alone_store, alone, "auto")
    )


def test_a_stored_record_without_labels_is_refitted_not_served(tmp_path, caplog):
    store = tmp_path / "jobs"
    base = ["data.n_samples=300", "seeds=[0]", f"resume_dir={store}", *AUTO_OF_TWO]
    first = run_benchmark(
        compose_config("benchmark", *base, "methods=[kmeans,gmm]"), tmp_path / "a"
    )
    # gmm's record as an older store wrote it: no labels named (its labels file is ignored)
    gmm = store / f"{first.set_index('method').loc['gmm', 'job_hash']}.json"
    record = json.loads(gmm.read_text())
    record.pop("labels")
    gmm.write_text(json.dumps(record))
    # kmeans's labels file damaged: it no longer matches its record
    kmeans = store / f"{first.set_index('method').loc['kmeans', 'job_hash']}.labels.npy"
    labels = np.load(kmeans)
    np.save(kmeans, labels[::-1].copy())
    caplog.set_level(logging.INFO)
    again = run_benchmark(compose_config("benchmark", *base, "methods=[auto]"), tmp_path / "b")
    assert (again["status"] == "ok").all(), again["error"].tolist()
    selection = json.loads(again.set_index("method").loc["auto", "auto_selection"])
    assert selection["reused"] == [] and selection["served"] == {}
    assert "auto: candidate gmm fitted" in caplog.text and "stored no labels" in caplog.text
    assert "auto: candidate kmeans fitted" in caplog.text and "does not match" in caplog.text
    # both rows are still finished jobs: a benchmark of them runs nothing
    rows = run_benchmark(
        compose_config("benchmark", *base, "methods=[kmeans,gmm]"), tmp_path / "c"
    )
    assert ran(rows) == []


def test_auto_is_not_served_candidates_of_changed_input_and_reports_its_choice(tmp_path, caplog):
    path = tmp_path / "t.csv"
    rng = np.random.default_rng(0)

    def write_table() -> None:
        centers = rng.normal(scale=6, size=(3, 2))[rng.integers(0, 3, 90)]
        frame = pd.DataFrame(centers + rng.normal(size=(90, 2)), columns=["a", "b"])
        frame.insert(0, "id", [f"c{i}" for i in range(90)])
        frame.to_csv(path, index=False)

    write_table()
    base = ["data=table", f"data.path={path}", "data.id_column=id", "n_clusters=3", "seeds=[0]",
            f"resume_dir={tmp_path / 'jobs'}", *AUTO_OF_TWO]  # fmt: skip
    run_benchmark(compose_config("benchmark", *base, "methods=[kmeans,gmm]"), tmp_path / "a")
    caplog.set_level(logging.INFO)
    report = ["report=default", "report.method=auto", "report.map=pca"]
    served = run_benchmark(
        compose_config("benchmark", *base, "methods=[auto]", *report), tmp_path / "b"
    )
    selection = json.loads(served.set_index("method").loc["auto", "auto_selection"])
    assert selection["reused"] == ["kmeans", "gmm"]
    # the report needs the chosen candidate's estimator: that one alone is fitted
    assert f"fitting the chosen candidate {selection['chosen']}" in caplog.text
    assert "auto: candidate kmeans fitted" not in caplog.text
    assert (tmp_path / "b" / "report.html").exists()
    write_table()  # other contents, same file
    caplog.clear()
    changed = run_benchmark(compose_config("benchmark", *base, "methods=[auto]"), tmp_path / "c")
    assert ran(changed) == [("auto", 0)]
    selection = json.loads(changed.set_index("method").loc["auto", "auto_selection"])
    assert selection["reused"] == [] and selection["served"] == {}
    assert "served from the job store" not in caplog.text


def test_the_job_identity_resolves_what_differs_between_machines_and_seeds():
    """`precision: auto` enters a job as what it resolves to on this machine, and with
    n_clusters=auto the k that choose-k chose is part of the job (a store shared by two
    machines, or runs with other first seeds, serves no row or partition of the other)."""
    from omegaconf import OmegaConf

    from deepseg.features.text import resolve_precision
    from deepseg.jobs import features_identity
    from deepseg.tasks.run import method_job

    features = {"text": {"method": "sentence", "precision": "auto"}, "scale": "standard"}
    resolved = features_identity(features)
    assert resolved["text"]["precision"] == resolve_precision("auto") != "auto"
    assert features["text"]["precision"] == "auto"  # not modified in place
    assert features_identity({"text": {"precision": "float32", "method": "sentence"}}) == {
        "text": {"precision": "float32", "method": "sentence"}
    }
    cfg = OmegaConf.create(
        {
            "data": {"name": "d"},
            "features": features,
            "n_clusters": "auto",
            "noise_policy": "singletons",
            "k_selection": {"k_range": [2, 8]},
        }
    )
    jobs = [method_job(cfg, "kmeans", {"n_init": 10}, 0, inputs={}, k=k) for k in (3, 4, 4)]
    assert jobs[0].key != jobs[1].key == jobs[2].key
    fixed = OmegaConf.merge(cfg, {"n_clusters": 4})
    assert (
        method_job(fixed, "kmeans", {}, 0, inputs={}, k=4).key
        == method_job(fixed, "kmeans", {}, 0, inputs={}).key
    )  # a fixed k is in the config already
