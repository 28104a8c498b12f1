"""model=auto (deepseg.auto.AutoCluster): candidates fitted, one partition chosen label-free."""

import doctest

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import normalized_mutual_info_score

import deepseg.auto as auto_module
from deepseg.auto import (
    AutoCluster,
    agreement_scores,
    choose,
    consensus_partition,
    describe_selection,
    family_of,
    highest,
    nearest_family,
    nearest_to,
)
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
    cands = {"kmeans": KMEANS, "gmm": GMM, "ward": WARD, "halves": SPLIT}
    est = AutoCluster(4, cands, margin=0.0, consensus=False, random_state=0).fit(X)
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
    assert set(est.scores_) == {"kmeans", "gmm", "consensus"}
    with pytest.raises(RuntimeError, match="always fails"):
        AutoCluster(4, {"broken": broken}, random_state=0).fit(X)


def test_a_candidate_without_its_extra_is_left_out_and_named(blobs):
    X, _ = blobs
    extra = {"_target_": "tests.test_auto.NeedsExtra"}
    est = AutoCluster(4, {"kmeans": KMEANS, "n2d": extra, "gmm": GMM}, random_state=0)
    assert est.check_params(len(X)) == 0  # not an error before the work starts
    est.fit(X)
    assert "umap" in est.failed_["n2d"] and set(est.scores_) == {"kmeans", "gmm", "consensus"}
    assert est.selection()["failed"] == est.failed_


def test_a_candidate_set_to_null_is_left_out(blobs):
    X, _ = blobs
    est = AutoCluster(4, {"kmeans": KMEANS, "gmm": None, "ward": WARD}, random_state=0).fit(X)
    assert set(est.scores_) == {"kmeans", "ward", "consensus"} and not est.failed_
    with pytest.raises(ValueError, match="'candidates' parameter"):
        AutoCluster(4, {"gmm": None}, random_state=0).fit(X)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_clusters": 0}, "'n_clusters' parameter of AutoCluster"),
        ({"candidates": {}}, "'candidates' parameter of AutoCluster"),
        ({"margin": "big"}, "'margin' parameter of AutoCluster"),
        ({"margin": -0.1}, "'margin' parameter of AutoCluster"),
        ({"margin": float("nan")}, "'margin' parameter of AutoCluster"),
        ({"consensus": "yes"}, "'consensus' parameter of AutoCluster"),
        ({"candidates": {"consensus": KMEANS}}, "adds the candidate 'consensus' itself"),
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


def test_families_of_the_packaged_candidates():
    from hydra import compose, initialize_config_dir

    from deepseg.cli.common import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["model=auto"])
    nodes = cfg.model.candidates
    families = {name: family_of(name, nodes[name]) for name in nodes}
    assert families == {
        "kmeans": "raw", "gmm": "raw", "agglomerative": "raw", "spectral": "raw",
        "ae_kmeans": "latent", "dec": "latent", "idec": "latent", "n2d": "manifold",
    }  # fmt: skip
    assert family_of("dec", {**nodes["dec"], "init": "umap"}) == "manifold"
    assert family_of("consensus", None) == "consensus"


def test_consensus_weighs_every_family_the_same():
    rng = np.random.default_rng(1)
    p = np.repeat(np.arange(3), 100)
    q = rng.permutation(p)
    noisy_p = np.where(rng.random(300) < 0.1, rng.integers(0, 3, 300), p)
    parts = {"k": p, "g": noisy_p, "a": q, "b": q.copy(), "c": q.copy()}
    fam = {"k": "raw", "g": "manifold", "a": "latent", "b": "latent", "c": "latent"}
    got = consensus_partition(parts, fam, 3, seed=0)
    # two families against one block of three (seeded: 0.866 with p, 0.02 with q)
    assert normalized_mutual_info_score(got, p) > 0.8 > 0.1 > normalized_mutual_info_score(got, q)
    again = consensus_partition(parts, fam, 3, seed=0)
    np.testing.assert_array_equal(got, again)
    # counted per partition instead, the block of three copies wins
    flat = consensus_partition(parts, {n: n for n in parts}, 3, seed=0)
    assert normalized_mutual_info_score(flat, q) > 0.9


