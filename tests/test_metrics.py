"""Tests for deepseg.metrics."""

from __future__ import annotations

import doctest
import itertools
import math
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from deepseg import metrics as M

MetricFn = Callable[..., float]
Blobs = tuple[np.ndarray, np.ndarray]

FAST = settings(max_examples=60, deadline=None, database=None)

LABEL_BASED_VS_SKLEARN = [
    (M.nmi, skm.normalized_mutual_info_score),
    (M.ari, skm.adjusted_rand_score),
    (M.ami, skm.adjusted_mutual_info_score),
    (M.homogeneity, skm.homogeneity_score),
    (M.completeness, skm.completeness_score),
    (M.v_measure, skm.v_measure_score),
]
LABEL_FREE = [M.silhouette, M.davies_bouldin, M.calinski_harabasz, M.inertia]
LABEL_FREE_VS_SKLEARN = [
    (M.silhouette, skm.silhouette_score),
    (M.davies_bouldin, skm.davies_bouldin_score),
    (M.calinski_harabasz, skm.calinski_harabasz_score),
]


@pytest.fixture(scope="module")
def blobs() -> Blobs:
    X, y = make_blobs(n_samples=300, centers=4, n_features=3, random_state=0)
    return X, y


def brute_force_acc(labels_true: list[object], labels_pred: list[object]) -> float:
    """Best one-to-one matching found by trying every injective mapping."""
    pairs = Counter(zip(labels_true, labels_pred))
    classes = sorted(set(labels_true), key=repr)
    clusters = sorted(set(labels_pred), key=repr)
    best = 0
    if len(classes) <= len(clusters):
        for chosen in itertools.permutations(clusters, len(classes)):
            best = max(best, sum(pairs[(c, k)] for c, k in zip(classes, chosen)))
    else:
        for chosen in itertools.permutations(classes, len(clusters)):
            best = max(best, sum(pairs[(c, k)] for c, k in zip(chosen, clusters)))
    return best / len(labels_true)


# ---------------------------------------------------------------------------------------------
# acc: hand-computed cases
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels_true", "labels_pred", "expected"),
    [
        # cluster 1 = {0,1} (class 0), cluster 0 = {2,3,4,5} (one class-0 point, three class-1).
        # Best matching 0->1, 1->0 gets 2 + 3 = 5 of 6.
        ([0, 0, 0, 1, 1, 1], [1, 1, 0, 0, 0, 0], 5 / 6),
        # predicted k (3) > true k (2): cluster 1 is left unmatched, its point is an error.
        ([0, 0, 0, 1, 1, 1], [0, 0, 1, 2, 2, 2], 5 / 6),
        # predicted k (2) < true k (3): cluster 0 holds classes 0 and 1, only one can match.
        ([0, 0, 1, 1, 2, 2], [0, 0, 0, 0, 1, 1], 4 / 6),
        # string labels: x->a (2), y->b (2), z->c (1).
        (["a", "a", "b", "b", "c", "c"], ["x", "x", "y", "y", "y", "z"], 5 / 6),
        # non-contiguous integer labels on both sides.
        ([10, 10, 30, 30, 30], [-5, 7, 7, 7, 7], 4 / 5),
        # every point its own cluster: only one cluster per class can be matched.
        ([0, 0, 1, 1], [0, 1, 2, 3], 2 / 4),
        # contingency [[3, 2], [2, 0]]: greedy takes the 3 and ends with 3/7; optimal is 2 + 2.
        ([0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 0, 0], 4 / 7),
    ],
)
def test_acc_hand_computed(
    labels_true: list[object], labels_pred: list[object], expected: float
) -> None:
    assert M.acc(labels_true, labels_pred) == pytest.approx(expected)


def test_acc_accepts_numpy_and_mixed_types() -> None:
    y_true = np.array(["cat", "cat", "dog", "dog"])
    y_pred = np.array([2.0, 2.0, 5.0, 2.0])
    assert M.acc(y_true, y_pred) == pytest.approx(3 / 4)


