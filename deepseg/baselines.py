"""Classic clustering baselines behind one interface.

Every baseline is a scikit-learn style estimator: ``fit(X)`` sets ``labels_`` (its own assignment)
and returns self; ``fit_predict(X)`` returns ``labels_``. Those that can assign new points have
``predict``. The benchmark scores every method on its ``fit_predict`` labels, so DBSCAN and
HDBSCAN (no ``predict``) are scored the same way as the rest.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.cluster import DBSCAN, HDBSCAN, AgglomerativeClustering, KMeans, SpectralClustering
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from deepseg.threads import import_umap, keep_torch_threads
from deepseg.validation import (
    N_CLUSTERS,
    Integral,
    Interval,
    Real,
    StrOptions,
    fit_input,
    new_input,
)

logger = logging.getLogger(__name__)

#: What a super-linear method does above ``max_samples`` rows: fit on a seeded sample of
#: ``max_samples`` rows and give every other row the majority label of its nearest sampled rows
#: ("sample"), or refuse the data ("refuse").
OVERSIZE_MODES = ("sample", "refuse")
#: The sampled rows that vote on the label of a row left out of the sample.
ASSIGN_NEIGHBORS = 5


def _check_int(value: object, name: str, owner: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(
            f"The '{name}' parameter of {owner} must be an int in the range [{low}, inf). "
            f"Got {value!r} instead."
        )


def _check_size(X: np.ndarray, max_samples: int | None, owner: str, why: str) -> None:
    if max_samples is not None and X.shape[0] > max_samples:
        raise ValueError(
            f"{owner} is refused on {X.shape[0]:,} samples: the limit is max_samples="
            f"{max_samples:,} because {why}. Subsample the data, raise max_samples, or use "
            "kmeans/minibatch_kmeans."
        )


def _oversize_sample(
    X: np.ndarray,
    max_samples: int | None,
    oversize: str,
    random_state: Any,
    owner: str,
    why: str,
) -> np.ndarray | None:
    """The sorted indices of the rows to fit on, or None to fit on every row.

    Above ``max_samples`` rows, ``oversize="sample"`` draws ``max_samples`` rows without
    replacement (seeded by ``random_state``); ``"refuse"`` raises (see :func:`_check_size`).

    Raises:
        ValueError: a bad ``oversize`` or ``max_samples``, or too many rows with "refuse".
    """
    if oversize not in OVERSIZE_MODES:
        raise ValueError(
            f"The 'oversize' parameter of {owner} must be one of {OVERSIZE_MODES}. "
            f"Got {oversize!r} instead."
        )
    if max_samples is None:
        return None
    _check_int(max_samples, "max_samples", owner, 2)
    if X.shape[0] <= max_samples:
        return None
    if oversize == "refuse":
        _check_size(X, max_samples, owner, why)
    rng = check_random_state(random_state)
    sample = np.sort(rng.choice(X.shape[0], size=max_samples, replace=False))
    logger.info(
        "%s: fitted on a seeded sample of %d of %d rows (max_samples, oversize=sample); every "
        "other row takes the majority label of its %d nearest sampled rows.",
        owner, max_samples, X.shape[0], ASSIGN_NEIGHBORS,
    )  # fmt: skip
    return sample


def _assign_by_neighbours(
    X: np.ndarray, sample: np.ndarray, sample_labels: np.ndarray
) -> np.ndarray:
    """Labels of every row: the sampled rows keep theirs, the others take the majority label
    of their :data:`ASSIGN_NEIGHBORS` nearest sampled rows (ties: the smallest label).

    Args:
        X: array of shape (n_samples, n_features).
        sample: sorted indices of the fitted rows, shape (n_sample,).
        sample_labels: their labels, shape (n_sample,).

    Returns:
        An array of shape (n_samples,).
    """
    labels = np.empty(X.shape[0], dtype=sample_labels.dtype)
    labels[sample] = sample_labels
    rest = np.ones(X.shape[0], dtype=bool)
    rest[sample] = False
    if rest.any():
        knn = KNeighborsClassifier(n_neighbors=min(ASSIGN_NEIGHBORS, len(sample)))
        labels[rest] = knn.fit(X[sample], sample_labels).predict(X[rest])
    return labels


class GMMClusterer(ClusterMixin, BaseEstimator):
    """Gaussian mixture with the clusterer interface: ``labels_`` are the most likely components.

    Args:
        n_clusters: number of mixture components.
        covariance_type: "full", "tied", "diag" or "spherical".
        n_init: number of initialisations; the best likelihood wins.
        max_iter: EM iterations.
        reg_covar: added to the covariance diagonal.
        random_state: seed.

    Attributes:
        labels_: the most likely component of each row.
        n_iter_: EM iterations of the best initialisation.
        reg_covar_: the covariance regulariser used (raised when a component collapsed).
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "n_clusters": N_CLUSTERS,
        "covariance_type": [StrOptions({"full", "tied", "diag", "spherical"})],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        covariance_type: str = "diag",
        n_init: int = 1,
        max_iter: int = 200,
        reg_covar: float = 1e-4,
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.covariance_type = covariance_type
        self.n_init = n_init
        self.max_iter = max_iter
        self.reg_covar = reg_covar
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> GMMClusterer:
        self._validate_params()
        X = fit_input(self, X, min_samples=2)
        reg_covar = self.reg_covar
        # Features that are constant within a component (shares, flags) collapse its covariance;
        # a larger regulariser is the standard remedy, so retry with one before giving up.
        for attempt in range(4):
            try:
                self.gmm_ = GaussianMixture(
                    n_components=self.n_clusters,
                    covariance_type=self.covariance_type,
                    n_init=self.n_init,
                    max_iter=self.max_iter,
                    reg_covar=reg_covar,
                    random_state=self.random_state,
                ).fit(X)
                break
            except ValueError:
                if attempt == 3:
                    raise
                reg_covar *= 10
                logger.warning("GMM covariance collapsed; retrying with reg_covar=%g", reg_covar)
        self.reg_covar_ = reg_covar
        self.n_iter_ = int(self.gmm_.n_iter_)
        self.labels_ = self.gmm_.predict(X)
        self.cluster_centers_ = self.gmm_.means_
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = new_input(self, X, fitted="gmm_")
        return self.gmm_.predict(X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = new_input(self, X, fitted="gmm_")
        return self.gmm_.predict_proba(X)


class PCAKMeans(ClusterMixin, TransformerMixin, BaseEstimator):
    """K-Means on a PCA projection.

    Args:
        n_clusters: number of clusters.
        n_components: PCA dimensions (int), or a float in (0, 1) for the share of variance kept.
        n_init: K-Means restarts.
        random_state: seed.

    Attributes:
        labels_: the K-Means label of each row.
        n_iter_: K-Means iterations of the best run.
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "n_clusters": N_CLUSTERS,
        "n_components": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0.0, 1.0, closed="neither"),
        ],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        n_components: int | float = 0.9,
        n_init: int = 10,
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_components = n_components
        self.n_init = n_init
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> PCAKMeans:
        self._validate_params()
        X = fit_input(self, X)
        n_comp = self.n_components
        if isinstance(n_comp, int | np.integer):
            n_comp = min(int(n_comp), X.shape[1], X.shape[0])
        elif X.shape[0] < 2:  # a share of the variance needs a variance
            n_comp = 1
        self.pca_ = PCA(n_components=n_comp, random_state=self.random_state).fit(X)
        z = self.pca_.transform(X)
        self.kmeans_ = KMeans(
            n_clusters=self.n_clusters, n_init=self.n_init, random_state=self.random_state
        ).fit(z)
        self.labels_ = self.kmeans_.labels_
        self.n_iter_ = int(self.kmeans_.n_iter_)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The PCA projection, shape (n_samples, n_components)."""
        X = new_input(self, X, fitted="pca_")
        return self.pca_.transform(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = new_input(self, X, fitted="kmeans_")
        return self.kmeans_.predict(self.pca_.transform(X))


def knee_point(values: np.ndarray) -> int:
    """Index of the knee of an increasing curve: the point farthest below its chord.

    >>> knee_point(np.array([1.0, 1.1, 1.2, 1.3, 5.0, 9.0]))
    3
    """
    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    if n < 3 or y[-1] == y[0]:
        return n - 1
    x = np.linspace(0.0, 1.0, n)
    yn = (y - y[0]) / (y[-1] - y[0])
    return int(np.argmax(x - yn))


#: Where the density methods measure density: ``auto`` (an input wider than ``n_components``
#: columns goes to UMAP's manifold of that many dimensions; a narrower one stays as it is),
#: ``input``, ``pca`` or ``umap``.
DENSITY_SPACES = ("auto", "input", "pca", "umap")
#: the dimensions of the reduced space (McInnes' advice for clustering on UMAP: a few, with
#: ``min_dist=0``)
DENSITY_DIMS = 5
#: UMAP's neighbours for the density space
DENSITY_NEIGHBORS = 15


def has_umap() -> bool:
    """Whether umap-learn (the ``umap`` extra) is installed."""
    return importlib.util.find_spec("umap") is not None


def density_space(
    X: np.ndarray, space: str, n_components: int, random_state: Any, metric: str = "euclidean"
) -> tuple[np.ndarray, str]:
    """The rows where a density method runs, and the name of that space.

    In high dimension every distance looks alike and density estimates flatten (a DBSCAN
    radius that holds one cluster holds all of them), so an input wider than ``n_components``
    columns is reduced first under ``space="auto"``: to UMAP's manifold (``min_dist=0``, as
    N2D does).

    A method given another ``metric`` than Euclidean (cosine, a precomputed matrix) keeps its
    input under ``auto``: the reduced spaces are Euclidean. Without umap-learn, ``auto`` keeps
    the input too (principal components measured worse than the raw input nearly everywhere,
    docs/benchmarks.md).

    Returns:
        ``(Z, name)``: the rows in that space and its name, ``input``, ``pca(d)`` or
        ``umap(d)``.
    """
    if space == "auto":
        wide = X.shape[1] > n_components and metric == "euclidean"
        if wide and not has_umap():
            logger.warning(
                "Density measured on the %d input columns: umap-learn is not installed "
                "(pip install umap-learn) for the 5-dimensional space.",
                X.shape[1],
            )
        space = "umap" if wide and has_umap() else "input"
    if space == "input":
        return X, "input"
    dims = max(1, min(int(n_components), X.shape[1], X.shape[0] - 1))
    if space == "pca":
        seed = check_random_state(random_state).randint(2**31 - 1)
        return PCA(n_components=dims, random_state=seed).fit_transform(X), f"pca({dims})"
    if not has_umap():
        raise ImportError("space='umap' needs umap-learn: pip install umap-learn")
    umap = import_umap()

    seed = None if random_state is None else check_random_state(random_state).randint(2**31 - 1)
    reducer = umap.UMAP(
        n_components=dims,
        n_neighbors=max(2, min(DENSITY_NEIGHBORS, X.shape[0] - 1)),
        min_dist=0.0,
        random_state=seed,
        n_jobs=1 if seed is not None else -1,
    )
    with keep_torch_threads():
        embedding = reducer.fit_transform(X)
    return np.asarray(embedding, dtype=np.float64), f"umap({dims})"


_SPACE_CONSTRAINTS: dict[str, list[Any]] = {
    "space": [StrOptions(set(DENSITY_SPACES))],
    "n_components": [Interval(Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
}


class AutoEpsDBSCAN(ClusterMixin, BaseEstimator):
    """DBSCAN whose ``eps``, when not given, is the knee of the sorted k-distance curve.

    Args:
        eps: neighbourhood radius; None picks it from the k-distance curve of ``min_samples``.
        min_samples: core-point neighbourhood size; None uses ``2 * n_features`` (of the space
            it runs in) clipped to [5, 50], a common rule of thumb.
        metric: distance metric.
        space: where density is measured (:data:`DENSITY_SPACES`, :func:`density_space`).
        n_components: the dimensions of a reduced space.
        random_state: seed of the reduction (0: the same labels every run, as DBSCAN without a
            reduction; None: an unseeded, parallel UMAP).

    Attributes:
        eps_: the radius used.
        labels_: cluster labels, -1 for noise.
        space_: the space it ran in: ``input``, ``pca(d)`` or ``umap(d)``.
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "eps": [Interval(Real, 0.0, None, closed="neither"), None],
        "min_samples": [Interval(Integral, 1, None, closed="left"), None],
        "metric": [str],
        **_SPACE_CONSTRAINTS,
    }

    def __init__(
        self,
        eps: float | None = None,
        min_samples: int | None = None,
        metric: str = "euclidean",
        space: str = "auto",
        n_components: int = DENSITY_DIMS,
        random_state: Any = 0,
    ) -> None:
        self.eps = eps
        self.min_samples = min_samples
        self.metric = metric
        self.space = space
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> AutoEpsDBSCAN:
        self._validate_params()
        X = fit_input(self, X)
        X, self.space_ = density_space(
            X, self.space, self.n_components, self.random_state, self.metric
        )
        min_samples = self.min_samples
        if min_samples is None:
            min_samples = int(np.clip(2 * X.shape[1], 5, 50))
        min_samples = min(int(min_samples), X.shape[0])
        eps = self.eps
        if eps is None:
            nn = NearestNeighbors(n_neighbors=min_samples, metric=self.metric).fit(X)
            dist = nn.kneighbors(X)[0][:, -1]
            curve = np.sort(dist)
            eps = float(curve[knee_point(curve)])
            if eps <= 0:
                eps = float(curve[curve > 0][0]) if (curve > 0).any() else 1e-6
            logger.info("DBSCAN eps=%.4g from the %d-distance curve", eps, min_samples)
        self.eps_ = eps
        self.min_samples_ = min_samples
        self.dbscan_ = DBSCAN(eps=eps, min_samples=min_samples, metric=self.metric).fit(X)
        self.labels_ = self.dbscan_.labels_
        return self


class DensityHDBSCAN(ClusterMixin, BaseEstimator):
    """HDBSCAN (scikit-learn's) run where density means something (:func:`density_space`).

    Args:
        min_cluster_size: the smallest group that counts as a cluster.
        min_samples: the neighbourhood of a core point; None: ``min_cluster_size``.
        space: where density is measured (:data:`DENSITY_SPACES`).
        n_components: the dimensions of a reduced space.
        random_state: seed of the reduction (0: the same labels every run, as DBSCAN without a
            reduction; None: an unseeded, parallel UMAP).

    Attributes:
        labels_: cluster labels, -1 for noise.
        space_: the space it ran in: ``input``, ``pca(d)`` or ``umap(d)``.
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "min_cluster_size": [Interval(Integral, 2, None, closed="left")],
        "min_samples": [Interval(Integral, 1, None, closed="left"), None],
        **_SPACE_CONSTRAINTS,
    }

    def __init__(
        self,
        min_cluster_size: int = 25,
        min_samples: int | None = None,
        space: str = "auto",
        n_components: int = DENSITY_DIMS,
        random_state: Any = 0,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.space = space
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> DensityHDBSCAN:
        self._validate_params()
        X = fit_input(self, X, min_samples=2)
        Z, self.space_ = density_space(X, self.space, self.n_components, self.random_state)
        self.hdbscan_ = HDBSCAN(
            min_cluster_size=min(int(self.min_cluster_size), len(Z)),
            min_samples=None if self.min_samples is None else min(int(self.min_samples), len(Z)),
            copy=True,
        ).fit(Z)
        self.labels_ = self.hdbscan_.labels_
        return self


class LimitedAgglomerative(ClusterMixin, BaseEstimator):
    """Agglomerative clustering (Ward by default), fitted on at most ``max_samples`` rows.

    Ward linkage needs memory and time quadratic in the number of samples. Above
    ``max_samples`` rows, ``oversize="sample"`` (the default) fits on a seeded random sample of
    ``max_samples`` rows and gives every other row the majority label of its 5 nearest sampled
    rows; ``oversize="refuse"`` raises instead.

    ``metric`` is the distance of the linkages other than Ward (``"cosine"`` with
    ``linkage="average"`` suits directions such as sentence embeddings: it lets a corpus of topics
    of very unequal sizes keep its small topics); Ward is Euclidean only.

    Attributes:
        labels_: the label of every row, shape (n_samples,).
        sample_indices_: the sorted rows the hierarchy was fitted on (None: every row);
            ``children_`` indexes these rows.
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "n_clusters": N_CLUSTERS,
        "linkage": [StrOptions({"ward", "complete", "average", "single"})],
        "max_samples": [Interval(Integral, 2, None, closed="left"), None],
        "oversize": [StrOptions(set(OVERSIZE_MODES))],
        "random_state": ["random_state"],
        "metric": [str],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        linkage: str = "ward",
        max_samples: int | None = 30000,
        oversize: str = "sample",
        random_state: int | None = None,
        metric: str = "euclidean",
    ):
        self.n_clusters = n_clusters
        self.linkage = linkage
        self.metric = metric
        self.max_samples = max_samples
        self.oversize = oversize
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> LimitedAgglomerative:
        self._validate_params()
        X = fit_input(self, X, min_samples=2)
        sample = _oversize_sample(
            X, self.max_samples, self.oversize, self.random_state,
            "Agglomerative clustering", "it is quadratic in memory",
        )  # fmt: skip
        fitted = X if sample is None else X[sample]
        if self.linkage == "ward" and self.metric != "euclidean":
            raise ValueError(
                "The 'metric' parameter of LimitedAgglomerative must be 'euclidean' with "
                f"linkage='ward'. Got {self.metric!r} instead."
            )
        self.model_ = AgglomerativeClustering(
            n_clusters=self.n_clusters, linkage=self.linkage, metric=self.metric
        ).fit(fitted)
        self.sample_indices_ = sample
        self.labels_ = (
            self.model_.labels_
            if sample is None
            else _assign_by_neighbours(X, sample, self.model_.labels_)
        )
        self.children_ = self.model_.children_
        return self


class LimitedSpectral(ClusterMixin, BaseEstimator):
    """Spectral clustering on a k-nearest-neighbour graph, fitted on at most ``max_samples`` rows.

    Above ``max_samples`` rows, ``oversize="sample"`` (the default) fits on a seeded random
    sample of ``max_samples`` rows and gives every other row the majority label of its 5 nearest
    sampled rows; ``oversize="refuse"`` raises instead.

    Attributes:
        labels_: the label of every row, shape (n_samples,).
        sample_indices_: the sorted rows the graph was built on (None: every row).
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "n_clusters": N_CLUSTERS,
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "max_samples": [Interval(Integral, 2, None, closed="left"), None],
        "oversize": [StrOptions(set(OVERSIZE_MODES))],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        n_neighbors: int = 15,
        max_samples: int | None = 10000,
        oversize: str = "sample",
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.max_samples = max_samples
        self.oversize = oversize
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: object = None) -> LimitedSpectral:
        self._validate_params()
        X = fit_input(self, X, min_samples=2)
        sample = _oversize_sample(
            X, self.max_samples, self.oversize, self.random_state,
            "Spectral clustering", "its eigen-decomposition scales badly",
        )  # fmt: skip
        fitted = X if sample is None else X[sample]
        self.model_ = SpectralClustering(
            n_clusters=self.n_clusters,
            affinity="nearest_neighbors",
            n_neighbors=min(self.n_neighbors, fitted.shape[0] - 1),
            assign_labels="cluster_qr",
            random_state=self.random_state,
        ).fit(fitted)
        self.sample_indices_ = sample
        self.labels_ = (
            self.model_.labels_
            if sample is None
            else _assign_by_neighbours(X, sample, self.model_.labels_)
        )
        return self


def segmenter_parts(estimator: Any) -> tuple[Any, Any, str | None]:
    """What a bundle stores of a fitted classic method: (fixed encoder or None, head, None).

    K-Means-like methods assign to their nearest centre, Gaussian mixtures by their
    responsibilities, ``PCAKMeans`` projects first. The heads are :mod:`deepseg.nn.heads`
    modules (torch is imported here only, when a bundle is written).

    Raises:
        ValueError: when the method cannot assign new rows (agglomerative, dbscan, hdbscan,
            spectral): it gets no bundle.
    """
    import torch

    from deepseg.nn.heads import GaussianMixtureHead, LinearProjection, NearestCenter

    def t(value: Any) -> torch.Tensor:
        return torch.as_tensor(np.asarray(value)).detach().clone().contiguous()

    if isinstance(estimator, PCAKMeans):
        check_is_fitted(estimator, "kmeans_")
        encoder = LinearProjection(t(estimator.pca_.mean_), t(estimator.pca_.components_))
        return encoder, NearestCenter(t(estimator.kmeans_.cluster_centers_)), None
    gmm = getattr(estimator, "gmm_", estimator)
    if hasattr(gmm, "precisions_cholesky_"):
        return None, GaussianMixtureHead.from_mixture(gmm), None
    if hasattr(estimator, "cluster_centers_") and hasattr(estimator, "predict"):
        return None, NearestCenter(t(estimator.cluster_centers_)), None
    raise ValueError(
        f"{type(estimator).__name__} cannot assign new rows (it has no predict), so it gets no "
        "bundle."
    )
