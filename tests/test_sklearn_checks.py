"""scikit-learn's own estimator checks over every public deepseg estimator (issue 33).

Each estimator is built with small settings (a tiny autoencoder, one epoch, no step minimum),
so that the whole suite of checks stays fast; the checks themselves are scikit-learn's, run as
they are. A check that cannot apply is declared in ``EXPECTED_FAILED_CHECKS`` with its reason.
"""

from __future__ import annotations

from sklearn.cluster import KMeans
from sklearn.utils.estimator_checks import parametrize_with_checks

from deepseg import (
    AEGMM,
    DCN,
    DEC,
    IDEC,
    N2D,
    AEKMeans,
    AutoCluster,
    AutoEpsDBSCAN,
    GMMClusterer,
    PCAKMeans,
    VaDE,
)
from deepseg.baselines import DensityHDBSCAN, LimitedAgglomerative, LimitedSpectral
from deepseg.refine import SelfTraining

#: the smallest network and budget that still runs every phase of a deep fit
TINY = {
    "autoencoder": {"hidden_dims": [8], "latent_dim": 2},
    "pretrain": {"epochs": 1, "min_steps": 0},
    "random_state": 0,
}

ESTIMATORS = [
    GMMClusterer(n_clusters=3, random_state=0),
    PCAKMeans(n_clusters=3, n_init=1, random_state=0),
    AutoEpsDBSCAN(space="pca", random_state=0),
    DensityHDBSCAN(min_cluster_size=5),  # the default space: UMAP above 5 columns
    DensityHDBSCAN(min_cluster_size=5, space="pca"),
    LimitedAgglomerative(n_clusters=3),
    LimitedSpectral(n_clusters=3, random_state=0),
    DEC(n_clusters=3, epochs=1, **TINY),
    IDEC(n_clusters=3, epochs=1, **TINY),
    DCN(n_clusters=3, epochs=1, **TINY),
    VaDE(n_clusters=3, epochs=1, **TINY),
    AEKMeans(n_clusters=3, n_init=1, **TINY),
    AEGMM(n_clusters=3, **TINY),
    N2D(n_clusters=3, umap_neighbors=5, **TINY),
    AutoCluster(
        n_clusters=3,
        candidates={
            "kmeans": {"_target_": "sklearn.cluster.KMeans", "n_init": 1},
            "gmm": {"_target_": "deepseg.baselines.GMMClusterer"},
        },
        random_state=0,
    ),
    SelfTraining(KMeans(3, n_init=1, random_state=0), max_iter=2),
]

EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
