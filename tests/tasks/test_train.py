"""The train task in-process: rows, job hashes, resume records, failures, training curves."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

from deepseg.cli.common import config_dir
from deepseg.tasks.benchmark import run_benchmark
from deepseg.tasks.train import check_objective, metric_direction, status_line, train, train_job

SMALL = ["data.n_samples=240", "data.n_clusters=4"]
TINY_AE = [
    "autoencoder.hidden_dims=[16]",
    "autoencoder.latent_dim=3",
    "pretrain.epochs=2",
    "pretrain.min_steps=0",
    "trainer.enable_progress_bar=false",
]


def compose_train(method: str, *overrides: str):
    """The train config as Hydra composes it; ``method`` filled in as Hydra's runtime would."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(
            config_name="train", overrides=[f"model={method}", f"method={method}", *overrides]
        )


def test_row_has_the_benchmark_schema_and_the_same_result(tmp_path):
    cfg = compose_train("kmeans", *SMALL, "seed=3", f"resume_dir={tmp_path / 'jobs'}")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # another count than the machine's 2 cores
    try:
        row = train(cfg, tmp_path / "run")
    finally:
        torch.set_num_threads(before)
    on_disk = pd.read_csv(tmp_path / "run" / "results.csv")
    assert len(on_disk) == 1 and on_disk.loc[0, "status"] == "ok"
    bench_cfg = None
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        bench_cfg = compose(
            config_name="benchmark", overrides=[*SMALL, "methods=[kmeans]", "seeds=[3]"]
        )
    bench = run_benchmark(bench_cfg, tmp_path / "bench")
    missing = set(bench.columns) - set(on_disk.columns)
    assert not missing, f"train rows lack benchmark columns {missing}"
    for column in ("acc", "nmi", "silhouette", "n_clusters", "seed", "git_commit"):
        assert on_disk.loc[0, column] == bench.loc[0, column], column
    assert on_disk.loc[0, "torch_threads"] == 1
    # the objective is the label-free default, recorded with its flag
    assert row["objective"] == "silhouette" and row["objective_value"] == row["silhouette"]
    assert on_disk.loc[0, "allow_label_objective"] == False  # noqa: E712
    assert "model" in (tmp_path / "run" / "config.yaml").read_text()


def test_job_hash_ignores_paths_logger_and_progress_but_not_the_result_options(tmp_path):
    base = train_job(compose_train("dec", *SMALL)).key
    cosmetic = compose_train(
        "dec",
        *SMALL,
        f"paths.output_dir={tmp_path}",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "resume=false",
    )
    assert train_job(cosmetic).key == base
    for change in ("seed=1", "model.lr=0.02", "autoencoder.latent_dim=5", "data.n_samples=241"):
        assert train_job(compose_train("dec", *SMALL, change)).key != base, change
    # other methods' options are not part of a kmeans job
    assert (
        train_job(compose_train("kmeans", "model.n_init=3")).key
        != train_job(compose_train("kmeans")).key
    )


def test_a_finished_job_is_not_run_again_a_failed_one_is(tmp_path):
    jobs = tmp_path / "jobs"
    cfg = compose_train("kmeans", *SMALL, f"resume_dir={jobs}")
    first = train(cfg, tmp_path / "a")
    record = next(jobs.glob("*.json"))
    stamp = json.loads(record.read_text())["finished"]
    again = train(cfg, tmp_path / "b")
    assert again["resumed_from"] == str(tmp_path / "a")
    assert json.loads(record.read_text())["finished"] == stamp  # not run again
    assert again["acc"] == first["acc"]
    assert pd.read_csv(tmp_path / "b" / "results.csv").loc[0, "resumed_from"] == str(
        tmp_path / "a"
    )
    # a failed job leaves no record, so a re-run runs it
    bad = compose_train("kmeans", *SMALL, "n_clusters=500", f"resume_dir={jobs}")
    failed = train(bad, tmp_path / "c", raise_errors=False)
    assert failed["status"] == "failed" and "n_clusters" in failed["error"]
    assert len(list(jobs.glob("*.json"))) == 1
    assert "FAILED" in status_line(failed, "job 2")