@pytest.mark.parametrize(
    ("bold_score", "expected"),
    [(0.50, ("kmeans", "dec", "kept")), (0.5499, ("kmeans", "dec", "kept")),
     (0.55, ("dec", "kmeans", "left")), (0.56, ("dec", "kmeans", "left"))],
)  # fmt: skip
def test_the_anchor_is_left_only_by_the_margin(bold_score, expected):
    scores = {"kmeans": 0.50, "gmm": 0.45, "dec": bold_score, "consensus": 0.49}
    fam = {"kmeans": "raw", "gmm": "raw", "dec": "latent", "consensus": "consensus"}
    order = list(scores)
    assert choose(scores, fam, 0.05, order) == expected
    # the highest score, ties to the first listed
    assert highest(scores, order)[0] == ("dec" if bold_score > 0.5 else "kmeans")


def test_one_sided_choices_fall_back_to_the_highest_score():
    fam = {"kmeans": "raw", "gmm": "raw"}
    scores = {"kmeans": 0.4, "gmm": 0.6}
    assert choose(scores, fam, 0.05, list(fam)) == ("gmm", "kmeans", "left")  # a classic too
    deep = {"dec": "latent", "n2d": "manifold"}
    assert choose({"dec": 0.3, "n2d": 0.2}, deep, 0.05, list(deep)) == ("dec", "n2d", "highest")
    assert choose({"dec": 0.3}, deep, 0.05, ["dec"]) == ("dec", "dec", "alone")


class NoisyKMeans:
    """K-Means' partition with a share of the rows given random labels (its own noise seed)."""

    def __init__(self, n_clusters: int = 4, noise_seed: int = 0, share: float = 0.3) -> None:
        self.n_clusters = n_clusters
        self.noise_seed = noise_seed
        self.share = share

    def fit_predict(self, X):
        from sklearn.cluster import KMeans

        labels = KMeans(self.n_clusters, n_init=5, random_state=0).fit_predict(X)
        rng = np.random.default_rng(self.noise_seed)
        flip = rng.random(len(X)) < self.share
        labels[flip] = rng.integers(0, self.n_clusters, flip.sum())
        return labels


def test_the_consensus_of_noisy_candidates_wins_and_gets_no_bundle(blobs):
    X, y = blobs
    noisy = {f"noisy{i}": {"_target_": "tests.test_auto.NoisyKMeans", "noise_seed": i}
             for i in range(4)}  # fmt: skip
    est = AutoCluster(4, noisy, margin=0.0, stand_in=False, random_state=0).fit(X)
    # each candidate has 30% of its rows at random; their consensus has almost none
    assert est.chosen_ == "consensus" and est.families_["consensus"] == "consensus"
    # seeded: the consensus 0.94, the candidates about 0.78
    assert acc(y, est.labels_) > 0.9 > 0.85 > max(acc(y, est.candidate_labels_[n]) for n in noisy)
    # the consensus casts no vote: the candidates' scores are their agreement among themselves
    assert {n: est.scores_[n] for n in noisy} == agreement_scores(
        {n: est.candidate_labels_[n] for n in noisy}
    )
    sel = est.selection()
    # the consensus left the anchor (the first classic candidate) by more than the margin 0
    assert sel["chosen"] == "consensus" and sel["runner_up"] == est.runner_up_ == "noisy0"
    assert sel["stood_in_for"] is None and est.stood_in_ is None
    assert sel["decided_by"] == "left" and sel["segments_found"]["consensus"] == 4
    assert sel["decision_margin"] == pytest.approx(
        est.scores_["consensus"] - est.scores_[est.runner_up_], abs=1e-4
    )
    with pytest.raises(AttributeError, match="cannot assign new rows"):
        est.predict(X)
    with pytest.raises(ValueError, match="cannot assign new rows"):
        from deepseg.baselines import segmenter_parts

        segmenter_parts(est.best_estimator_)


