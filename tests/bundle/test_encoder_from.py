"""Starting a fit from a bundle's encoder: no pretraining epochs, optionally frozen."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from sklearn.base import clone

from deepseg.bundle import load
from deepseg.cli.common import config_dir
from deepseg.deep.skeleton import AutoencoderModule
from deepseg.tasks.benchmark import run_benchmark
from tests.bundle.conftest import DEEP, make_estimator


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def pretraining_steps(monkeypatch):
    """Counts the optimiser steps of every AutoencoderModule (pretraining) in the test."""
    steps = {"n": 0}
    original = AutoencoderModule.training_step

    def counting(self, batch, batch_idx):
        steps["n"] += 1
        return original(self, batch, batch_idx)

    monkeypatch.setattr(AutoencoderModule, "training_step", counting)
    return steps


def test_the_step_counter_sees_pretraining(trained, pretraining_steps):
    # the positive control: without encoder_from the same estimator pretrains
    make_estimator("dec").fit(trained.X)
    assert pretraining_steps["n"] > 0


@pytest.mark.parametrize("method", DEEP)
def test_encoder_from_runs_no_pretraining(trained, pretraining_steps, method):
    est = make_estimator(method, encoder_from=str(trained.bundle("ae_kmeans"))).fit(trained.X)
    assert pretraining_steps["n"] == 0
    assert est.labels_.shape == (trained.X.shape[0],)


def test_benchmark_with_encoder_from_runs_no_pretraining(trained, pretraining_steps, tmp_path):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            config_name="benchmark",
            overrides=[
                "data.n_samples=300",
                "methods=[dec]",
                "seeds=[0]",
                "model.dec.epochs=1",
                f"model.dec.encoder_from='{trained.bundle('ae_kmeans')}'",
            ],
        )
    results = run_benchmark(cfg, tmp_path)
    assert results["status"].tolist() == ["ok"], results["error"].tolist()
    assert pretraining_steps["n"] == 0
    assert results["pretrain_seconds"].isna().all()


def test_freeze_encoder_keeps_the_encoder_weights(trained):
    source = load(trained.bundle("ae_kmeans")).autoencoder.encoder.state_dict()
    frozen = make_estimator(
        "dec", encoder_from=str(trained.bundle("ae_kmeans")), freeze_encoder=True
    ).fit(trained.X)
    for name, value in frozen.autoencoder_.encoder.state_dict().items():
        torch.testing.assert_close(value, source[name], rtol=0, atol=0)
    # the head still trained, and the encoder is trainable again afterwards
    assert all(p.requires_grad for p in frozen.autoencoder_.encoder.parameters())
    free = make_estimator("dec", encoder_from=str(trained.bundle("ae_kmeans"))).fit(trained.X)
    changed = [
        not torch.equal(v, source[n]) for n, v in free.autoencoder_.encoder.state_dict().items()
    ]
    assert any(changed)


def test_encoder_from_checks_the_input_dimension(trained):
    est = make_estimator("dec", encoder_from=str(trained.bundle("dec")))
    n_in = trained.X.shape[1]
    with pytest.raises(ValueError, match=rf"expects {n_in} features; X has 5"):
        est.fit(trained.X[:, :5])
    with pytest.raises(ValueError, match="holds no autoencoder"):
        make_estimator("dec", encoder_from=str(trained.bundle("kmeans"))).fit(trained.X)


def test_new_parameters_round_trip_through_get_params_and_clone():
    for method in DEEP:
        est = make_estimator(method, encoder_from="somewhere", freeze_encoder=True)
        params = clone(est).get_params()
        assert params["encoder_from"] == "somewhere" and params["freeze_encoder"] is True
