"""The benchmark task, built from the real configs with hydra.compose and tmp_path outputs."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from sklearn.cluster import KMeans

from deepseg.cli.common import config_dir
from deepseg.data.images import load_digits
from deepseg.features.pipeline import FeaturePipeline
from deepseg.metrics import acc
from deepseg.tasks.benchmark import run_benchmark

REQUIRED_COLUMNS = [
    "dataset", "method", "seed", "n_samples", "n_clusters", "n_clusters_found", "acc", "nmi",
    "ari", "silhouette", "davies_bouldin", "calinski_harabasz", "seconds", "git_commit",
    "config", "noise_policy", "torch_threads",
]  # fmt: skip


def compose_benchmark(*overrides: str):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name="benchmark", overrides=list(overrides))


def test_default_benchmark_config_runs_every_baseline():
    cfg = compose_benchmark()
    assert cfg.data.name == "synthetic_customers"
    for method in ("kmeans", "gmm", "dbscan", "hdbscan", "agglomerative"):
        assert method in cfg.methods


def test_small_benchmark_writes_results(tmp_path):
    cfg = compose_benchmark(
        "data.n_samples=400", "methods=[kmeans,gmm,dbscan,hdbscan]", "seeds=[0,1]"
    )
    results = run_benchmark(cfg, tmp_path)
    assert len(results) == 8
    on_disk = pd.read_csv(tmp_path / "results.csv")
    assert all(c in on_disk.columns for c in REQUIRED_COLUMNS)
    assert set(on_disk["seed"]) == {0, 1}
    assert (on_disk["n_samples"] == 400).all()
    assert on_disk.loc[on_disk["method"] == "kmeans", "acc"].min() > 0.8
    board = (tmp_path / "leaderboard.md").read_text()
    assert "kmeans" in board and "±" in board
    assert (tmp_path / "leaderboard.csv").exists()


def test_every_default_method_that_is_not_deep_runs_with_the_row_of_a_classic_method(tmp_path):
    # minibatch_kmeans has an n_steps_ of its own: no clustering-phase columns for it
    cfg = compose_benchmark("data.n_samples=300", "methods=[minibatch_kmeans,pca_kmeans]")
    results = run_benchmark(cfg, tmp_path)
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert "cluster_epochs" not in results.columns


def test_same_seed_same_results(tmp_path):
    # resume=false: the second run fits again rather than taking the first one's rows
    cfg = compose_benchmark(
        "data.n_samples=300", "methods=[kmeans,gmm]", "seeds=[3]", "resume=false"
    )
    a = run_benchmark(cfg, tmp_path / "a")
    b = run_benchmark(cfg, tmp_path / "b")
    pd.testing.assert_series_equal(a["ari"], b["ari"])


def test_no_labels_gives_empty_label_columns(tmp_path):
    path = tmp_path / "t.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)}).to_csv(path, index=False)
    cfg = compose_benchmark("data=table", f"data.path={path}", "methods=[kmeans]", "n_clusters=3")
    run_benchmark(cfg, tmp_path / "out")
    row = pd.read_csv(tmp_path / "out" / "results.csv").iloc[0]
    assert pd.isna(row["acc"]) and pd.isna(row["nmi"])
    assert not pd.isna(row["silhouette"])


def test_digits_kmeans_matches_scikit_learn(tmp_path):
    """ACC of the benchmark's kmeans is within 0.03 of KMeans run directly on the same features."""
    cfg = compose_benchmark("data=digits", "methods=[kmeans]", "seeds=[0,1,2]")
    ours = run_benchmark(cfg, tmp_path)["acc"].median()
    data = load_digits()
    X = FeaturePipeline(matrix={"scale": "max"}).fit_transform(data)
    direct = np.median(
        [acc(data.labels, KMeans(10, n_init=10, random_state=s).fit_predict(X)) for s in range(3)]
    )
    raw = np.median(
        [
            acc(data.labels, KMeans(10, n_init=10, random_state=s).fit_predict(data.X))
            for s in range(3)
        ]
    )
    assert abs(ours - direct) <= 0.03
    assert abs(ours - raw) <= 0.03  # max-scaling does not change KMeans on raw pixels
    assert ours > 0.7


@pytest.mark.parametrize("overrides, message", [
    (["n_clusters=1"], r"range \[2, n_samples=300\]"),
    (["methods=[kmeanz]"], "Did you mean 'kmeans'"),
    (["seeds=[]"], "No seeds"),
])  # fmt: skip
def test_bad_benchmark_arguments_write_nothing(tmp_path, overrides, message):
    cfg = compose_benchmark("data.n_samples=300", *overrides)
    with pytest.raises(ValueError, match=message):
        run_benchmark(cfg, tmp_path)
    assert not any(Path(tmp_path).iterdir())


def test_a_failing_method_is_recorded_and_the_others_finish(tmp_path):
    cfg = compose_benchmark(
        "data.n_samples=300",
        "methods=[spectral,kmeans]",
        "baseline.spectral.max_samples=100",
        "baseline.spectral.oversize=refuse",
        "seeds=[0]",
    )
    results = run_benchmark(cfg, tmp_path)
    by_method = results.set_index("method")
    assert by_method.loc["spectral", "status"] == "failed"
    assert "refused on 300 samples" in by_method.loc["spectral", "error"]
    assert by_method.loc["kmeans", "status"] == "ok" and by_method.loc["kmeans", "acc"] > 0.5
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert board["method"].tolist() == ["kmeans"]


def test_torch_threads_costs_no_torch_import():
    # classic-only runs never import torch; recording the thread count must not either
    code = (
        "import sys; import deepseg.tasks.benchmark, deepseg.tasks.train; "
        "from deepseg.tasks.common import torch_threads; "
        "print(torch_threads(), 'torch' in sys.modules); import torch; "
        "torch.set_num_threads(1); print(torch_threads())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "False", "1"]