def test_the_candidate_nearest_to_a_winning_consensus_stands_in_for_it(blobs):
    X, _ = blobs
    noisy = {f"noisy{i}": {"_target_": "tests.test_auto.NoisyKMeans", "noise_seed": i}
             for i in range(4)}  # fmt: skip
    alone = AutoCluster(4, noisy, margin=0.0, stand_in=False, random_state=0).fit(X)
    est = AutoCluster(4, noisy, margin=0.0, random_state=0).fit(X)
    assert est.stand_in and alone.chosen_ == "consensus"
    cons = alone.candidate_labels_["consensus"]
    near = {n: normalized_mutual_info_score(cons, alone.candidate_labels_[n]) for n in noisy}
    # the same fits and consensus; the winner is the candidate with the highest NMI with it
    assert est.chosen_ == max(near, key=near.get) != "consensus"
    assert est.stood_in_ == pytest.approx(near, rel=1e-12)
    assert (est.labels_ == est.candidate_labels_[est.chosen_]).all()  # its own labels
    sel = est.selection()
    assert sel["chosen"] == est.chosen_ and sel["stood_in_for"] == "consensus"
    assert sel["decided_by"] == "left" and sel["runner_up"] == alone.runner_up_
    assert sel["decision_margin"] == alone.selection()["decision_margin"]
    assert f"{est.chosen_}, the candidate nearest to the consensus" in est.reason_
    assert sel["nmi_with_consensus"][est.chosen_] == round(near[est.chosen_], 4)


class NoisyLatent(NoisyKMeans):
    """The same, counted in the autoencoder's (latent) family (family_of reads the flag); it
    brings its own network, so auto pretrains none for it."""

    uses_autoencoder = True
    pretrained = "its own"


def test_the_stand_in_is_chosen_family_first(blobs):
    X, _ = blobs
    # the raw member nearest to the consensus (noisy0) is listed last: not the anchor, not first
    raw = ["noisy1", "noisy2", "noisy0"]
    cands = {n: {"_target_": "tests.test_auto.NoisyKMeans", "noise_seed": int(n[-1])}
             for n in raw}  # fmt: skip
    # one latent member sharper than any classic one, the other all noise
    cands["sharp"] = {"_target_": "tests.test_auto.NoisyLatent", "noise_seed": 7, "share": 0.2}
    cands["lost"] = {"_target_": "tests.test_auto.NoisyLatent", "noise_seed": 8, "share": 1.0}
    est = AutoCluster(4, cands, margin=0.0, random_state=0).fit(X)
    assert est.families_["sharp"] == est.families_["lost"] == "latent"
    assert {est.families_[n] for n in raw} == {"raw"} and est.stood_in_ is not None
    cons = est.candidate_labels_["consensus"]
    near = {n: normalized_mutual_info_score(cons, est.candidate_labels_[n]) for n in cands}
    assert est.stood_in_ == pytest.approx(near, rel=1e-12)
    means = est.stand_in_families_
    # the sharp one is the nearest candidate, but its family agrees less on average
    assert max(near, key=near.get) == "sharp"
    assert means["latent"] == pytest.approx((near["sharp"] + near["lost"]) / 2, rel=1e-12)
    assert means["raw"] == pytest.approx(np.mean([near[n] for n in raw]), rel=1e-12)
    assert means["raw"] > means["latent"]
    # the raw family's nearest member, which is neither the anchor nor listed first
    assert est.chosen_ == max(raw, key=near.get) == "noisy0"
    assert (est.labels_ == est.candidate_labels_["noisy0"]).all()
    sel = est.selection()
    assert sel["stood_in_for"] == "consensus" and sel["runner_up"] == "noisy1"
    assert sel["family_nmi_with_consensus"] == {k: round(v, 4) for k, v in means.items()}
    assert (
        f"noisy0 stands in for it: the raw family agrees most with the consensus "
        f"(mean NMI {means['raw']:.3f}; next latent, {means['latent']:.3f})"
    ) in est.reason_
    assert f"noisy0 is its member nearest to it (NMI {near['noisy0']:.3f})" in est.reason_
    # the rule before it: the nearest candidate, whatever its family
    assert nearest_to(cons, est.candidate_labels_, list(cands))[0] == "sharp"


