"""Deep methods without a clustering phase: a classic clusterer in an autoencoder's embedding.

``AEKMeans`` (K-Means), ``AEGMM`` (a Gaussian mixture) and ``N2D`` (McConville et al. 2020:
UMAP of the embedding, then a Gaussian mixture; umap-learn is an optional dependency, imported
only when an N2D is fitted).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from deepseg.baselines import GMMClusterer
from deepseg.deep import params as P
from deepseg.deep.estimator import DeepClusterer
from deepseg.deep.init import make_umap_gmm
from deepseg.nn.heads import COVARIANCE_TYPES, GaussianMixtureHead, NearestCenter
from deepseg.threads import keep_torch_threads

logger = logging.getLogger(__name__)

N2D_REASON = (
    "n2d assigns segments through UMAP, whose fitted state cannot be stored without pickle; "
    "its bundle keeps the encoder (transform / deepseg-embed) but cannot predict. Refit n2d, or "
    "use the embedding with another method."
)


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """One hashable bytes key per row of a float32 matrix (its exact bit pattern)."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


@dataclasses.dataclass(eq=False, repr=False)
class LatentClusterer(DeepClusterer):
    """Autoencoder embedding, then a classic clusterer in latent space (no clustering phase)."""

    def _make_latent_model(self, seed: int) -> Any:
        raise NotImplementedError

    def _init_clusters(self, z: np.ndarray, seed: int) -> np.ndarray:
        self.latent_model_ = self._make_latent_model(seed).fit(z)
        return np.zeros((0,), dtype=np.float32)

    def _proba(self, z: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "latent_model_")
        if hasattr(self.latent_model_, "predict_proba"):
            return self.latent_model_.predict_proba(z)
        labels = self.latent_model_.predict(z)
        return np.eye(self.n_clusters, dtype=np.float32)[labels]


@dataclasses.dataclass(eq=False, repr=False)
class AEKMeans(LatentClusterer):
    """K-Means on an autoencoder's embedding (``ae_kmeans``).

    Args:
        n_clusters: number of clusters.
        n_init: K-Means restarts.
        autoencoder, pretrain, trainer, pretrained, encoder_from, freeze_encoder, random_state:
            the options every deep method shares (see :mod:`deepseg.deep.estimator`).
    """

    n_init: int = P.param(20, P.POSITIVE_INT)

    def _make_latent_model(self, seed: int) -> Any:
        return KMeans(self.n_clusters, n_init=self.n_init, random_state=seed)

    def _head(self) -> NearestCenter:
        check_is_fitted(self, "latent_model_")
        return NearestCenter(torch.as_tensor(self.latent_model_.cluster_centers_))


@dataclasses.dataclass(eq=False, repr=False)
class AEGMM(LatentClusterer):
    """A Gaussian mixture on an autoencoder's embedding (``ae_gmm``).

    Args:
        n_clusters: number of components.
        covariance_type: GMM covariance type.
        autoencoder, pretrain, trainer, pretrained, encoder_from, freeze_encoder, random_state:
            the options every deep method shares (see :mod:`deepseg.deep.estimator`).
    """

    covariance_type: str = P.param("full", P.Options(COVARIANCE_TYPES))

    def _make_latent_model(self, seed: int) -> Any:
        return GMMClusterer(
            self.n_clusters, covariance_type=self.covariance_type, n_init=3, random_state=seed
        )

    def _head(self) -> GaussianMixtureHead:
        check_is_fitted(self, "latent_model_")
        return GaussianMixtureHead.from_mixture(self.latent_model_.gmm_)


@dataclasses.dataclass(eq=False, repr=False)
class N2D(LatentClusterer):
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
        umap_dim: UMAP output dimensions; None uses ``n_clusters`` (as in the paper), at most
            16 (:data:`deepseg.deep.init.UMAP_DIM_CAP`).
        umap_neighbors: UMAP's ``n_neighbors`` (20 in the paper).
        umap_min_dist: UMAP's ``min_dist`` (0 packs clusters tightly, as in the paper).
        umap_metric: UMAP's input metric.
        covariance_type: GMM covariance type: "full", "tied", "diag" or "spherical".
        freeze_encoder: no effect (N2D has no clustering phase); accepted for symmetry.
        random_state: seed of pretraining, UMAP and the GMM.
        autoencoder, pretrain, trainer, pretrained, encoder_from: the options every deep
            method shares (see :mod:`deepseg.deep.estimator`).

    Attributes:
        labels_: cluster of each training row, shape (n_samples,).
        latent_model_: the fitted ``Pipeline([("umap", ...), ("gmm", ...)])``.
        umap_: the fitted ``umap.UMAP``.
        gmm_: the fitted :class:`~deepseg.baselines.GMMClusterer`.
        embedding_: UMAP embedding of the training data, shape (n_samples, umap_dim).
        autoencoder_: the pretrained autoencoder.
    """

    needs_umap = True  # checked before pretraining, so that a missing umap fails at once
    umap_dim: int | None = P.param(None, P.AnyOf((P.POSITIVE_INT, P.NONE)))
    umap_neighbors: int = P.param(20, P.Interval(int, 2, None))
    umap_min_dist: float = P.param(0.0, P.NON_NEGATIVE_FLOAT)
    umap_metric: str = P.param("euclidean", P.InstanceOf((str,), "a metric name (str)"))
    covariance_type: str = P.param("full", P.Options(COVARIANCE_TYPES))

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
        with keep_torch_threads():  # UMAP runs on numba (deepseg.threads)
            out = super()._init_clusters(z, seed)
        self.umap_ = self.latent_model_.named_steps["umap"]
        self.gmm_ = self.latent_model_.named_steps["gmm"]
        self.embedding_ = np.asarray(self.umap_.embedding_)
        self._row_index = None  # the training rows' lookup, built on first use
        return out

    def transform(self, X: Any) -> np.ndarray:
        """Autoencoder embeddings of shape (n_samples, latent_dim), not the UMAP embedding."""
        return super().transform(X)

    def _proba(self, z: np.ndarray) -> np.ndarray:
        """The GMM's responsibilities in the UMAP embedding of ``z``: a training row takes its
        fitted UMAP position, whatever the order or company of the rows, and only the other
        rows go through ``umap_.transform``."""
        check_is_fitted(self, "latent_model_")
        if getattr(self, "_row_index", None) is None:
            self._row_index = pd.Index(_row_keys(np.asarray(self.umap_._raw_data)))
        z = np.ascontiguousarray(z, dtype=np.float32)
        # duplicate training rows: get_indexer needs unique keys; any copy's position will do
        index = self._row_index
        positions = np.arange(len(index))
        if not index.is_unique:
            first = ~index.duplicated(keep="first")
            index, positions = index[first], positions[first]
        hit = index.get_indexer(_row_keys(z))
        found = np.where(hit >= 0, positions[np.maximum(hit, 0)], -1)
        mapped = np.empty((len(z), self.embedding_.shape[1]), dtype=np.float64)
        known = found >= 0
        mapped[known] = self.embedding_[found[known]]
        if not known.all():
            with keep_torch_threads():
                mapped[~known] = self.umap_.transform(z[~known])
        return self.gmm_.predict_proba(mapped)

    def _head(self) -> None:
        return None

    def segmenter_parts(self) -> tuple[torch.nn.Module, None, str]:
        check_is_fitted(self, "autoencoder_")
        return self.autoencoder_, None, N2D_REASON
