import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import AgglomerativeClustering, SpectralClustering
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
    with pytest.raises(
        ValueError,
        match=r"'eps' parameter of AutoEpsDBSCAN must be a float in the range \(0.0, inf\)",
    ):
        AutoEpsDBSCAN(eps=-1.0).fit(X)


def test_knee_point():
    assert knee_point(np.array([1.0, 1.1, 1.2, 1.3, 5.0, 9.0])) == 3
    assert knee_point(np.array([2.0, 2.0, 2.0])) == 2


def test_size_limits_are_refused_with_a_clear_message():
    X = np.random.default_rng(0).normal(size=(120, 3))
    with pytest.raises(
        ValueError, match=r"Spectral clustering is refused on 120 samples.*max_samples=100"
    ):
        LimitedSpectral(n_clusters=2, max_samples=100, oversize="refuse").fit(X)
    with pytest.raises(ValueError, match="Agglomerative clustering is refused"):
        LimitedAgglomerative(n_clusters=2, max_samples=50, oversize="refuse").fit(X)


def test_gmm_checks_n_clusters():
    with pytest.raises(ValueError, match=r"'n_clusters' parameter of GMMClusterer.*Got 0"):
        GMMClusterer(n_clusters=0).fit(np.zeros((5, 2)))


def _plain(name: str, X: np.ndarray, seed: int) -> np.ndarray:
    """The scikit-learn fit that the oversize sample is given, written out independently."""
    if name == "agglomerative":
        return AgglomerativeClustering(n_clusters=4, linkage="ward").fit(X).labels_
    return (
        SpectralClustering(
            n_clusters=4, affinity="nearest_neighbors", n_neighbors=15,
            assign_labels="cluster_qr", random_state=seed,
        ).fit(X).labels_
    )  # fmt: skip


def _majority_of_5_nearest(X_sample, sample_labels, X_rest):
    d = ((X_rest[:, None, :] - X_sample[None, :, :]) ** 2).sum(axis=2)
    nearest = np.argsort(d, axis=1, kind="stable")[:, :5]
    votes = sample_labels[nearest]
    # the most frequent label of the 5; ties go to the smallest label
    return np.array([np.bincount(v, minlength=4).argmax() for v in votes])


OVERSIZED = {
    "agglomerative": lambda **kw: LimitedAgglomerative(n_clusters=4, **kw),
    "spectral": lambda **kw: LimitedSpectral(n_clusters=4, **kw),
}


@pytest.mark.parametrize("name", list(OVERSIZED))
def test_oversize_sample_fits_a_seeded_sample_and_labels_every_row(name):
    # overlapping blobs, so that the 5-NN votes of the other rows are not all unanimous
    X, y = make_blobs(n_samples=400, centers=4, n_features=3, cluster_std=2.5, random_state=1)
    est = OVERSIZED[name](max_samples=120, random_state=7).fit(X)
    sample = est.sample_indices_
    assert sample.shape == (120,) and (np.diff(sample) > 0).all()  # sorted, no repeats
    assert est.labels_.shape == (400,)
    assert set(np.unique(est.labels_)) == set(range(4))
    # the sampled rows keep the labels of the method fitted on them alone
    np.testing.assert_array_equal(est.labels_[sample], _plain(name, X[sample], 7))
    # every other row takes the majority label of its 5 nearest sampled rows
    rest = np.setdiff1d(np.arange(400), sample)
    expected = _majority_of_5_nearest(X[sample], est.labels_[sample], X[rest])
    np.testing.assert_array_equal(est.labels_[rest], expected)
    assert acc(y, est.labels_) > 0.8
    assert clone(est).get_params() == est.get_params()


@pytest.mark.parametrize("name", list(OVERSIZED))
def test_oversize_sample_is_deterministic_for_a_seed(name):
    X, _ = make_blobs(n_samples=300, centers=4, n_features=3, cluster_std=2.0, random_state=2)
    a = OVERSIZED[name](max_samples=100, random_state=3).fit(X)
    b = OVERSIZED[name](max_samples=100, random_state=3).fit(X)
    np.testing.assert_array_equal(a.sample_indices_, b.sample_indices_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    c = OVERSIZED[name](max_samples=100, random_state=4).fit(X)
    assert not np.array_equal(a.sample_indices_, c.sample_indices_)


@pytest.mark.parametrize("name", list(OVERSIZED))
def test_data_within_max_samples_is_fitted_whole(name):
    X, _ = make_blobs(n_samples=150, centers=4, n_features=3, random_state=0)
    est = OVERSIZED[name](max_samples=150, random_state=0).fit(X)
    assert est.sample_indices_ is None
    np.testing.assert_array_equal(est.labels_, _plain(name, X, 0))


def test_a_bad_oversize_is_refused_by_name():
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"'oversize' parameter of LimitedSpectral.*'drop'"):
        LimitedSpectral(n_clusters=2, oversize="drop").fit(X)
    with pytest.raises(
        ValueError, match=r"'max_samples' parameter of LimitedAgglomerative.*Got 0"
    ):
        LimitedAgglomerative(n_clusters=2, max_samples=0).fit(X)


def test_density_space_follows_the_width_of_the_input():
    from deepseg.baselines import density_space

    rng = np.random.default_rng(0)
    narrow, wide = rng.normal(size=(60, 5)), rng.normal(size=(60, 12))
    assert density_space(narrow, "auto", 5, 0)[1] == "input"
    assert density_space(narrow, "auto", 5, 0)[0] is narrow
    Z, name = density_space(wide, "pca", 5, 0)
    assert name == "pca(5)" and Z.shape == (60, 5)
    Z, name = density_space(wide, "umap", 3, 0)
    assert name == "umap(3)" and Z.shape == (60, 3)


def test_density_methods_find_blobs_hidden_among_noise_columns():
    """Four blobs in 4 columns beside 36 columns of noise: in the raw 40 dimensions every
    distance looks alike and both methods find one cluster (ACC 0.5); in the 5-dimensional
    UMAP space that space="auto" picks for a wide input they find the four (ACC 1.0 measured;
    0.9 leaves room for another UMAP build)."""
    from deepseg.baselines import DensityHDBSCAN

    rng = np.random.default_rng(0)
    X, y = make_blobs(800, centers=4, n_features=4, cluster_std=1.0, random_state=0)
    X = np.hstack([X, rng.normal(size=(800, 36))])
    for est in (AutoEpsDBSCAN(space="input"), DensityHDBSCAN(space="input")):
        assert acc(y, est.fit(X).labels_) <= 0.6
    for est in (AutoEpsDBSCAN(random_state=0), DensityHDBSCAN(random_state=0)):
        est.fit(X)
        assert est.space_ == "umap(5)"
        assert acc(y, est.labels_) >= 0.9