@FAST
@given(
    data=st.data(),
    labels_pred=st.lists(st.integers(0, 5), min_size=1, max_size=40),
)
def test_acc_invariant_to_permuting_predicted_labels(
    data: st.DataObject, labels_pred: list[int]
) -> None:
    labels_true = data.draw(
        st.lists(st.integers(0, 4), min_size=len(labels_pred), max_size=len(labels_pred))
    )
    values = sorted(set(labels_pred))
    new_values = data.draw(st.permutations(list(range(100, 100 + len(values)))))
    mapping = dict(zip(values, new_values))
    relabelled = [mapping[v] for v in labels_pred]
    assert M.acc(labels_true, relabelled) == pytest.approx(M.acc(labels_true, labels_pred))


@FAST
@given(labels=st.lists(st.integers(0, 6), min_size=1, max_size=40), data=st.data())
def test_acc_is_one_for_identical_partitions_with_relabelling(
    labels: list[int], data: st.DataObject
) -> None:
    values = sorted(set(labels))
    names = data.draw(st.permutations([f"seg-{i}" for i in range(len(values))]))
    mapping = dict(zip(values, names))
    assert M.acc(labels, [mapping[v] for v in labels]) == 1.0


@FAST
@given(data=st.data(), n=st.integers(1, 12))
def test_acc_matches_brute_force(data: st.DataObject, n: int) -> None:
    labels_true = data.draw(st.lists(st.sampled_from("abc"), min_size=n, max_size=n))
    labels_pred = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    assert M.acc(labels_true, labels_pred) == pytest.approx(
        brute_force_acc(labels_true, labels_pred)
    )


# ---------------------------------------------------------------------------------------------
# Label-based metrics against scikit-learn
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ours", "theirs"), LABEL_BASED_VS_SKLEARN)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_metrics_match_sklearn(ours: MetricFn, theirs: MetricFn, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, size=80)
    y_pred = rng.integers(0, 6, size=80)
    # Predictions made noisier but correlated with the truth, with string values.
    y_pred = np.where(rng.random(80) < 0.6, y_true, y_pred)
    names = np.array(["p", "q", "r", "s", "t", "u"])
    assert ours(y_true, names[y_pred]) == pytest.approx(theirs(y_true, y_pred), abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Noise policies
# ---------------------------------------------------------------------------------------------

NOISY_TRUE = [0, 0, 0, 1, 1, 1]
NOISY_PRED = [0, 0, -1, 1, -1, -1]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # singletons: noise points are errors; 0->0 (2 points), 1->1 (1 point) = 3 of 6.
        ("singletons", 3 / 6),
        # cluster: -1 = {2,4,5} holds one class-0 and two class-1 points; 0->0 (2) + 1->-1 (2).
        ("cluster", 4 / 6),
        # exclude: only points 0, 1, 3 remain and they agree perfectly.
        ("exclude", 3 / 3),
    ],
)
def test_acc_noise_policies(policy: str, expected: float) -> None:
    assert M.acc(NOISY_TRUE, NOISY_PRED, noise_policy=policy) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # Pred becomes {0}, {1}, {2,3}: sum C(n_ij,2)=1, sum C(a,2)=2, sum C(b,2)=1, C(4,2)=6;
        # expected 2*1/6 = 1/3, max (2+1)/2 = 3/2 -> (1 - 1/3) / (3/2 - 1/3) = 4/7.
        ("singletons", 4 / 7),
        # -1 as a cluster reproduces the true partition exactly.
        ("cluster", 1.0),
        # only points 2, 3 remain, both in one class and one cluster.
        ("exclude", 1.0),
    ],
)
def test_ari_noise_policies(policy: str, expected: float) -> None:
    assert M.ari([0, 0, 1, 1], [-1, -1, 1, 1], noise_policy=policy) == pytest.approx(expected)


def test_homogeneity_completeness_when_everything_is_noise() -> None:
    y_true = [0, 0, 1, 1]
    y_pred = [-1, -1, -1, -1]
    # singletons: four one-point clusters are pure (h = 1); H(K) = log 4, H(K|C) = log 2,
    # so completeness = 1 - log 2 / log 4 = 0.5.
    assert M.homogeneity(y_true, y_pred) == pytest.approx(1.0)
    assert M.completeness(y_true, y_pred) == pytest.approx(0.5)
    # cluster: one cluster holding everything is complete but not homogeneous.
    assert M.homogeneity(y_true, y_pred, noise_policy="cluster") == pytest.approx(0.0)
    assert M.completeness(y_true, y_pred, noise_policy="cluster") == pytest.approx(1.0)
    # exclude: nothing is left.
    assert math.isnan(M.homogeneity(y_true, y_pred, noise_policy="exclude"))
    assert math.isnan(M.acc(y_true, y_pred, noise_policy="exclude"))
    assert M.acc(y_true, y_pred) == 0.0


