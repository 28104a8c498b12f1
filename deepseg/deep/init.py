"""First centres of DEC, IDEC and DCN in the embedding: ``kmeans`` (the papers') or ``umap``.

``umap`` uses N2D's latent model (UMAP of the embedding, then a Gaussian mixture), which is also
defined here; umap-learn is an optional dependency, imported only when it is used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline

from deepseg.baselines import GMMClusterer
from deepseg.threads import import_umap, keep_torch_threads

INITS = ("kmeans", "umap")


def require_umap() -> Any:
    """The ``umap`` module, or an ImportError naming the extra that provides it."""
    # numba's workqueue threading layer, not OpenMP (deepseg.threads: the OpenMP layer changes
    # torch's thread count and keeps its threads spinning); a user's NUMBA_THREADING_LAYER wins
    try:
        umap = import_umap()
    except ImportError as err:
        raise ImportError(
            "n2d and init='umap' need umap-learn (a dependency of deepseg): pip install umap-learn"
        ) from err
    return umap


#: The most UMAP dimensions N2D takes by default. The paper's ``umap_dim = n_clusters`` (k = 10
#: there) costs UMAP time linear and the full-covariance mixture time quadratic in the dimension:
#: on CLINC150 (k = 150) n2d took 183 s against 47 s at 16 dimensions, and on 20,000 documents
#: with k = 320 it did not finish. On the suite's datasets with k > 16 (seed 0) 16 dimensions
#: score as k does: BANKING77 0.678 / 0.684, CLINC150 0.782 / 0.782, tweet 0.578 / 0.572,
#: letter 0.337 / 0.317 (docs/benchmarks.md); every dataset with k <= 16 is unchanged.
UMAP_DIM_CAP = 16


def default_umap_dim(n_clusters: int) -> int:
    """N2D's UMAP dimension when ``umap_dim`` is None: ``n_clusters``, as in the paper, at most
    :data:`UMAP_DIM_CAP`."""
    return min(int(n_clusters), UMAP_DIM_CAP)


def make_umap_gmm(
    n_clusters: int,
    seed: int,
    umap_dim: int | None = None,
    umap_neighbors: int = 20,
    umap_min_dist: float = 0.0,
    umap_metric: str = "euclidean",
    covariance_type: str = "full",
) -> Pipeline:
    """N2D's latent model, unfitted: UMAP to ``umap_dim`` dimensions (None:
    :func:`default_umap_dim`), then a Gaussian mixture."""
    umap = require_umap()
    reducer = umap.UMAP(
        n_components=default_umap_dim(n_clusters) if umap_dim is None else int(umap_dim),
        n_neighbors=int(umap_neighbors),
        min_dist=float(umap_min_dist),
        metric=umap_metric,
        random_state=seed,
        transform_seed=seed,
        n_jobs=1,  # what umap enforces when seeded; said explicitly to spare its warning
    )
    gmm = GMMClusterer(n_clusters, covariance_type=covariance_type, n_init=3, random_state=seed)
    return Pipeline([("umap", reducer), ("gmm", gmm)])


def initial_centers(z: np.ndarray, n_clusters: int, init: str, seed: int) -> np.ndarray:
    """Initial centres of shape (n_clusters, latent_dim).

    Args:
        z: the embedding, shape (n_samples, latent_dim).
        n_clusters: number of centres.
        init: "kmeans": K-Means centres, 20 restarts (the papers'). "umap": the embedding's
            means over the clusters that N2D finds in it (UMAP, then a Gaussian mixture), which
            follow the embedding's manifold rather than its Euclidean spread.
        seed: the seed of K-Means / UMAP and the mixture.
    """
    if init == "umap":
        with keep_torch_threads():
            latent = make_umap_gmm(n_clusters, seed).fit(z)
        labels = np.asarray(latent.named_steps["gmm"].labels_)
        rng = np.random.default_rng(seed)
        centres = np.empty((n_clusters, z.shape[1]), dtype=np.float32)
        for j in range(n_clusters):
            members = z[labels == j]
            # an empty component (rare) starts at a random row
            centres[j] = members.mean(0) if len(members) else z[rng.integers(len(z))]
        return centres
    km = KMeans(n_clusters, n_init=20, random_state=seed).fit(z)
    return km.cluster_centers_.astype(np.float32)
