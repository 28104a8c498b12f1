"""Self-training refinement (deepseg.refine): label-free, keeps every cluster, converges."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from deepseg.metrics import acc
from deepseg.refine import SelfTraining, self_train


def _blobs_with_small_clusters() -> tuple[np.ndarray, np.ndarray]:
    """Two large blobs and three small ones (6 rows each), as in a many-topic corpus."""
    sizes = [300, 300, 6, 6, 6]
    centers = [[0, 0], [8, 0], [0, 8], [8, 8], [4, 14]]
    X, y = make_blobs(sizes, centers=centers, cluster_std=1.0, random_state=0)
    return X, y


def test_refinement_repairs_a_damaged_partition_without_labels() -> None:
    X, y = make_blobs(600, centers=[[0, 0], [6, 0], [3, 5]], cluster_std=1.2, random_state=0)
    rng = np.random.default_rng(0)
    damaged = y.copy()
    flip = rng.choice(len(y), size=120, replace=False)  # 20% of the labels are wrong
    damaged[flip] = (damaged[flip] + 1) % 3
    result = self_train(X, damaged)
    assert acc(y, damaged) <= 0.81
    assert acc(y, result.labels) >= 0.95
    assert result.converged and result.n_iter <= 10
    assert result.changed[0] > result.changed[-1]


def test_every_cluster_stays_alive() -> None:
    X, y = _blobs_with_small_clusters()
    result = self_train(X, y, core_fraction=0.5, C=0.01, max_iter=5)
    assert sorted(np.unique(result.labels)) == [0, 1, 2, 3, 4]
    counts = np.bincount(result.labels)
    assert (counts >= 2).all(), counts


def test_refinement_is_reproducible_and_label_values_are_free() -> None:
    X, _ = _blobs_with_small_clusters()
    base = KMeans(5, n_init=3, random_state=0).fit_predict(X)
    a = self_train(X, base * 10 + 7).labels  # any integer labels
    b = self_train(X, base).labels
    np.testing.assert_array_equal(a, b)
    assert set(a) <= set(range(5))


def test_wrapper_keeps_the_unrefined_partition() -> None:
    X, _ = make_blobs(300, centers=3, random_state=1)
    model = SelfTraining(KMeans(3, n_init=3, random_state=0)).fit(X)
    base = model.estimator_.labels_
    _, renumbered = np.unique(base, return_inverse=True)
    np.testing.assert_array_equal(model.labels_unrefined_, renumbered)
    assert model.labels_.shape == (300,) and model.n_iter_ == len(model.changed_)
    np.testing.assert_array_equal(model.fit_predict(X), model.labels_)
    assert model.get_params()["core_fraction"] == 0.8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"core_fraction": 0.0}, "The 'core_fraction' parameter of SelfTraining must be a float"),
        ({"min_core": 0}, "The 'min_core' parameter of SelfTraining must be an int"),
        ({"max_iter": 0}, "The 'max_iter' parameter of SelfTraining must be an int"),
        ({"tol": 1.0}, "The 'tol' parameter of SelfTraining must be a float"),
        ({"C": -1.0}, "The 'C' parameter of SelfTraining must be a float"),
    ],
)
def test_bad_parameters_name_themselves(kwargs: dict, message: str) -> None:
    X, y = make_blobs(30, centers=2, random_state=0)
    with pytest.raises(ValueError, match=re.escape(message)):
        self_train(X, y, **kwargs)


def test_shape_mismatch_and_estimators_without_labels() -> None:
    with pytest.raises(ValueError, match="labels of shape"):
        self_train(np.zeros((5, 2)), np.zeros(4, dtype=int))

    class NoLabels:
        def fit(self, X: np.ndarray) -> NoLabels:
            return self

    with pytest.raises(TypeError, match="NoLabels has none"):
        SelfTraining(NoLabels()).fit(np.zeros((5, 2)))


@pytest.mark.parametrize("k", [2, 7])
@pytest.mark.parametrize("blocks", [False, True])
@pytest.mark.parametrize("C", [0.1, 10.0])
def test_the_classifier_is_sklearns_balanced_logistic_regression(
    blocks: bool, C: float, k: int
) -> None:
    """The rounds' classifier fits scikit-learn's objective on a two-block design (sparse
    words, dense embedding): the probabilities agree up to the solvers' tolerance (the gradient
    norm 1e-4 at which both stop; measured 7e-3 at most here), and so do the labels. Two
    clusters too, where scikit-learn fits a single weight vector."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    from deepseg.refine import _Design, _fit_softmax

    rng = np.random.default_rng(0)
    y = rng.integers(0, k, 600)
    Z = rng.normal(size=(600, 12)) + y[:, None] * 0.3
    words = sp.random(600, 200, density=0.05, random_state=1, format="csr")
    design = _Design(words, Z) if blocks else _Design(None, Z)
    flat = sp.hstack([words, sp.csr_matrix(Z)], format="csr") if blocks else Z
    ref = LogisticRegression(C=C, class_weight="balanced", max_iter=300).fit(flat, y)
    ours = _fit_softmax(design, y, C)
    assert np.array_equal(ours.classes, ref.classes_)
    p_ref, p_ours = ref.predict_proba(flat), ours.proba(design)
    # strongly regularised (C=0.1) both solvers reach the minimum (measured: 5e-4 at most;
    # a two-class penalty off by 2x gives 1.3e-2); weakly (C=10) they stop at the gradient
    # tolerance, a few 1e-3 apart (measured: 1.2e-2 at most)
    tol = 3e-3 if C < 1 else 2e-2
    assert np.abs(p_ref - p_ours).max() < tol
    assert np.mean(p_ref.argmax(1) == p_ours.argmax(1)) >= 0.99
    # a warm start from the fitted model lands on the same minimum
    again = _fit_softmax(design, y, C, start=ours)
    assert np.abs(again.proba(design) - p_ours).max() < tol