def test_nearest_family_ties_lone_families_and_the_consensus():
    cons = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    same, flip = cons.copy(), 1 - cons  # NMI 1 with the consensus, both
    noise = np.array([0, 1, 0, 1, 0, 1, 0, 1])  # NMI 0
    fams = {"a": "latent", "b": "latent", "c": "manifold", "d": "raw", "consensus": "consensus"}
    parts = {"a": same, "b": noise, "c": flip, "d": same, "consensus": cons}
    # manifold (c alone, 1.0) and raw (d alone, 1.0) tie above latent (0.5): the family listed
    # first wins; the consensus itself is never a candidate
    name, near, means = nearest_family(cons, parts, fams, ["b", "a", "d", "c", "consensus"])
    assert name == "d" and "consensus" not in near
    assert means == pytest.approx({"latent": 0.5, "raw": 1.0, "manifold": 1.0}, abs=1e-12)
    assert nearest_family(cons, parts, fams, ["c", "d", "a", "b"])[0] == "c"
    # within a family, a tie goes to the member listed first
    two = {"a": same, "b": flip}
    assert nearest_family(cons, two, {"a": "raw", "b": "raw"}, ["b", "a"])[0] == "b"
    with pytest.raises(ValueError, match="family of every candidate: none for \\['x'\\]"):
        nearest_family(cons, {"x": same}, {}, ["x"])


def test_the_default_keeps_kmeans_unless_another_clears_the_margin(blobs):
    X, _ = blobs
    cands = {"kmeans": KMEANS, "gmm": GMM, "halves": SPLIT}
    est = AutoCluster(4, cands, random_state=0).fit(X)
    assert (est.margin, est.consensus, est.stand_in) == (0.05, True, True)
    assert est.selection()["criterion"] == "anchor_agreement"
    if est.decision_how_ == "kept":
        assert est.chosen_ == "kmeans" and "is the anchor" in est.reason_
        assert est.scores_[est.runner_up_] - est.scores_["kmeans"] < 0.05
    else:
        assert est.decision_how_ == "left" and est.runner_up_ == "kmeans"
        won = "consensus" if est.stood_in_ is not None else est.chosen_
        assert est.scores_[won] - est.scores_["kmeans"] >= 0.05 - 1e-9
        assert est.chosen_ != "consensus"


def test_anchor_agreement_keeps_the_first_classic_candidate_unless_beaten_by_the_margin():
    fam = {"kmeans": "raw", "gmm": "raw", "dec": "latent"}
    order = ["kmeans", "gmm", "dec"]
    close = {"kmeans": 0.50, "gmm": 0.52, "dec": 0.53}
    assert choose(close, fam, 0.05, order) == ("kmeans", "dec", "kept")
    far = {"kmeans": 0.50, "gmm": 0.56, "dec": 0.53}
    assert choose(far, fam, 0.05, order) == ("gmm", "kmeans", "left")


def test_anchor_reason_says_the_anchor_was_kept(blobs):
    X, _ = blobs
    cands = {"kmeans": KMEANS, "gmm": GMM, "halves": SPLIT}
    est = AutoCluster(4, cands, margin=1.0, random_state=0).fit(X)
    assert est.chosen_ == "kmeans" and "is the anchor" in est.reason_