def test_bad_n_clusters_raises_in_single_runs_before_writing(tmp_path):
    cfg = compose_train("kmeans", *SMALL, "n_clusters=500", f"resume_dir={tmp_path / 'jobs'}")
    with pytest.raises(ValueError, match=r"n_clusters.*Got 500"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_deep_method_writes_csv_training_curves_per_phase(tmp_path):
    cfg = compose_train(
        "dec", *SMALL, *TINY_AE, "model.epochs=2", f"resume_dir={tmp_path / 'jobs'}"
    )
    row = train(cfg, tmp_path / "run")
    assert row["status"] == "ok", row["error"]
    logs = sorted((tmp_path / "run" / "lightning_logs").glob("version_*/metrics.csv"))
    assert len(logs) == 2  # pretraining, clustering
    pretrain, cluster = (pd.read_csv(p) for p in logs)
    assert pretrain["train/loss"].notna().sum() == 2
    assert "train/cluster_loss" in cluster
    # the clustering phase's budget as it ran: 240 rows at batch 256 are one step an epoch
    on_disk = pd.read_csv(tmp_path / "run" / "results.csv").iloc[0]
    assert on_disk["cluster_epochs"] == row["cluster_epochs"] <= 2
    assert on_disk["cluster_steps"] == row["cluster_steps"] == row["cluster_epochs"]
    assert (cluster["epoch"].max() + 1) == row["cluster_epochs"]
    # the logger object never reaches the row's config
    assert "CSVLogger" not in row["config"]


def test_objective_checks_name_the_valid_metrics():
    with pytest.raises(ValueError, match="silhouette") as err:
        check_objective({"metric": "silhoutte"})
    assert "davies_bouldin" in str(err.value) and "Did you mean 'silhouette'" in str(err.value)
    with pytest.raises(ValueError, match="allow_label_objective"):
        check_objective({"metric": "acc"})
    assert check_objective({"metric": "acc", "allow_label_objective": True}) == (
        "acc",
        "features",
        True,
    )
    assert metric_direction("davies_bouldin") == "minimize"
    assert metric_direction("silhouette") == "maximize"


def test_label_objective_flag_is_written_and_embedding_objective_differs(tmp_path):
    cfg = compose_train(
        "ae_kmeans",
        *SMALL,
        *TINY_AE,
        "objective.metric=acc",
        "objective.allow_label_objective=true",
        f"resume_dir={tmp_path / 'jobs'}",
    )
    row = train(cfg, tmp_path / "run")
    assert row["allow_label_objective"] is True and row["objective_value"] == row["acc"]
    cfg = compose_train("ae_kmeans", *SMALL, *TINY_AE, "objective.space=embedding", "resume=false")
    row = train(cfg, tmp_path / "run2")
    assert row["objective_space"] == "embedding"
    assert row["objective_value"] != row["silhouette"]  # scored in the 3-d latent space


def test_train_writes_a_bundle_that_a_second_run_starts_from(tmp_path, monkeypatch):
    """deepseg-train's bundle reloads to the run's own labels, and model.encoder_from=<bundle>
    starts a new run from its encoder with no pretraining step."""
    import deepseg
    from deepseg.deep.skeleton import AutoencoderModule

    first = compose_train("ae_kmeans", *SMALL, *TINY_AE, f"resume_dir={tmp_path / 'jobs'}")
    train(first, tmp_path / "pre")
    bundle = tmp_path / "pre" / "bundle"
    assert (bundle / "manifest.json").exists()
    assignments = pd.read_csv(tmp_path / "pre" / "assignments.csv")
    assert list(assignments.columns[:3]) == ["id", "segment", "confidence"]
    seg = deepseg.load(bundle)
    from deepseg.tasks.common import to_container
    from deepseg.tasks.run import load_dataset

    dataset = load_dataset(to_container(first.data))
    assert (seg.predict(dataset.frame) == assignments["segment"].to_numpy()).all()

    steps = {"n": 0}
    original = AutoencoderModule.training_step

    def counting(self, *args, **kwargs):
        steps["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderModule, "training_step", counting)
    second = compose_train(
        "dec", *SMALL, *TINY_AE, f"model.encoder_from={bundle}", f"resume_dir={tmp_path / 'j2'}"
    )
    row = train(second, tmp_path / "dec")
    assert row["status"] == "ok", row.get("error")
    assert steps["n"] == 0
    assert (tmp_path / "dec" / "bundle" / "manifest.json").exists()
