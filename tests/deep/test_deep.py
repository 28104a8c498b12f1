"""The deep estimators end to end on a small non-linear problem.

Every fit is small (a 50-64-64-4 autoencoder, 600 rows) and cached per module, so the whole file
runs in well under a minute on two CPU cores.
"""

import re

import lightning as L
import numpy as np
import pytest
import torch
from sklearn.base import clone

import deepseg.deep.skeleton as deep
from deepseg.deep import AEGMM, DCN, DEC, IDEC, AEKMeans
from deepseg.deep.skeleton import make_trainer
from deepseg.metrics import acc
from deepseg.nn.modules import Autoencoder

N_CLUSTERS = 4
AUTOENCODER = {"hidden_dims": [64, 64], "latent_dim": 4}
PRETRAIN = {"epochs": 30, "min_steps": 0, "batch_size": 64}
PHASE = {"epochs": 10, "batch_size": 64}
METHODS = {
    "ae_kmeans": (AEKMeans, {}),
    "ae_gmm": (AEGMM, {}),
    "dec": (DEC, {**PHASE, "update_interval": 20}),
    "idec": (IDEC, {**PHASE, "update_interval": 20}),
    "dcn": (DCN, PHASE),
}


def make(name: str, **overrides):
    cls, kwargs = METHODS[name]
    params = {
        "n_clusters": N_CLUSTERS,
        "autoencoder": AUTOENCODER,
        "pretrain": PRETRAIN,
        "random_state": 0,
        **kwargs,
        **overrides,
    }
    return cls(**params)


