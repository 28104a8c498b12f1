"""The second view (deepseg.refine.second_view): a partition of embedded documents corrected by
a classifier on their words beside the embedding; label-free, every cluster kept, skipped with
a reason where it cannot apply; and its place in the benchmark's rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans

from deepseg.data.base import Dataset
from deepseg.metrics import acc
from deepseg.refine import second_view, second_view_features

TOPICS = [
    ["goal", "match", "league", "striker", "coach", "season", "cup", "fans"],
    ["stock", "market", "shares", "profit", "bank", "investor", "earnings", "rates"],
    ["vaccine", "virus", "doctors", "hospital", "patients", "trial", "disease", "clinic"],
]


def _corpus(n_per_topic: int = 60, noise: float = 1.3, seed: int = 0):
    """Three topics whose words are clear and whose 'embedding' is blurred: a topic centre plus
    noise that puts a fifth or so of the documents nearer another centre."""
    rng = np.random.default_rng(seed)
    docs, y = [], []
    for t, words in enumerate(TOPICS):
        for _ in range(n_per_topic):
            docs.append(" ".join(rng.choice(words, size=5)))
            y.append(t)
    y = np.array(y)
    centres = np.eye(3, 16) * 2.0
    Z = centres[y] + noise * rng.normal(size=(len(y), 16))
    return Z / np.linalg.norm(Z, axis=1, keepdims=True), docs, y


def test_the_words_correct_what_the_embedding_misplaces() -> None:
    Z, docs, y = _corpus()
    own = KMeans(3, n_init=10, random_state=0).fit(Z).labels_
    result = second_view(Z, docs, own)
    assert acc(y, own) < 0.9  # the embedding alone misplaces documents
    assert acc(y, result.labels) >= acc(y, own) + 0.05
    assert result.moved == pytest.approx(np.mean(result.labels != own))
    assert result.moved > 0 and result.n_iter >= 1 and not result.skipped
    # the refinement keeps the partition's numbering: moved counts real moves
    assert acc(own, result.labels) == pytest.approx(1.0 - result.moved)


def test_reproducible_and_every_cluster_alive() -> None:
    Z, docs, _ = _corpus(n_per_topic=40)
    labels = KMeans(3, n_init=4, random_state=1).fit(Z).labels_
    labels[:2] = 7  # a tiny fourth cluster: it must survive
    a = second_view(Z, docs, labels, random_state=0)
    b = second_view(Z, docs, labels, random_state=0)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert sorted(np.unique(a.labels)) == [0, 1, 2, 3]


def test_noise_one_cluster_and_no_words_skip_with_a_reason() -> None:
    Z, docs, _ = _corpus(n_per_topic=10)
    noisy = np.zeros(len(docs), dtype=int)
    noisy[::2] = 1
    noisy[0] = -1
    result = second_view(Z, docs, noisy)
    assert "noise" in result.skipped and result.n_iter == 0
    assert second_view(Z, docs, np.zeros(len(docs), dtype=int)).skipped
    emoji = ["🙂 😀", "a", "!!", "🎉"] * (len(docs) // 4)
    result = second_view(Z[: len(emoji)], emoji, noisy[1 : len(emoji) + 1] % 2)
    assert "empty vocabulary" in result.skipped


def test_the_view_is_words_beside_the_embedding() -> None:
    Z, docs, _ = _corpus(n_per_topic=5)
    F = second_view_features(Z, docs, embedding_weight=0.5)
    n_terms = len({w for d in docs for w in d.split()})
    assert F.shape == (len(docs), n_terms + Z.shape[1])
    norms = np.sqrt(np.asarray(F.multiply(F).sum(axis=1))).ravel()
    # each row: a unit vector of words and an embedding of norm 0.5
    np.testing.assert_allclose(norms, np.sqrt(1.0 + 0.25), rtol=1e-9)
    assert second_view_features(Z, docs, embedding_weight=0).shape[1] == n_terms


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"embedding_weight": -1.0}, "'embedding_weight' parameter of second_view"),
        ({"C": 0}, "'C' parameter"),
        ({"core_fraction": 0.0}, "'core_fraction' parameter"),
    ],
)
def test_bad_parameters_name_themselves(kwargs: dict, message: str) -> None:
    Z, docs, y = _corpus(n_per_topic=5)
    with pytest.raises(ValueError, match=message):
        second_view(Z, docs, y, **kwargs)


def test_sizes_must_agree() -> None:
    Z, docs, y = _corpus(n_per_topic=5)
    with pytest.raises(ValueError, match="documents for"):
        second_view(Z, docs[:-1], y)
    with pytest.raises(ValueError, match="labels of shape"):
        second_view(Z, docs, y[:-1])


def test_run_one_refines_embedded_documents_and_says_what_moved() -> None:
    from deepseg.tasks.run import run_one

    Z, docs, y = _corpus()
    frame = pd.DataFrame({"text": docs})
    dataset = Dataset(name="topics", ids=np.arange(len(docs)), frame=frame, labels=y)
    kmeans = {"_target_": "sklearn.cluster.KMeans", "n_init": 10}
    plain = run_one(Z, dataset, "kmeans", kmeans, 3, 0, "singletons")
    refined = run_one(
        Z, dataset, "kmeans", kmeans, 3, 0, "singletons", documents=docs,
        second_view={"enabled": "auto"},
    )  # fmt: skip
    assert "second_view" not in plain
    assert refined["acc_unrefined"] == pytest.approx(plain["acc"])
    assert refined["acc"] >= plain["acc"] + 0.05
    assert refined["second_view"] is True and refined["second_view_moved"] > 0
    assert refined["second_view_rounds"] >= 1
    off = run_one(
        Z, dataset, "kmeans", kmeans, 3, 0, "singletons", documents=docs,
        second_view={"enabled": False},
    )  # fmt: skip
    assert off["acc"] == pytest.approx(plain["acc"]) and "second_view" not in off


def test_enabled_true_on_features_that_are_not_embedded_text_is_refused() -> None:
    from deepseg.tasks.run import second_view_enabled

    assert not second_view_enabled({"enabled": "auto"}, None)
    assert second_view_enabled(None, ["a doc"])
    with pytest.raises(ValueError, match=r"second_view\.enabled=true needs"):
        second_view_enabled({"enabled": True}, None)
    with pytest.raises(ValueError, match=r"'second_view\.enabled' parameter"):
        second_view_enabled({"enabled": "yes"}, ["a doc"])


def test_a_bad_second_view_node_is_refused_before_any_work(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from deepseg.tasks.run import check_second_view

    with caplog.at_level("INFO"):
        check_second_view({"enabled": "auto", "C": 10.0, "core_fraction": 0.8})
        check_second_view(None)
    # checking runs nothing (it once refined a probe and logged "Second view skipped")
    assert not [r for r in caplog.records if r.name == "deepseg.refine"]
    with pytest.raises(ValueError, match="'max_iter' parameter"):
        check_second_view({"max_iter": 0})
    with pytest.raises(ValueError, match="'C' parameter"):
        check_second_view({"C": 0})
    with pytest.raises(ValueError, match="Unknown second_view option"):
        check_second_view({"enabled": "auto", "c": 10.0})
    with pytest.raises(ValueError, match="'core_fraction' parameter"):
        check_second_view({"core_fraction": 1.5})
    with pytest.raises(ValueError, match="'embedding_weight' parameter"):
        check_second_view({"embedding_weight": -2})


def test_a_failing_refinement_keeps_the_own_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    import deepseg.refine
    from deepseg.tasks.run import run_one

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("solver exploded")

    Z, docs, y = _corpus(n_per_topic=20)
    dataset = Dataset(name="topics", ids=np.arange(len(docs)), frame=pd.DataFrame({"text": docs}),
                      labels=y)  # fmt: skip
    kmeans = {"_target_": "sklearn.cluster.KMeans", "n_init": 4}
    plain = run_one(Z, dataset, "kmeans", kmeans, 3, 0, "singletons")
    monkeypatch.setattr(deepseg.refine, "second_view", broken)
    row = run_one(Z, dataset, "kmeans", kmeans, 3, 0, "singletons", documents=docs,
                  second_view={"enabled": "auto"})  # fmt: skip
    assert row["status"] == "ok" and row["second_view"] is False
    assert "solver exploded" in row["second_view_error"]
    assert row["acc"] == pytest.approx(plain["acc"])