def _directions(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows on the unit sphere: one broad topic and five small tight ones."""
    rng = np.random.default_rng(seed)
    sizes, spreads = [300, 15, 15, 15, 15, 15], [0.15, 0.05, 0.05, 0.05, 0.05, 0.05]
    centres = np.eye(6, 12)
    X = np.vstack(
        [c + s * rng.normal(size=(n, 12)) for c, n, s in zip(centres, sizes, spreads, strict=True)]
    )
    return X / np.linalg.norm(X, axis=1, keepdims=True), np.repeat(np.arange(6), sizes)


COSINE_CANDIDATE = {
    "agglomerative_cosine": {
        "_target_": "deepseg.baselines.LimitedAgglomerative",
        "linkage": "average",
        "metric": "cosine",
    }
}


def test_directions_are_chosen_by_cosine_silhouette_with_the_cosine_candidates():
    from sklearn.metrics import silhouette_score

    X, _ = _directions()
    X = X.astype(np.float32)  # as AutoCluster reads it: the same silhouettes, bit for bit
    auto = AutoCluster(
        6,
        candidates={"kmeans": KMEANS, "ward": WARD},
        cosine_candidates=COSINE_CANDIDATE,
        random_state=0,
    ).fit(X)
    assert auto.geometry_ == "cosine"
    assert "agglomerative_cosine" in auto.candidate_labels_
    assert "consensus" not in auto.candidate_labels_
    expected = {
        n: silhouette_score(X, labels, metric="cosine")
        for n, labels in auto.candidate_labels_.items()
    }
    for name, value in expected.items():
        assert auto.scores_[name] == value

    def even(labels):  # the entropy of the cluster sizes over log(k), by hand
        shares = np.unique(labels, return_counts=True)[1] / len(labels)
        return -(shares * np.log(shares)).sum() / np.log(6)

    order = list(auto.candidate_labels_)
    top = max(expected.values())
    near = [n for n in order if expected[n] >= top - 0.05 * abs(top)]
    best = max(near, key=lambda n: (even(auto.candidate_labels_[n]), -order.index(n)))
    assert auto.chosen_ == best
    for name in order:
        assert auto.evenness_[name] == pytest.approx(even(auto.candidate_labels_[name]), 1e-12)
    selection = auto.selection()
    assert selection["criterion"] == "cosine_silhouette_then_evenness"
    assert selection["decided_by"] == ("silhouette" if len(near) == 1 else "evenness")
    assert "cosine silhouette" in selection["reason"] and auto.runner_up_ in selection["reason"]
    assert selection["margin"] is None  # no margin over an anchor is asked
    assert set(selection["evenness"]) == set(order)


def test_on_directions_a_near_tie_in_silhouette_goes_to_the_most_even_partition():
    from deepseg.auto import choose_on_directions, evenness

    order = ["kmeans", "agglomerative", "spectral"]
    sil = {"kmeans": 0.232, "agglomerative": 0.221, "spectral": 0.217}
    even = {"kmeans": 0.97, "agglomerative": 0.95, "spectral": 0.99}
    # within 5% of 0.232 (0.2204): kmeans and agglomerative; spectral (6.5% below) is not
    assert choose_on_directions(sil, even, order) == (
        "kmeans", "agglomerative", ["kmeans", "agglomerative"]
    )  # fmt: skip
    assert choose_on_directions(sil, even, order, near=0.10)[0] == "spectral"
    # nothing near the best: the highest silhouette, the runner-up by silhouette
    apart = {"kmeans": 0.30, "agglomerative": 0.20, "spectral": 0.10}
    assert choose_on_directions(apart, even, order) == ("kmeans", "agglomerative", ["kmeans"])
    # negative silhouettes: "within 5%" is measured on the magnitude
    low = {"kmeans": -0.100, "agglomerative": -0.104, "spectral": -0.2}
    assert choose_on_directions(low, even, order)[0] == "kmeans"
    assert choose_on_directions(low, {**even, "agglomerative": 1.0}, order)[0] == "agglomerative"
    # evenness: equal sizes 1, fewer clusters than asked below 1, one cluster 0
    assert evenness(np.repeat(np.arange(4), 5), 4) == pytest.approx(1.0)
    assert evenness(np.repeat(np.arange(3), 5), 4) == pytest.approx(np.log(3) / np.log(4))
    assert evenness(np.zeros(10, dtype=int), 4) == 0.0
    # noise (label -1) lowers it; more clusters than asked never lift it above 1
    assert evenness(np.array([0, 0, 1, 1, -1, -1]), 2) == pytest.approx(2 / 3)
    assert evenness(np.arange(4), 2) == pytest.approx(1.0)


def test_rows_of_different_norms_keep_the_agreement_rule(blobs):
    X, _ = blobs
    auto = AutoCluster(
        3,
        candidates={"kmeans": KMEANS, "ward": WARD},
        cosine_candidates=COSINE_CANDIDATE,
        random_state=0,
    ).fit(X)
    assert auto.geometry_ == "euclidean"
    assert "agglomerative_cosine" not in auto.candidate_labels_
    assert auto.selection()["criterion"] == "anchor_agreement"
    forced = AutoCluster(
        3, candidates={"kmeans": KMEANS}, cosine_candidates=COSINE_CANDIDATE,
        random_state=0, geometry="cosine",
    ).fit(X)  # fmt: skip
    assert forced.geometry_ == "cosine" and "agglomerative_cosine" in forced.candidate_labels_
    with pytest.raises(ValueError, match="'geometry' parameter of AutoCluster"):
        AutoCluster(3, candidates={"kmeans": KMEANS}, geometry="angles").fit(X)


def test_ward_with_another_metric_is_refused():
    from deepseg.baselines import LimitedAgglomerative

    with pytest.raises(ValueError, match="'metric' parameter of LimitedAgglomerative"):
        LimitedAgglomerative(3, metric="cosine").fit(np.eye(4))


def test_the_report_note_names_the_silhouette_on_directions():
    X, _ = _directions()
    auto = AutoCluster(
        6, candidates={"kmeans": KMEANS}, cosine_candidates=COSINE_CANDIDATE, random_state=0
    ).fit(X)
    note = describe_selection(auto.selection())
    assert "cosine silhouette of its partition" in note and "mean NMI" not in note
    euclidean = AutoCluster(3, candidates={"kmeans": KMEANS, "ward": WARD}, random_state=0)
    assert "mean NMI" in describe_selection(
        euclidean.fit(np.eye(6, 3) + np.arange(6)[:, None]).selection()
    )


def test_one_hot_codes_share_a_norm_but_are_not_directions():
    from deepseg.auto import resolve_geometry

    rng = np.random.default_rng(0)
    codes = np.hstack([np.eye(4)[rng.integers(0, 4, 300)] * w for w in (0.7, 1.3, 0.4)])
    norms = np.linalg.norm(codes, axis=1)
    assert np.ptp(norms) < 1e-12  # every row the same norm, as with directions
    assert resolve_geometry(codes, "auto") == "euclidean"
    unit = rng.normal(size=(300, 8))
    assert resolve_geometry(unit / np.linalg.norm(unit, axis=1, keepdims=True), "auto") == "cosine"


def test_a_sample_of_one_cluster_scores_minus_one(monkeypatch):
    import deepseg.auto as auto_module
    from deepseg.auto import cosine_silhouette

    monkeypatch.setattr(auto_module, "SILHOUETTE_SAMPLE", 100)  # the rule, not its size
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4)).astype(np.float32)
    labels = np.zeros(len(X), dtype=int)
    labels[0] = 1  # a singleton: 5 samples of 100 rows in 6 miss it
    scores = {cosine_silhouette(X, labels, seed) for seed in range(8)}
    assert -1.0 in scores


def test_topics_of_very_unequal_sizes_go_to_the_cosine_candidate():
    """Ten directions, 300 rows down to 4 (as the tweet corpus's topics): K-Means splits the big
    topics and merges the small ones; average linkage on cosine keeps them, and its silhouette
    says so. Observed on seeds 0-2: ACC 0.996-1.0 against K-Means' 0.44-0.50."""
    sizes = [300, 150, 60, 20, 8, 8, 5, 5, 4, 4]
    rng = np.random.default_rng(0)
    centres = np.eye(len(sizes), 30)
    X = np.vstack(
        [c + 0.18 * rng.normal(size=(n, 30)) for c, n in zip(centres, sizes, strict=True)]
    )
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    y = np.repeat(np.arange(len(sizes)), sizes)
    auto = AutoCluster(
        len(sizes), candidates={"kmeans": KMEANS, "ward": WARD},
        cosine_candidates=COSINE_CANDIDATE, random_state=0,
    ).fit(X)  # fmt: skip
    assert auto.chosen_ == "agglomerative_cosine"
    assert acc(y, auto.labels_) >= 0.95
    assert acc(y, auto.candidate_labels_["kmeans"]) <= 0.7


def test_the_packaged_candidates_leave_an_applications_hydra_as_it_was(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from deepseg.auto import _packaged_candidates, default_candidates

    (tmp_path / "app.yaml").write_text("greeting: hello\n")
    _packaged_candidates.cache_clear()
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        before = GlobalHydra.instance()
        candidates, cosine = default_candidates()
        assert "kmeans" in candidates and "agglomerative_cosine" in cosine
        assert GlobalHydra.instance() is before and before.is_initialized()
        assert compose("app").greeting == "hello"  # the application's own configs
    assert not GlobalHydra.instance().is_initialized()


class NeverFitted:
    """A candidate that must be served, never fitted."""

    def __init__(self, n_clusters: int = 2, random_state: int = 0) -> None:
        self.n_clusters = n_clusters
        self.random_state = random_state

    def fit_predict(self, X):
        raise AssertionError("a served candidate was fitted")


def test_candidates_served_with_their_labels_are_not_fitted(blobs, caplog):
    X, _ = blobs
    fresh = AutoCluster(4, {"kmeans": KMEANS, "gmm": GMM}, random_state=0).fit(X)
    stored = {name: fresh.candidate_labels_[name] for name in ("kmeans", "gmm")}
    asked = []

    def stored_for(name, node):
        asked.append((name, dict(node)))
        return stored[name], f"the job store (job {name}-key)"

    never = {"_target_": "tests.test_auto.NeverFitted"}
    served = AutoCluster(4, {"kmeans": KMEANS, "gmm": never}, random_state=0)
    caplog.set_level("INFO", logger="deepseg.auto")
    served.fit(X, stored_for=stored_for)
    assert asked == [("kmeans", KMEANS), ("gmm", never)]
    assert served.reused_ == ["kmeans", "gmm"] and set(served.served_) == {"kmeans", "gmm"}
    assert "auto: candidate gmm served from the job store (job gmm-key), not refitted" in (
        caplog.text
    )
    assert "fitted in" not in caplog.text
    # the same choice, scores and labels as the candidates fitted here
    assert fresh.chosen_ == "kmeans"
    assert (served.chosen_, served.scores_) == (fresh.chosen_, fresh.scores_)
    np.testing.assert_array_equal(served.labels_, fresh.labels_)
    assert served.selection()["served"] == served.served_
    # no estimator until the chosen one is fitted, alone, on demand
    assert "kmeans" not in served.candidates_ and "gmm" not in served.candidates_
    with pytest.raises(AttributeError, match="fit_chosen"):
        served.predict(X)
    best = served.fit_chosen(X)
    assert served.best_estimator_ is best and "fitting the chosen candidate kmeans" in caplog.text
    assert "gmm" not in served.candidates_
    np.testing.assert_array_equal(served.predict(X), fresh.predict(X))
    assert served.fit_chosen(X) is best  # once


def test_stored_labels_of_the_wrong_length_are_refitted(blobs):
    X, _ = blobs
    est = AutoCluster(4, {"kmeans": KMEANS, "gmm": GMM}, random_state=0)
    est.fit(X, stored_for=lambda name, node: (np.zeros(len(X) - 1, dtype=int), "elsewhere"))
    assert est.reused_ == [] and est.served_ == {} and set(est.candidates_) >= {"kmeans", "gmm"}
