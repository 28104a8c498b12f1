"""DEC on two CPU processes (gloo) gives the same quality as on one, within noise."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from deepseg.deep import DEC
from deepseg.deep.skeleton import pretrain_autoencoder
from deepseg.metrics import acc


@pytest.fixture(scope="module")
def problem():
    X, y = make_blobs(600, centers=4, n_features=10, cluster_std=2.0, random_state=0)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    ae = pretrain_autoencoder(
        X,
        {"hidden_dims": [32, 32], "latent_dim": 4},
        {"epochs": 10, "min_steps": 0, "batch_size": 64},
    )
    return X, y, ae


def _fit(problem, trainer):
    X, y, ae = problem
    model = DEC(
        4, pretrained=ae, epochs=10, batch_size=64, update_interval=20, trainer=trainer,
        random_state=0,
    )  # fmt: skip
    return acc(y, model.fit(X).labels_)


def _fit_spawned(problem, trainer, attempts=3):
    """A spawned gloo worker now and then dies with SIGABRT as it shuts down (about 1 run in 7
    here; Lightning's own spawn tests do the same and are re-run: Lightning-AI/pytorch-lightning
    #20620, #20933). Only that crash is retried; any other error, or a bad result, fails."""
    from torch.multiprocessing.spawn import ProcessExitedException

    for attempt in range(attempts):
        try:
            return _fit(problem, trainer)
        except ProcessExitedException as err:
            if "SIGABRT" not in str(err) or attempt == attempts - 1:
                raise


def test_ddp_quality(problem):
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    one = _fit(problem, None)
    two = _fit_spawned(problem, {"accelerator": "cpu", "devices": 2, "strategy": "ddp_spawn"})
    # measured: 0.973 with one process, 0.947 with two (different batch composition per step)
    assert one >= 0.9
    assert two >= one - 0.05