@pytest.mark.parametrize(("ours", "theirs"), LABEL_BASED_VS_SKLEARN)
def test_noise_policies_against_sklearn_on_transformed_labels(
    ours: MetricFn, theirs: MetricFn
) -> None:
    y_true = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([5, 5, -1, 7, 7, -1, 9, 9, -1, 5])
    singletons = np.array([5, 5, 100, 7, 7, 101, 9, 9, 102, 5])
    keep = y_pred != -1
    assert ours(y_true, y_pred) == pytest.approx(theirs(y_true, singletons))
    assert ours(y_true, y_pred, noise_policy="cluster") == pytest.approx(theirs(y_true, y_pred))
    assert ours(y_true, y_pred, noise_policy="exclude") == pytest.approx(
        theirs(y_true[keep], y_pred[keep])
    )


def test_noise_label_only_in_predictions_and_only_numeric() -> None:
    # -1 in labels_true is an ordinary class; "-1" (a string) in labels_pred is an ordinary label.
    assert M.acc([-1, -1, 0, 0], [3, 3, 4, 4]) == 1.0
    assert M.acc([0, 0, 1, 1], ["-1", "-1", "a", "a"]) == 1.0
    assert M.noise_fraction(["-1", "a"]) == 0.0
    # A float -1.0 and -1 inside a mixed list are noise.
    assert M.noise_fraction([0.5, -1.0]) == 0.5
    assert M.noise_fraction(["a", -1, "b", "c"]) == 0.25


def test_invalid_noise_policy_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"singletons.*cluster.*exclude.*'drop'"):
        M.acc([0, 1], [0, 1], noise_policy="drop")
    with pytest.raises(ValueError, match="noise_policy"):
        M.nmi([0, 1], [0, 1], noise_policy="drop")


# ---------------------------------------------------------------------------------------------
# Label-free metrics
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ours", "theirs"), LABEL_FREE_VS_SKLEARN)
def test_label_free_metrics_match_sklearn(ours: MetricFn, theirs: MetricFn, blobs: Blobs) -> None:
    X, y = blobs
    assert ours(X, y) == pytest.approx(theirs(X, y), rel=1e-10)


@pytest.mark.parametrize(("ours", "theirs"), LABEL_FREE_VS_SKLEARN)
def test_label_free_metrics_ignore_noise(ours: MetricFn, theirs: MetricFn, blobs: Blobs) -> None:
    X, y = blobs
    noisy = y.copy()
    noisy[::7] = -1
    keep = noisy != -1
    assert ours(X, noisy) == pytest.approx(theirs(X[keep], y[keep]), rel=1e-10)