def make_problem(n_per_cluster=150, n_clusters=N_CLUSTERS, low_dim=6, high_dim=50, seed=0):
    """Well separated Gaussian clusters in ``low_dim`` dimensions, mapped non-linearly into
    ``high_dim`` (random matrix, tanh, random matrix) and standardised. Rows are shuffled."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(n_clusters, low_dim))
    means *= 6.0 / np.linalg.norm(means, axis=1, keepdims=True)
    y = np.repeat(np.arange(n_clusters), n_per_cluster)
    Z = means[y] + rng.normal(size=(len(y), low_dim))
    hidden = np.tanh(Z @ rng.normal(size=(low_dim, 32)) / np.sqrt(low_dim))
    X = hidden @ rng.normal(size=(32, high_dim)) / np.sqrt(32)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    order = rng.permutation(len(y))
    return X[order].astype(np.float32), y[order]


@pytest.fixture(scope="module")
def problem():
    return make_problem()


@pytest.fixture(scope="module")
def fitted(problem):
    """``fitted(name)``: the estimator of METHODS[name] fitted on the problem, once per module."""
    X, _ = problem
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = make(name).fit(X)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def pretrained(fitted):
    # AEKMeans has no clustering phase: its autoencoder_ is the pretrained network itself
    return fitted("ae_kmeans").autoencoder_


# -- quality -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(METHODS))
def test_recovers_the_clusters(name, fitted, problem):
    _, y = problem
    assert acc(y, fitted(name).labels_) >= 0.95


# -- the estimator interface ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(METHODS))
def test_predict_transform_and_predict_proba(name, fitted, problem):
    X, _ = problem
    est = fitted(name)
    assert est.labels_.shape == (len(X),)
    assert set(np.unique(est.labels_)) <= set(range(N_CLUSTERS))
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    assert est.n_features_in_ == X.shape[1]

    z = est.transform(X)
    assert z.shape == (len(X), AUTOENCODER["latent_dim"])
    assert z.dtype == np.float32
    # Batching changes only the float rounding (multi-threaded matmul blocking)
    np.testing.assert_allclose(est.transform(X[:10]), z[:10], rtol=1e-5, atol=1e-6)

    proba = est.predict_proba(X)
    assert proba.shape == (len(X), N_CLUSTERS)
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), est.labels_)


def test_unfitted_estimator_raises_not_fitted(problem):
    from sklearn.exceptions import NotFittedError

    X, _ = problem
    for name in METHODS:
        with pytest.raises(NotFittedError):
            make(name).predict(X)


@pytest.mark.parametrize("name", ["dec", "dcn"])
def test_same_random_state_gives_identical_results(name, fitted, problem):
    X, _ = problem
    first = fitted(name)
    second = make(name).fit(X)  # from scratch: pretraining and clustering phase again
    np.testing.assert_array_equal(second.labels_, first.labels_)
    np.testing.assert_array_equal(second.transform(X), first.transform(X))
    assert second.n_steps_ == first.n_steps_


@pytest.mark.parametrize("name", list(METHODS))
def test_clone_get_params_and_set_params(name):
    est = make(name, trainer={"accelerator": "cpu"})
    params = est.get_params()
    assert clone(est).get_params() == params
    assert type(clone(est)) is type(est)

    assert est.set_params(n_clusters=3, autoencoder={"latent_dim": 2}) is est
    assert est.n_clusters == 3
    assert est.get_params()["autoencoder"] == {"latent_dim": 2}
    assert clone(est).get_params() == {**params, "n_clusters": 3, "autoencoder": {"latent_dim": 2}}
    with pytest.raises(ValueError, match="not_a_param"):
        est.set_params(not_a_param=1)


def test_clone_of_a_fitted_estimator_is_unfitted(fitted):
    est = fitted("dec")
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "labels_")
    assert not hasattr(copy, "autoencoder_")


@pytest.mark.parametrize("name", list(METHODS))
def test_bad_n_clusters_raise_sklearn_style_errors(name, monkeypatch):
    def no_pretraining(*args, **kwargs):
        raise AssertionError("validation must happen before pretraining")

    monkeypatch.setattr(deep, "pretrain_autoencoder", no_pretraining)
    cls_name = METHODS[name][0].__name__
    X = np.random.default_rng(0).normal(size=(5, 3))
    expected = f"The 'n_clusters' parameter of {cls_name} must be an int in the range [1, inf). "
    with pytest.raises(ValueError, match=re.escape(expected + "Got 0 instead.")):
        make(name, n_clusters=0).fit(X)
    expected = f"The 'n_clusters' parameter of {cls_name} must be an int in the range "
    with pytest.raises(ValueError, match=re.escape(expected + "[1, n_samples=5]. Got 6 instead.")):
        make(name, n_clusters=6).fit(X)


# -- pretrained autoencoders ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(METHODS))
def test_pretrained_skips_pretraining(name, pretrained, problem, monkeypatch):
    def no_pretraining(*args, **kwargs):
        raise AssertionError("pretraining ran although a pretrained autoencoder was given")

    monkeypatch.setattr(deep, "pretrain_autoencoder", no_pretraining)
    X, y = problem
    weights = {k: v.clone() for k, v in pretrained.state_dict().items()}
    est = make(name, pretrained=pretrained).fit(X)
    assert acc(y, est.labels_) >= 0.95
    # The clustering phase fine-tunes a copy, never the caller's network
    for key, value in pretrained.state_dict().items():
        assert torch.equal(value, weights[key]), key
    if name in ("ae_kmeans", "ae_gmm"):  # no clustering phase: the embedding is the given one
        with torch.no_grad():
            z = pretrained.encode(torch.from_numpy(X)).numpy()
        np.testing.assert_allclose(est.transform(X), z, rtol=1e-5, atol=1e-6)


def test_pretrained_with_the_wrong_input_dim_raises(problem):
    X, _ = problem
    ae = Autoencoder(X.shape[1] + 1, **AUTOENCODER)
    with pytest.raises(ValueError, match=f"expects {X.shape[1] + 1} features"):
        make("dec", pretrained=ae).fit(X)


def test_unknown_grouped_option_names_the_valid_ones(problem):
    X, _ = problem
    with pytest.raises(ValueError, match=r"hiden_dims.*hidden_dims"):
        make("dec", autoencoder={"hiden_dims": [8]}).fit(X)


# -- DEC's stopping rule -------------------------------------------------------------------------


def test_dec_stops_early_when_tol_is_large(pretrained, problem):
    X, _ = problem
    settings = {"pretrained": pretrained, "epochs": 5, "update_interval": 5}
    # Labels never all change between two updates, so tol=1 stops at the second update
    early = make("dec", tol=1.0, **settings).fit(X)
    assert early.stopped_early_
    assert early.n_steps_ <= settings["update_interval"]
    # tol=0 can never be met: the phase runs its full budget
    full = make("dec", tol=0.0, **settings).fit(X)
    assert not full.stopped_early_
    batches_per_epoch = -(-len(X) // PHASE["batch_size"])
    assert full.n_steps_ == settings["epochs"] * batches_per_epoch
    assert early.n_steps_ < full.n_steps_


def test_refreshes_run_at_most_four_times_an_epoch(pretrained, problem):
    # 70,000 rows (MNIST) at batch 256 keep DEC's 140 steps; 1M rows refresh every 977 steps
    assert deep.refresh_interval(140, 70_000, 256) == 140
    assert deep.refresh_interval(140, 1_000_000, 256) == 977
    assert deep.refresh_interval(140, 143_360, 256) == 140
    assert deep.refresh_interval(140, 143_361, 256) == 141
    X, _ = problem
    # 600 rows at batch 8: 75 steps an epoch, so an interval of 5 becomes ceil(75 / 4) = 19
    fit = make("dec", pretrained=pretrained, epochs=1, batch_size=8, update_interval=5).fit(X)
    assert fit.module_.update_interval == 19


def test_large_data_trains_for_a_step_budget_not_a_growing_number_of_epochs(pretrained, problem):
    # pretraining: 30 epochs up to 170,666 rows at batch 256; 1M rows (3,907 steps an epoch)
    # get the 6 epochs that reach 20,000 steps; 70,000 rows (MNIST's count) keep their 30
    assert deep.pretrain_epochs(70_000, {}, n_features=20) == 30
    assert deep.pretrain_epochs(170_666, {}, n_features=20) == 30
    assert deep.pretrain_epochs(1_000_000, {}, n_features=20) == 6
    assert deep.pretrain_epochs(1_000_000, {"max_steps": 0}, n_features=20) == 30
    assert deep.capped_epochs(50, 10**9, 256, 20_000) == 1  # never below one epoch
    # the clustering phase: 600 rows at batch 64 are 10 steps an epoch, so max_steps=25 runs
    # ceil(25 / 10) = 3 of the 5 epochs
    X, _ = problem
    fit = make("dec", pretrained=pretrained, epochs=5, tol=0.0, max_steps=25).fit(X)
    assert (fit.n_epochs_, fit.n_steps_) == (3, 30)
    assert make("dec", pretrained=pretrained, epochs=5, tol=0.0).fit(X).n_steps_ == 50


def test_a_memory_mapped_matrix_trains_as_the_in_memory_one(problem, tmp_path):
    from deepseg.io import feature_storage

    X, _ = problem
    mapped = feature_storage(tmp_path, 0)(*X.shape)
    assert isinstance(mapped, np.memmap)
    mapped[:] = X
    assert not list(tmp_path.iterdir())  # unlinked once mapped: a killed run leaves nothing
    settings = {"pretrain": {**PRETRAIN, "epochs": 3}, "epochs": 2}
    in_memory = make("dec", **settings).fit(X)
    from_file = make("dec", **settings).fit(mapped)
    np.testing.assert_array_equal(from_file.labels_, in_memory.labels_)
    for name, tensor in in_memory.autoencoder_.state_dict().items():
        torch.testing.assert_close(
            from_file.autoencoder_.state_dict()[name], tensor, rtol=0, atol=0
        )


# -- no labels in training -----------------------------------------------------------------------


class BatchRecorder(L.Callback):
    def __init__(self):
        self.batches = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        copied = [t.detach().clone() if torch.is_tensor(t) else t for t in batch]
        self.batches.append((type(pl_module).__name__, type(batch), copied))


def test_make_trainer_passes_extra_trainer_options_through():
    recorder = BatchRecorder()
    trainer = make_trainer(3, {"callbacks": [recorder], "max_steps": 7})
    assert recorder in trainer.callbacks
    assert trainer.max_steps == 7
    assert trainer.max_epochs == 3


def test_modules_only_ever_see_rows_and_their_indices(problem):
    X, y = problem
    recorder = BatchRecorder()
    est = make(
        "dec",
        pretrain={"epochs": 2, "min_steps": 0, "batch_size": 64},
        epochs=2,
        update_interval=5,
        tol=0.0,
        trainer={"callbacks": [recorder]},
    )
    est.fit(X, y)
    phases = [phase for phase, _, _ in recorder.batches]
    batches_per_epoch = -(-len(X) // 64)
    assert phases.count("AutoencoderModule") == 2 * batches_per_epoch
    assert phases.count("DECModule") == 2 * batches_per_epoch
    for phase in ("AutoencoderModule", "DECModule"):
        indices = [batch[1] for p, _, batch in recorder.batches if p == phase]
        counts = np.bincount(torch.cat(indices).numpy(), minlength=len(X))
        np.testing.assert_array_equal(counts, 2)  # every row once per epoch
    for _, container, batch in recorder.batches:
        assert container in (tuple, list)
        assert len(batch) == 2
        x, index = batch
        assert torch.is_tensor(x) and x.dtype == torch.float32
        assert torch.is_tensor(index) and index.dtype == torch.int64
        assert x.shape == (len(index), X.shape[1])
        assert torch.equal(x, torch.from_numpy(X[index.numpy()]))


def test_fit_ignores_y(fitted, problem):
    X, y = problem
    with_y = make("dec").fit(X, y)
    np.testing.assert_array_equal(with_y.labels_, fitted("dec").labels_)
    # Nor does a y that disagrees with the data change anything
    shuffled = np.random.default_rng(0).permutation(y)
    np.testing.assert_array_equal(
        make("ae_kmeans").fit(X, shuffled).labels_, fitted("ae_kmeans").labels_
    )


def test_trainer_options_that_deepseg_sets_are_refused():
    from deepseg.deep.skeleton import make_trainer

    with pytest.raises(ValueError, match=r"\['max_epochs'\] are set by deepseg"):
        make_trainer(1, {"max_epochs": 5})


def test_clustering_phase_time_is_recorded(fitted):
    model = fitted("dec")
    assert 0 < model.cluster_seconds_
