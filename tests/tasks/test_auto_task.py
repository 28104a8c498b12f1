"""model=auto in deepseg-benchmark and deepseg-train: the row names the choice, the candidates
share the benchmark's pretraining, and the choice never reads the label column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from deepseg.cli.common import config_dir
from deepseg.data.synthetic import make_synthetic_customers
from deepseg.tasks.benchmark import run_benchmark
from deepseg.tasks.train import train
from tests.tasks.test_train import TINY_AE

# the default candidates but three (dropped with NAME=null, to keep the test short)
CANDIDATES = ["kmeans", "gmm", "agglomerative", "ae_kmeans", "dec"]
DROPPED = ["spectral", "idec", "n2d"]


def compose_config(name: str, *overrides: str):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))


def test_auto_in_the_benchmark_is_its_chosen_candidate_run_alone(tmp_path):
    # auto first: it fits every candidate itself, then each runs on its own
    methods = ",".join(["auto", *CANDIDATES])
    cfg = compose_config(
        "benchmark", "data.n_samples=240", "data.n_clusters=4", f"methods=[{methods}]",
        "seeds=[0]", "model.dec.epochs=3", "model.auto.candidates.dec.epochs=3",
        "model.auto.consensus=false",  # the winner is one of the candidates that also run alone
        *[f"model.auto.candidates.{name}=null" for name in DROPPED], *TINY_AE,
        "report=default", "report.method=auto", "report.map=pca",
    )  # fmt: skip
    results = run_benchmark(cfg, tmp_path).set_index("method")
    assert (results["status"] == "ok").all(), results["error"].tolist()
    row = results.loc["auto"]
    selection = json.loads(row["auto_selection"])
    assert set(selection["scores"]) == set(CANDIDATES)
    assert row["auto_chosen"] == selection["chosen"] in CANDIDATES
    # the default keeps kmeans unless the best clears the margin (scores rounded to 4 places)
    scores, chosen = selection["scores"], selection["chosen"]
    assert (selection["criterion"], selection["margin"]) == ("anchor_agreement", 0.05)
    if chosen == "kmeans":
        assert selection["decided_by"] == "kept"
        assert max(scores.values()) - scores["kmeans"] < 0.05 + 1e-4
    else:
        assert selection["decided_by"] == "left" and selection["runner_up"] == "kmeans"
        assert scores[chosen] == max(scores.values())
        assert scores[chosen] - scores["kmeans"] >= 0.05 - 1e-4
    assert selection["chosen"] in selection["reason"] and selection["reused"] == []
    # the same candidate, seed and (shared) pretraining as its own row: the same partition
    alone = results.loc[row["auto_chosen"]]
    for metric in ("acc", "nmi", "ari", "silhouette", "n_clusters_found"):
        assert row[metric] == alone[metric], metric
    # the report names the candidates, their scores and the winner
    html = (tmp_path / "report.html").read_text()
    assert f"kept {row['auto_chosen']}" in html
    assert all(
        f"{name} [{selection['families'][name]}] {selection['scores'][name]:.3f}" in html
        for name in CANDIDATES
    )
    assert f"Decision margin: {selection['decision_margin']:+.3f}" in html
    on_disk = pd.read_csv(tmp_path / "results.csv")
    assert json.loads(on_disk.set_index("method").loc["auto", "config"])["method"]["_target_"] == (
        "deepseg.auto.AutoCluster"
    )


def test_auto_after_its_candidates_takes_their_fits(tmp_path):
    deep = ["ae_kmeans", "dec", "idec", "n2d"]
    cfg = compose_config(
        "benchmark", "data.n_samples=300", "methods=[kmeans,gmm,auto,agglomerative]", "seeds=[1]",
        "model.auto.consensus=false",
        *[f"model.auto.candidates.{name}=null" for name in [*deep, "spectral"]],
    )  # fmt: skip
    results = run_benchmark(cfg, tmp_path).set_index("method")
    selection = json.loads(results.loc["auto", "auto_selection"])
    # kmeans and gmm ran before auto with the same config and seed; agglomerative only after
    assert selection["reused"] == ["kmeans", "gmm"]
    assert selection["seconds"]["kmeans"] == selection["seconds"]["gmm"] == 0.0
    assert set(selection["scores"]) == {"kmeans", "gmm", "agglomerative"}
    for metric in ("acc", "nmi", "silhouette"):
        assert (
            results.loc["auto", metric] == results.loc[results.loc["auto", "auto_chosen"], metric]
        )


@pytest.fixture(scope="module")
def table_with_labels(tmp_path_factory):
    ds = make_synthetic_customers(n_samples=200, n_clusters=4, random_state=1)
    frame = ds.frame[["age", "total_spend", "tenure_months", "channel"]].copy()
    frame.insert(0, "customer_id", [f"C{i:04d}" for i in range(len(frame))])
    frame["segment"] = ds.labels
    noisy = frame.copy()
    noisy["segment"] = np.random.default_rng(7).integers(0, 4, len(frame))
    root = tmp_path_factory.mktemp("auto_tables")
    frame.to_csv(root / "true.csv", index=False)
    noisy.to_csv(root / "noise.csv", index=False)
    return root


def test_train_auto_never_reads_the_labels_and_bundles_the_winner(table_with_labels, tmp_path):
    runs = {}
    for name in ("true", "noise"):
        cfg = compose_config(
            "train", "model=auto", "method=auto", "data=table",
            f"data.path={table_with_labels / f'{name}.csv'}", "data.id_column=customer_id",
            "data.label_column=segment", "n_clusters=4", "seed=2", "logger=none",
            f"resume_dir={tmp_path / name / 'jobs'}", "model.candidates.dec.epochs=3",
            *[f"model.candidates.{name}=null" for name in DROPPED], *TINY_AE,
        )  # fmt: skip
        row = train(cfg, tmp_path / name)
        assert row["status"] == "ok", row.get("error")
        runs[name] = (row, pd.read_csv(tmp_path / name / "assignments.csv"))
    (row_true, assign_true), (row_noise, assign_noise) = runs["true"], runs["noise"]
    pd.testing.assert_series_equal(assign_true["segment"], assign_noise["segment"])
    choice = [json.loads(r["auto_selection"]) for r in (row_true, row_noise)]
    for c in choice:
        c.pop("seconds")  # the only part that may differ: wall times
    assert choice[0] == choice[1]
    assert row_true["acc"] != row_noise["acc"]  # the labels did differ, and only scored
    # the chosen candidate's bundle, when it can assign new rows
    from deepseg.bundle import load

    if (tmp_path / "true" / "bundle").exists():
        seg = load(tmp_path / "true" / "bundle")
        frame = pd.read_csv(table_with_labels / "true.csv")
        np.testing.assert_array_equal(seg.predict(frame), assign_true["segment"].to_numpy())
