import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs

from deepseg.baselines import (
    AutoEpsDBSCAN,
    GMMClusterer,
    LimitedAgglomerative,
    LimitedSpectral,
    PCAKMeans,
    knee_point,
)
from deepseg.metrics import acc


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=600, centers=4, n_features=5, cluster_std=0.6, random_state=0)
    return X, y


@pytest.mark.parametrize(
    "make",
    [
        lambda: GMMClusterer(n_clusters=4, random_state=0),
        lambda: PCAKMeans(n_clusters=4, n_components=3, random_state=0),
        lambda: LimitedAgglomerative(n_clusters=4),
        lambda: LimitedSpectral(n_clusters=4, random_state=0),
        lambda: AutoEpsDBSCAN(),
    ],
    ids=["gmm", "pca_kmeans", "agglomerative", "spectral", "dbscan"],
)
def test_baselines_recover_well_separated_blobs(make, blobs):
    X, y = blobs
    est = make()
    labels = est.fit_predict(X)
    assert labels.shape == (len(X),)
    assert acc(y, labels) >= 0.95
    assert clone(est).get_params() == est.get_params()


def test_predict_matches_labels(blobs):
    X, _ = blobs
    for est in (GMMClusterer(4, random_state=0), PCAKMeans(4, n_components=3, random_state=0)):
        est.fit(X)
        np.testing.assert_array_equal(est.predict(X), est.labels_)
    proba = GMMClusterer(4, random_state=0).fit(X).predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_dbscan_eps_from_k_distance_curve(blobs):
    X, _ = blobs
    est = AutoEpsDBSCAN(min_samples=10).fit(X)
    assert est.eps_ > 0 and est.min_samples_ == 10
    # the chosen eps lies inside the range of 10-NN distances
    from sklearn.neighbors import NearestNeighbors

    d = NearestNeighbors(n_neighbors=10).fit(X).kneighbors(X)[0][:, -1]
    assert d.min() <= est.eps_ <= d.max()
    fixed = AutoEpsDBSCAN(eps=0.5, min_samples=5).fit(X)
    assert fixed.eps_ == 0.5
    with pytest.raises(ValueError, match="'eps' parameter of AutoEpsDBSCAN must be > 0"):
        AutoEpsDBSCAN(eps=-1.0).fit(X)


def test_knee_point():
    assert knee_point(np.array([1.0, 1.1, 1.2, 1.3, 5.0, 9.0])) == 3
    assert knee_point(np.array([2.0, 2.0, 2.0])) == 2


def test_size_limits_are_refused_with_a_clear_message():
    X = np.random.default_rng(0).normal(size=(120, 3))
    with pytest.raises(
        ValueError, match=r"Spectral clustering is refused on 120 samples.*max_samples=100"
    ):
        LimitedSpectral(n_clusters=2, max_samples=100).fit(X)
    with pytest.raises(ValueError, match="Agglomerative clustering is refused"):
        LimitedAgglomerative(n_clusters=2, max_samples=50).fit(X)


def test_gmm_checks_n_clusters():
    with pytest.raises(ValueError, match=r"'n_clusters' parameter of GMMClusterer.*Got 0"):
        GMMClusterer(n_clusters=0).fit(np.zeros((5, 2)))
