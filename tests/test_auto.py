"""model=auto (deepseg.auto.AutoCluster): candidates fitted, one partition chosen label-free."""

import doctest

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import normalized_mutual_info_score

import deepseg.auto as auto_module
from deepseg.auto import AutoCluster, agreement_scores
from deepseg.metrics import acc

KMEANS = {"_target_": "sklearn.cluster.KMeans", "n_init": 5}
GMM = {"_target_": "deepseg.baselines.GMMClusterer"}
WARD = {"_target_": "deepseg.baselines.LimitedAgglomerative"}
# a candidate that finds no structure: every point in one of two halves by its index order
SPLIT = {"_target_": "tests.test_auto.IndexHalves"}


class IndexHalves:
    """A deliberately poor clusterer (the first half of the rows against the second)."""

    def __init__(self, n_clusters: int = 2) -> None:
        self.n_clusters = n_clusters

    def fit_predict(self, X):
        return (np.arange(len(X)) * self.n_clusters // len(X)).astype(int)


class Broken:
    def __init__(self, n_clusters: int = 2) -> None:
        self.n_clusters = n_clusters

    def fit_predict(self, X):
        raise RuntimeError("this candidate always fails")


class NeedsExtra:
    """Like n2d without the umap extra: its parameter check raises ImportError."""

    def __init__(self, n_clusters: int = 2) -> None:
        self.n_clusters = n_clusters

    def check_params(self, n_samples: int) -> int:
        raise ImportError("this candidate needs the 'umap' extra")

    def fit_predict(self, X):
        self.check_params(len(X))


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=400, centers=4, n_features=5, cluster_std=1.5, random_state=3)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    return X[order].astype(np.float32), y[order]


def test_doctests():
    assert doctest.testmod(auto_module, raise_on_error=False).failed == 0


def test_agreement_is_the_mean_nmi_with_the_other_partitions():
    rng = np.random.default_rng(1)
    parts = {name: rng.integers(0, 3, 50) for name in "abcd"}
    scores = agreement_scores(parts)
    for name, value in scores.items():
        others = [normalized_mutual_info_score(parts[name], parts[o]) for o in parts if o != name]
        assert value == pytest.approx(np.mean(others), rel=1e-12)


def test_the_outlier_partition_loses_and_labels_are_the_winners_own(blobs):
    X, y = blobs
    est = AutoCluster(
        4, {"kmeans": KMEANS, "gmm": GMM, "ward": WARD, "halves": SPLIT}, random_state=0
    ).fit(X)
    assert set(est.scores_) == {"kmeans", "gmm", "ward", "halves"}
    assert est.chosen_ != "halves"
    assert est.scores_["halves"] == min(est.scores_.values())
    assert est.chosen_ == max(est.scores_, key=est.scores_.get)
    np.testing.assert_array_equal(est.labels_, est.candidate_labels_[est.chosen_])
    assert acc(y, est.labels_) >= 0.9
    assert est.chosen_ in est.reason_ and "mean NMI" in est.reason_
    np.testing.assert_array_equal(est.predict(X), est.best_estimator_.predict(X))
    selection = est.selection()
    assert selection["chosen"] == est.chosen_ and set(selection["scores"]) == set(est.scores_)


def test_a_failing_candidate_is_recorded_and_left_out(blobs):
    X, _ = blobs
    broken = {"_target_": "tests.test_auto.Broken"}
    est = AutoCluster(4, {"kmeans": KMEANS, "broken": broken, "gmm": GMM}, random_state=0).fit(X)
    assert "broken" in est.failed_ and "always fails" in est.failed_["broken"]
    assert set(est.scores_) == {"kmeans", "gmm"}
    with pytest.raises(RuntimeError, match="always fails"):
        AutoCluster(4, {"broken": broken}, random_state=0).fit(X)


def test_a_candidate_without_its_extra_is_left_out_and_named(blobs):
    X, _ = blobs
    extra = {"_target_": "tests.test_auto.NeedsExtra"}
    est = AutoCluster(4, {"kmeans": KMEANS, "n2d": extra, "gmm": GMM}, random_state=0)
    assert est.check_params(len(X)) == 0  # not an error before the work starts
    est.fit(X)
    assert "umap" in est.failed_["n2d"] and set(est.scores_) == {"kmeans", "gmm"}
    assert est.selection()["failed"] == est.failed_


def test_a_candidate_set_to_null_is_left_out(blobs):
    X, _ = blobs
    est = AutoCluster(4, {"kmeans": KMEANS, "gmm": None, "ward": WARD}, random_state=0).fit(X)
    assert set(est.scores_) == {"kmeans", "ward"} and not est.failed_
    with pytest.raises(ValueError, match="'candidates' parameter"):
        AutoCluster(4, {"gmm": None}, random_state=0).fit(X)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_clusters": 1}, "'n_clusters' parameter of AutoCluster"),
        ({"candidates": {}}, "'candidates' parameter of AutoCluster"),
        ({"criterion": "silhouette"}, "'criterion' parameter of AutoCluster"),
        ({"candidates": {"x": {"n_init": 3}}}, "candidate 'x' of AutoCluster needs a _target_"),
    ],
)
def test_bad_parameters_name_themselves(blobs, kwargs, match):
    X, _ = blobs
    params = {"n_clusters": 4, "candidates": {"kmeans": KMEANS}, "random_state": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        AutoCluster(**params).fit(X)


def test_same_seed_same_choice_and_labels(blobs):
    X, _ = blobs
    cands = {"kmeans": KMEANS, "gmm": GMM, "ward": WARD}
    a = AutoCluster(4, cands, random_state=5).fit(X)
    b = AutoCluster(4, cands, random_state=5).fit(X)
    assert a.chosen_ == b.chosen_ and a.scores_ == b.scores_
    np.testing.assert_array_equal(a.labels_, b.labels_)
