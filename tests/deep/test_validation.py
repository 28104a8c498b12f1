"""Every parameter is checked in ``fit`` before any training step, in scikit-learn's wording,
and ``predict`` / ``transform`` check the number of features."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from deepseg.deep import DCN, DEC, IDEC, AEKMeans, VaDE

AE = {"hidden_dims": [16], "latent_dim": 2}
PRETRAIN = {"epochs": 1, "min_steps": 0, "batch_size": 32}


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test on any optimiser step: validation must come first."""

    def step(*args, **kwargs):
        raise AssertionError("a training step ran before the parameters were checked")

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    monkeypatch.setattr(torch.optim.SGD, "step", step)


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (DCN(epochs=-1), "The 'epochs' parameter of DCN must be an int in the range [0, inf). "
                         "Got -1 instead."),
        (DEC(lr=-1), "The 'lr' parameter of DEC must be a float in the range (0, inf). "
                     "Got -1 instead."),
        (DEC(optimizer="nope"), "The 'optimizer' parameter of DEC must be one of ['sgd', "
                                "'adam']. Got 'nope' instead."),
        (IDEC(batch_size=0), "The 'batch_size' parameter of IDEC must be an int in the range "
                             "[1, inf). Got 0 instead."),
        (VaDE(epochs=2.5), "The 'epochs' parameter of VaDE must be an int"),
        (AEKMeans(random_state=-3), "The 'random_state' parameter of AEKMeans must be an int in "
                                    "the range [0, inf) or None. Got -3 instead."),
        (DEC(pretrain={"lr": 0}), "The pretrain option 'lr' must be a float in the range "
                                  "(0, inf). Got 0 instead."),
        (DEC(autoencoder={"dropout": 1.5}), "The autoencoder option 'dropout' must be a float "
                                            "in the range [0, 1) or one of ['auto']. Got 1.5 "
                                            "instead."),
        (DEC(autoencoder={"hidden_dims": [8, -1]}), "The autoencoder option 'hidden_dims' must "
                                                    "be a list of positive ints"),
    ],
)  # fmt: skip
def test_bad_parameters_raise_before_any_training_step(estimator, message, no_training):
    X = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    with pytest.raises(ValueError, match=re.escape(message)):
        estimator.fit(X)


@pytest.mark.parametrize("cls", [DEC, DCN, AEKMeans])
def test_predict_and_transform_check_the_feature_count(cls):
    X = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    est = cls(n_clusters=2, autoencoder=AE, pretrain=PRETRAIN, epochs=1, random_state=0) \
        if cls is not AEKMeans else cls(n_clusters=2, autoencoder=AE, pretrain=PRETRAIN,
                                        random_state=0)  # fmt: skip
    est.fit(X)
    expected = f"X has 4 features, but {cls.__name__} is expecting 5 features as input."
    for method in (est.predict, est.transform, est.predict_proba):
        with pytest.raises(ValueError, match=re.escape(expected)):
            method(X[:, :4])