def test_inertia_hand_computed() -> None:
    X = [[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [10.0, 12.0], [50.0, 50.0]]
    # means (1, 0) and (10, 11): four squared distances of 1; the noise point is ignored.
    assert M.inertia(X, [0, 0, 1, 1, -1]) == pytest.approx(4.0)
    # One cluster: total sum of squares around (1, 0) is 1 + 1 = 2.
    assert M.inertia(X[:2], ["a", "a"]) == pytest.approx(2.0)


def test_inertia_matches_fitted_kmeans(blobs: Blobs) -> None:
    X, _ = blobs
    km = KMeans(n_clusters=4, n_init=3, random_state=0).fit(X)
    assert M.inertia(X, km.labels_) == pytest.approx(km.inertia_, rel=1e-6)


@pytest.mark.parametrize("fn", LABEL_FREE)
def test_label_free_nan_for_all_noise(fn: MetricFn) -> None:
    X = np.arange(8.0).reshape(4, 2)
    assert math.isnan(fn(X, [-1, -1, -1, -1]))


@pytest.mark.parametrize("fn", [M.silhouette, M.davies_bouldin, M.calinski_harabasz])
def test_label_free_nan_when_undefined(fn: MetricFn) -> None:
    X = np.arange(8.0).reshape(4, 2)
    assert math.isnan(fn(X, [0, 0, 0, 0]))  # one cluster
    assert math.isnan(fn(X, [0, 0, 0, -1]))  # one cluster after removing noise
    assert math.isnan(fn(X, [0, 1, 2, 3]))  # as many clusters as points
    assert math.isnan(fn(X, [0, 1, 2, -1]))  # as many clusters as non-noise points
    assert not math.isnan(fn(X, [0, 0, 1, 1]))


class _SilhouetteSpy:
    """Stands in for sklearn's O(n^2) silhouette_score and records the rows it is given."""

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []

    def __call__(self, X: np.ndarray, labels: np.ndarray, **kwargs: object) -> float:
        self.calls.append(np.asarray(X).copy())
        return 0.5


def test_silhouette_samples_10000_rows_above_10000_deterministically(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A real silhouette on 10_000 rows takes seconds, so the sampling is checked with a spy;
    # closeness of a sampled value to the full one is checked for real in the next test.
    spy = _SilhouetteSpy()
    monkeypatch.setattr(M.skm, "silhouette_score", spy)
    X, y = make_blobs(n_samples=10_050, centers=3, n_features=2, random_state=0)
    M.silhouette(X, y, random_state=1)
    M.silhouette(X, y, random_state=1)
    M.silhouette(X, y, random_state=2)
    M.silhouette(X[:10_000], y[:10_000], random_state=1)
    same_a, same_b, other, unsampled = spy.calls
    assert same_a.shape == (10_000, 2)
    assert np.unique(same_a, axis=0).shape[0] == 10_000  # drawn without replacement
    np.testing.assert_array_equal(same_a, same_b)
    assert not np.array_equal(same_a, other)
    np.testing.assert_array_equal(unsampled, X[:10_000])  # no sampling at exactly 10_000


def test_silhouette_sample_is_deterministic_and_close_to_full() -> None:
    X, y = make_blobs(n_samples=2_000, centers=3, n_features=2, random_state=0)
    full = skm.silhouette_score(X, y)
    a = M.silhouette(X, y, sample_size=500, random_state=1)
    b = M.silhouette(X, y, sample_size=500, random_state=1)
    c = M.silhouette(X, y, sample_size=500, random_state=2)
    assert a == b
    assert a != c
    assert a == pytest.approx(full, abs=0.03)
    assert c == pytest.approx(full, abs=0.03)


def test_silhouette_samples_only_above_sample_size(blobs: Blobs) -> None:
    X, y = blobs
    full = skm.silhouette_score(X, y)
    assert M.silhouette(X, y, sample_size=len(y)) == pytest.approx(full, rel=1e-12)
    assert M.silhouette(X, y, sample_size=None) == pytest.approx(full, rel=1e-12)
    sampled = M.silhouette(X, y, sample_size=len(y) - 50, random_state=3)
    assert sampled != pytest.approx(full, rel=1e-12)
    assert sampled == M.silhouette(X, y, sample_size=len(y) - 50, random_state=3)


def test_silhouette_rejects_bad_sample_size(blobs: Blobs) -> None:
    X, y = blobs
    with pytest.raises(ValueError, match="sample_size"):
        M.silhouette(X, y, sample_size=1)
    with pytest.raises(TypeError, match="sample_size"):
        M.silhouette(X, y, sample_size=0.5)  # type: ignore[arg-type]


def test_label_free_input_validation() -> None:
    with pytest.raises(ValueError, match=r"len\(X\)=3.*len\(labels\)=2"):
        M.inertia(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ValueError, match="2-D"):
        M.silhouette(np.zeros(4), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="finite"):
        M.davies_bouldin([[0.0], [np.nan], [1.0], [2.0]], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="numeric"):
        M.inertia([["a"], ["b"]], [0, 1])


# ---------------------------------------------------------------------------------------------
# Descriptive statistics
# ---------------------------------------------------------------------------------------------


def test_n_clusters_found_and_noise_fraction() -> None:
    labels = [4, 4, -1, 9, "z", -1, 9, -1]
    assert M.n_clusters_found(labels) == 3
    assert M.noise_fraction(labels) == pytest.approx(3 / 8)
    assert M.n_clusters_found([-1, -1]) == 0
    assert M.noise_fraction([-1, -1]) == 1.0
    assert M.n_clusters_found(np.array(["a", "b", "a"])) == 2
    assert M.noise_fraction(np.array([0, 1, 2])) == 0.0


def test_label_validation() -> None:
    with pytest.raises(ValueError, match="1-D"):
        M.n_clusters_found(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="empty"):
        M.noise_fraction([])
    with pytest.raises(ValueError, match="missing"):
        M.ari([0, 1, 1], [0, np.nan, 1])
    with pytest.raises(TypeError, match="labels_true"):
        M.acc(None, [0, 1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="single string"):
        M.nmi("aabb", [0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"len\(labels_true\)=3.*len\(labels_pred\)=2"):
        M.acc([0, 1, 1], [0, 1])


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


def test_registry_contents() -> None:
    expected = {
        "acc",
        "nmi",
        "ari",
        "ami",
        "homogeneity",
        "completeness",
        "v_measure",
        "silhouette",
        "davies_bouldin",
        "calinski_harabasz",
        "inertia",
        "n_clusters_found",
        "noise_fraction",
    }
    assert set(M.METRICS) == expected
    for name, info in M.METRICS.items():
        assert info.name == name
        assert callable(info.fn)
        assert not (info.needs_labels and info.needs_features)


def test_registry_directions_and_needs() -> None:
    assert M.get_metric("davies_bouldin").higher_is_better is False
    assert M.get_metric("inertia").higher_is_better is False
    assert M.get_metric("silhouette").higher_is_better is True
    assert M.get_metric("acc").needs_labels is True
    assert M.get_metric("acc").fn is M.acc
    assert M.get_metric("silhouette").needs_labels is False
    assert M.get_metric("silhouette").needs_features is True
    assert M.get_metric("noise_fraction").needs_labels is False
    assert M.get_metric("n_clusters_found").needs_features is False
    with pytest.raises(AttributeError):
        M.get_metric("acc").name = "other"  # type: ignore[misc]


def test_get_metric_misspelt_name() -> None:
    with pytest.raises(ValueError, match="silhoutte") as excinfo:
        M.get_metric("silhoutte")
    message = str(excinfo.value)
    assert "Did you mean 'silhouette'" in message
    for name in M.METRICS:
        assert name in message
    with pytest.raises(TypeError, match="str"):
        M.get_metric(3)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------


def test_evaluate_without_labels_gives_nan_label_metrics(blobs: Blobs) -> None:
    X, y = blobs
    scores = M.evaluate(X, y)
    assert list(scores) == list(M.METRICS)
    for name, info in M.METRICS.items():
        assert isinstance(scores[name], float)
        assert math.isnan(scores[name]) == info.needs_labels
    assert scores["n_clusters_found"] == 4.0
    assert scores["silhouette"] == pytest.approx(skm.silhouette_score(X, y))


def test_evaluate_with_labels_matches_individual_functions(blobs: Blobs) -> None:
    X, y = blobs
    pred = KMeans(n_clusters=5, n_init=2, random_state=0).fit_predict(X)
    pred[::10] = -1
    scores = M.evaluate(X, pred, y, noise_policy="exclude")
    assert scores["acc"] == M.acc(y, pred, noise_policy="exclude")
    assert scores["ami"] == M.ami(y, pred, noise_policy="exclude")
    assert scores["inertia"] == M.inertia(X, pred)
    assert scores["noise_fraction"] == pytest.approx(0.1)
    assert scores["acc"] != M.acc(y, pred)  # the policy was passed through


def test_evaluate_subset_and_order(blobs: Blobs) -> None:
    X, y = blobs
    scores = M.evaluate(X, y, y, metrics=["inertia", "acc"])
    assert list(scores) == ["inertia", "acc"]
    assert scores["acc"] == 1.0
    assert list(M.evaluate(X, y, metrics="ari")) == ["ari"]


def test_evaluate_validation(blobs: Blobs) -> None:
    X, y = blobs
    with pytest.raises(ValueError, match=r"len\(X\)=300.*len\(labels_pred\)=299"):
        M.evaluate(X, y[:-1])
    with pytest.raises(ValueError, match=r"len\(labels_true\)=298.*len\(labels_pred\)=300"):
        M.evaluate(X, y, y[:-2])
    with pytest.raises(ValueError, match=r"singletons.*cluster.*exclude"):
        M.evaluate(X, y, noise_policy="ignore")
    with pytest.raises(ValueError, match="Valid metrics"):
        M.evaluate(X, y, metrics=["accuracy"])


def test_doctests() -> None:
    result = doctest.testmod(M, raise_on_error=False)
    assert result.attempted > 0
    assert result.failed == 0
