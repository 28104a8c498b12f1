"""N2D (McConville et al. 2020): autoencoder embedding, then UMAP, then a GMM.

umap-learn is an optional dependency, imported only when an N2D is fitted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from deepseg.cluster.baselines import GMMClusterer, _check_int
from deepseg.cluster.deep import _LatentClusterer
from deepseg.nn.modules import Autoencoder

logger = logging.getLogger(__name__)

_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _import_umap() -> Any:
    # numba's OpenMP layer keeps its threads spinning after UMAP returns, which slows every later
    # torch fit in the process several-fold on a small machine; its workqueue layer does not.
    # Only a default: a user's NUMBA_THREADING_LAYER wins.
    os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    try:
        import umap
    except ImportError as err:
        raise ImportError(
            "n2d needs the optional 'umap' extra: pip install 'deepseg[umap]'"
        ) from err
    return umap


def make_umap_gmm(
    n_clusters: int,
    seed: int,
    umap_dim: int | None = None,
    umap_neighbors: int = 20,
    umap_min_dist: float = 0.0,
    umap_metric: str = "euclidean",
    covariance_type: str = "full",
) -> Pipeline:
    """N2D's latent model, unfitted: UMAP to ``umap_dim`` (None: ``n_clusters``) dimensions,
    then a Gaussian mixture. Also DEC/IDEC/DCN's ``init="umap"``."""
    umap = _import_umap()
    reducer = umap.UMAP(
        n_components=n_clusters if umap_dim is None else int(umap_dim),
        n_neighbors=int(umap_neighbors),
        min_dist=float(umap_min_dist),
        metric=umap_metric,
        random_state=seed,
        transform_seed=seed,
        n_jobs=1,  # what umap enforces when seeded; said explicitly to spare its warning
    )
    gmm = GMMClusterer(n_clusters, covariance_type=covariance_type, n_init=3, random_state=seed)
    return Pipeline([("umap", reducer), ("gmm", gmm)])


class N2D(_LatentClusterer):
    """ "Not too deep" clustering (McConville et al. 2020).

    The shared skeleton pretrains an autoencoder and embeds the data; UMAP then learns a
    manifold of the embedding with ``umap_dim`` dimensions, and a Gaussian mixture clusters
    the UMAP embedding. There is no clustering phase: the autoencoder is not fine-tuned.

    ``labels_`` is the GMM's assignment of the UMAP embedding of the training data.
    ``predict`` and ``predict_proba`` map new rows through the autoencoder, the fitted UMAP's
    ``transform`` and the GMM; the training data itself maps to its fitted UMAP embedding, so
    ``predict(X_train)`` equals ``labels_``. ``transform`` returns the autoencoder embedding,
    of shape (n_samples, latent_dim), not the UMAP embedding (that is ``umap_.transform`` of it,
    and ``embedding_`` for the training data).

    UMAP is seeded with the fit's seed (``random_state``, or a drawn one), so the same
    ``random_state`` gives the same labels; a seeded UMAP runs single-threaded.

    Args:
        n_clusters: number of mixture components.
        umap_dim: UMAP output dimensions; None uses ``n_clusters``, as in the paper.
        umap_neighbors: UMAP's ``n_neighbors`` (20 in the paper).
        umap_min_dist: UMAP's ``min_dist`` (0 packs clusters tightly, as in the paper).
        umap_metric: UMAP's input metric.
        covariance_type: GMM covariance type: "full", "tied", "diag" or "spherical".
        autoencoder, pretrain, trainer: grouped options (see :mod:`deepseg.cluster.deep`).
        pretrained: an already trained Autoencoder to start from (pretraining is skipped).
        encoder_from: a bundle whose autoencoder the fit starts from (no pretraining).
        freeze_encoder: no effect (N2D has no clustering phase); accepted for symmetry.
        random_state: seed of pretraining, UMAP and the GMM.

    Attributes:
        labels_: cluster of each training row, shape (n_samples,).
        latent_model_: the fitted ``Pipeline([("umap", ...), ("gmm", ...)])``.
        umap_: the fitted ``umap.UMAP``.
        gmm_: the fitted :class:`~deepseg.cluster.baselines.GMMClusterer`.
        embedding_: UMAP embedding of the training data, shape (n_samples, umap_dim).
        autoencoder_: the pretrained autoencoder.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        umap_dim: int | None = None,
        umap_neighbors: int = 20,
        umap_min_dist: float = 0.0,
        umap_metric: str = "euclidean",
        covariance_type: str = "full",
        autoencoder: Mapping[str, Any] | None = None,
        pretrain: Mapping[str, Any] | None = None,
        trainer: Mapping[str, Any] | None = None,
        pretrained: Autoencoder | None = None,
        encoder_from: str | None = None,
        freeze_encoder: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.umap_dim = umap_dim
        self.umap_neighbors = umap_neighbors
        self.umap_min_dist = umap_min_dist
        self.umap_metric = umap_metric
        self.covariance_type = covariance_type
        self.autoencoder = autoencoder
        self.pretrain = pretrain
        self.trainer = trainer
        self.pretrained = pretrained
        self.encoder_from = encoder_from
        self.freeze_encoder = freeze_encoder
        self.random_state = random_state

    def _validate_params(self, n_samples: int) -> int:
        # Checked before pretraining, so that a bad option or a missing umap fails at once
        seed = super()._validate_params(n_samples)
        if self.umap_dim is not None:
            _check_int(self.umap_dim, "umap_dim", "N2D", 1)
        _check_int(self.umap_neighbors, "umap_neighbors", "N2D", 2)
        md = self.umap_min_dist
        if isinstance(md, bool) or not isinstance(md, int | float) or not md >= 0:
            raise ValueError(
                "The 'umap_min_dist' parameter of N2D must be a float in the range [0, inf). "
                f"Got {md!r} instead."
            )
        if self.covariance_type not in _COVARIANCE_TYPES:
            raise ValueError(
                f"The 'covariance_type' parameter of N2D must be one of "
                f"{list(_COVARIANCE_TYPES)}. Got {self.covariance_type!r} instead."
            )
        _import_umap()
        return seed

    def _make_latent_model(self, seed: int) -> Pipeline:
        return make_umap_gmm(
            self.n_clusters,
            seed,
            umap_dim=self.umap_dim,
            umap_neighbors=self.umap_neighbors,
            umap_min_dist=self.umap_min_dist,
            umap_metric=self.umap_metric,
            covariance_type=self.covariance_type,
        )

    def _init_clusters(self, z: np.ndarray, seed: int) -> np.ndarray:
        out = super()._init_clusters(z, seed)
        self.umap_ = self.latent_model_.named_steps["umap"]
        self.gmm_ = self.latent_model_.named_steps["gmm"]
        self.embedding_ = np.asarray(self.umap_.embedding_)
        return out

    def transform(self, X: Any) -> np.ndarray:
        """Autoencoder embeddings of shape (n_samples, latent_dim), not the UMAP embedding."""
        return super().transform(X)
