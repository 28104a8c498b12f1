"""Tiny fitted segmenters and their bundles, built once per test session.

Every method that can predict is fitted on 300 synthetic customers with a tiny network
(hidden [32], latent 4, a few steps), saved as a bundle, and its own ``labels_`` and
``transform`` are kept beside it as .npy files for the fresh-process round trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.cluster import KMeans, MiniBatchKMeans

from deepseg.bundle import save_bundle
from deepseg.cli.common import config_dir
from deepseg.data.synthetic import make_synthetic_customers
from deepseg.features.pipeline import FeaturePipeline

N_ROWS = 300
K = 4
AE = {"hidden_dims": [32], "latent_dim": 4}
PRETRAIN = {"epochs": 3, "min_steps": 0, "batch_size": 64}
TRAINER = {"accelerator": "cpu", "enable_progress_bar": False}
DATA_CONFIG = {
    "_target_": "deepseg.data.synthetic.make_synthetic_customers",
    "name": "synthetic_customers",
    "n_samples": N_ROWS,
    "n_clusters": 6,
    "random_state": 0,
}
DEEP = ("ae_kmeans", "ae_gmm", "dec", "idec", "dcn", "vade")
PREDICTING = (*DEEP, "kmeans", "minibatch_kmeans", "gmm", "pca_kmeans")


def make_estimator(method: str, **extra: Any) -> Any:
    from deepseg.baselines import GMMClusterer, PCAKMeans
    from deepseg.deep import AEGMM, DCN, DEC, IDEC, AEKMeans, VaDE

    deep = {"autoencoder": AE, "pretrain": PRETRAIN, "trainer": TRAINER, "random_state": 0}
    phase = {"epochs": 2, "batch_size": 64}
    makers = {
        "ae_kmeans": lambda: AEKMeans(K, n_init=3, **deep, **extra),
        "ae_gmm": lambda: AEGMM(K, **deep, **extra),
        "dec": lambda: DEC(K, update_interval=5, **phase, **deep, **extra),
        "idec": lambda: IDEC(K, update_interval=5, **phase, **deep, **extra),
        "dcn": lambda: DCN(K, **phase, **deep, **extra),
        "vade": lambda: VaDE(K, **phase, **deep, **extra),
        "kmeans": lambda: KMeans(K, n_init=3, random_state=0),
        "minibatch_kmeans": lambda: MiniBatchKMeans(K, n_init=3, random_state=0),
        "gmm": lambda: GMMClusterer(K, covariance_type="diag", n_init=1, random_state=0),
        "pca_kmeans": lambda: PCAKMeans(K, n_init=3, random_state=0),
    }
    return makers[method]()


@dataclass
class Trained:
    root: Path
    dataset: Any
    pipeline: FeaturePipeline
    X: np.ndarray
    frame: pd.DataFrame  # the raw training table with its id column, as a user would give it
    estimators: dict[str, Any] = field(default_factory=dict)

    def bundle(self, method: str) -> Path:
        return self.root / method


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root = tmp_path_factory.mktemp("bundles")
        dataset = make_synthetic_customers(n_samples=N_ROWS, random_state=0)
        features = yaml.safe_load(Path(config_dir(), "features", "default.yaml").read_text())
        pipeline = FeaturePipeline(**features)
        X = pipeline.fit_transform(dataset)
        frame = dataset.frame.copy()
        frame.insert(0, dataset.roles.id, dataset.ids)
        out = Trained(root, dataset, pipeline, X, frame)
        for method in PREDICTING:
            est = make_estimator(method).fit(X)
            out.estimators[method] = est
            save_bundle(
                root / method,
                estimator=est,
                pipeline=pipeline,
                dataset=dataset,
                X=X,
                method=method,
                method_config={"_target_": f"{type(est).__module__}.{type(est).__name__}"},
                data_config=DATA_CONFIG,
                metrics={"silhouette": 0.1},
            )
            np.save(root / f"{method}.labels.npy", np.asarray(est.labels_))
            # The embedding the bundle's transform must reproduce: the estimator's own
            # (deep methods, pca_kmeans), else the feature matrix the method clustered
            own = method in DEEP or method == "pca_kmeans"
            np.save(root / f"{method}.z.npy", est.transform(X) if own else X)
        frame.to_parquet(root / "train.parquet")
        return out
    finally:
        torch.set_num_threads(threads)
