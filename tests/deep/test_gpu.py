"""Every deep method on a CUDA device: float32 and bf16-mixed, resume, bundles, data-parallel.

Marked ``gpu`` and skipped without CUDA, so they are collected everywhere and run where a GPU is
(``python -m pytest -m gpu``). The networks are small: what is tested is that nothing is left on
the wrong device or in the wrong dtype, not the speed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepseg.deep import AEGMM, DCN, DEC, IDEC, AEKMeans, VaDE
from deepseg.deep.skeleton import embed
from deepseg.metrics import acc

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

METHODS = [DEC, IDEC, DCN, VaDE, AEKMeans, AEGMM]
PRECISIONS = ["32-true", "bf16-mixed"]


def blobs(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 12)).astype(np.float32)
    X[:, :3] += 4.0 * np.eye(3, dtype=np.float32)[y]
    return X, y


def small(cls, trainer: dict, **extra):
    params = {
        "n_clusters": 3,
        "autoencoder": {"hidden_dims": [32, 32], "latent_dim": 3},
        "pretrain": {"epochs": 20, "min_steps": 0, "batch_size": 64},
        "trainer": {"enable_progress_bar": False, **trainer},
        "random_state": 0,
    }
    if cls not in (AEKMeans, AEGMM):
        params.update(epochs=10, batch_size=64)
    params.update(extra)
    return cls(**params)


GPU = {"accelerator": "gpu", "devices": 1}


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.__name__)
def test_every_method_fits_on_cuda(cls, precision):
    X, y = blobs()
    model = small(cls, {**GPU, "precision": precision}).fit(X)
    assert model.labels_.shape == (len(X),)
    assert next(model.autoencoder_.parameters()).device.type == "cpu"  # returned on the CPU
    # the blobs are easy: a method that trains in the wrong dtype or on stale data falls apart
    assert acc(y, model.labels_) >= 0.9, (cls.__name__, precision)
    assert np.array_equal(model.predict(X), model.labels_)


class Killed(RuntimeError):
    """Stands for a kill between two checkpointed epochs."""


def test_a_checkpoint_written_on_the_gpu_resumes(tmp_path):
    import lightning as L

    class Stop(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if hasattr(pl_module, "refresh") and trainer.current_epoch == 4:
                raise Killed

    opts = {"dir": str(tmp_path), "every_n_epochs": 1, "every_n_seconds": 0}
    X, _ = blobs()
    reference = small(DEC, GPU, update_interval=3, tol=0.0).fit(X)
    with pytest.raises(Killed):
        small(DEC, {**GPU, "callbacks": [Stop()]}, checkpoint=opts, update_interval=3,
              tol=0.0).fit(X)  # fmt: skip
    resumed = small(DEC, GPU, checkpoint=opts, update_interval=3, tol=0.0).fit(X)
    assert resumed.n_steps_ == reference.n_steps_
    # CUDA kernels need not be bitwise deterministic from run to run: labels, not bits
    assert acc(reference.labels_, resumed.labels_) >= 0.99


def test_a_bundle_trained_on_the_gpu_predicts_the_same_labels_on_the_cpu(tmp_path):
    from deepseg.bundle import load, save_bundle
    from deepseg.data.base import Dataset
    from deepseg.features.pipeline import FeaturePipeline

    X_raw, y = blobs()
    dataset = Dataset(name="blobs", ids=np.arange(len(X_raw)), X=X_raw, labels=y, n_clusters=3)
    pipeline = FeaturePipeline()
    X = pipeline.fit_transform(dataset)
    model = small(DEC, GPU).fit(X)
    save_bundle(
        tmp_path / "bundle", estimator=model, pipeline=pipeline, dataset=dataset, X=X,
        method="dec", method_config={}, data_config={},
    )  # fmt: skip
    segmenter = load(tmp_path / "bundle")
    assert np.array_equal(segmenter.predict(X_raw), model.labels_)


def test_predict_and_embed_on_the_gpu_equal_the_cpus():
    X, _ = blobs()
    model = small(DEC, GPU).fit(X)
    on_cpu = model.transform(X)
    gpu_ae = model.autoencoder_.cuda()
    on_gpu = embed(gpu_ae, X)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)
    head = model._head().cuda()
    with torch.no_grad():
        labels = head(torch.from_numpy(on_gpu).cuda()).argmax(dim=1).cpu().numpy()
    assert acc(model.labels_, labels) >= 0.99
    model.autoencoder_.cpu()


def test_ddp_with_one_device():
    X, y = blobs()
    model = small(DEC, {**GPU, "strategy": "ddp"}).fit(X)
    assert acc(y, model.labels_) >= 0.9


def test_the_training_matrix_lives_on_the_gpu_once():
    """The device-resident path: batches are sliced on the GPU from the matrix moved once."""
    import lightning as L

    seen: list[torch.device] = []

    class Spy(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(batch[0].device)
            seen.append(batch[1].device)

    X, _ = blobs()
    small(DEC, {**GPU, "callbacks": [Spy()]}).fit(X)
    assert seen and all(d.type == "cuda" for d in seen)
