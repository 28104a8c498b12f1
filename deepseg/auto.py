"""``model=auto``: fit several clusterings of one table, keep one partition chosen without labels.

:class:`AutoCluster` fits each candidate (classic and deep methods, each with its own options)
on the same features, then chooses among their partitions by how much they agree: a partition's
score is its mean normalised mutual information with the others (the "median partition" of
cluster-ensemble selection). Agreement is measured between partitions, never in any candidate's
own embedding, so the scores are comparable across candidates, and no label is read.

The candidates fall into families by the space they see (:func:`family_of`): the raw features
(the classic methods), the autoencoder's latent space (ae_kmeans, dec, idec, ...) and the
manifold (n2d; dec/idec with ``init=umap``). Members of one family vote as a block, so:

* ``consensus`` (on by default) adds one more candidate, the consensus partition of the
  others with every family weighing the same (:func:`consensus_partition`); it is scored
  against them and votes in no one's score;
* the rule (:func:`choose`, ``anchor_agreement``) keeps the first classic candidate (K-Means)
  unless the candidate that agrees most beats it by at least ``margin``, a threshold chosen
  leave-one-dataset-out on the development suite (``scripts/bench_auto_lodo.py``,
  docs/benchmarks.md); the rules it was measured against (``safe_agreement``, ``agreement``,
  ``family_agreement``) live in that script, not here;
* ``stand_in`` (on by default): when the consensus wins, a real candidate is returned in its
  place, so the result is always one method's own partition, with its ``predict`` and its
  bundle. It is chosen family first (:func:`nearest_family`): the family whose members agree
  most with the consensus on average, then its member nearest to it (the highest NMI).

Scoring (:func:`score_candidates`), the decision (:func:`choose`) and its explanation
(:func:`explain_choice`) are separate functions, shared with the benchmark scripts. The results
row and the report give the decision's margin: how far the runner-up was.

The deep candidates that share their autoencoder options are pretrained once, as in the
benchmark.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import normalized_mutual_info_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from deepseg.io import json_dumps
from deepseg.validation import N_CLUSTERS, SEED, Interval, Real, StrOptions, fit_input, new_input

logger = logging.getLogger(__name__)

__all__ = [
    "AutoCluster",
    "agreement_scores",
    "choose_on_directions",
    "consensus_partition",
    "consensus_score",
    "cosine_silhouette",
    "default_candidates",
    "evenness",
    "explain_choice",
    "family_of",
    "highest",
    "nearest_family",
    "nearest_to",
    "resolve_geometry",
    "score_candidates",
    "shared_autoencoder",
]

#: the rule that chooses on Euclidean geometry; the alternatives it was measured against live in
#: scripts/bench_auto_lodo.py (docs/benchmarks.md)
RULE = "anchor_agreement"
#: ``auto``: cosine on directions (every row of the same norm), else euclidean
GEOMETRIES = ("auto", "euclidean", "cosine")
#: rows whose norms differ by less than this share are directions (cosine geometry)
UNIT_NORM_TOLERANCE = 1e-3
#: the silhouette of a larger input is computed on a seeded sample of this many rows
SILHOUETTE_SAMPLE = 10000
#: on directions, candidates whose cosine silhouette is within this share of the best one's are
#: a near-tie, which the most evenly sized partition among them wins (:func:`choose_on_directions`;
#: chosen leave-one-corpus-out on the four text corpora of the development suite, where every
#: fold chose it; docs/benchmarks.md)
NEAR_SILHOUETTE = 0.05
#: the family of the classic methods on the raw features, where the anchor comes from
CLASSIC = "raw"
CONSENSUS = "consensus"
_LATENT = {"AEKMeans", "AEGMM", "DEC", "IDEC", "DCN", "VaDE"}
_MANIFOLD = {"N2D"}


def _nmi_matrix(partitions: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    names = list(partitions)
    matrix = np.eye(len(names))
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            value = normalized_mutual_info_score(partitions[a], partitions[names[j]])
            matrix[i, j] = matrix[j, i] = value
    return names, matrix


def agreement_scores(partitions: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Each partition's mean NMI with every other partition (1.0 when it is alone).

    >>> a, b, c = [0, 0, 1, 1], [1, 1, 0, 0], [0, 1, 0, 1]
    >>> {k: round(v, 3) for k, v in agreement_scores({"a": a, "b": b, "c": c}).items()}
    {'a': 0.5, 'b': 0.5, 'c': 0.0}
    """
    names, matrix = _nmi_matrix(partitions)
    if len(names) == 1:
        return {names[0]: 1.0}
    means = (matrix.sum(axis=1) - 1.0) / (len(names) - 1)
    return {name: float(v) for name, v in zip(names, means, strict=True)}


def family_of(name: str, node: Mapping[str, Any] | None) -> str:
    """The space a candidate clusters in: ``raw``, ``latent``, ``manifold`` or ``consensus``.

    Keyed on the candidate's class (its ``_target_``) and its ``init``, never on its name,
    except for the consensus that :class:`AutoCluster` adds itself.

    >>> family_of("kmeans", {"_target_": "sklearn.cluster.KMeans"})
    'raw'
    >>> family_of("dec", {"_target_": "deepseg.deep.dec.DEC", "init": "kmeans"})
    'latent'
    >>> family_of("dec_umap", {"_target_": "deepseg.deep.dec.DEC", "init": "umap"})
    'manifold'
    """
    if name == CONSENSUS and node is None:
        return CONSENSUS
    node = node or {}
    target = str(node.get("_target_", ""))
    cls_name = target.rsplit(".", 1)[-1]
    deep = cls_name in _LATENT | _MANIFOLD
    manifold = cls_name in _MANIFOLD
    if not deep and target:  # a subclass or a user's deep estimator: by what the class is
        try:
            from hydra.utils import get_object

            cls = get_object(target)
        except Exception:  # an unknown target fails later, where it is built
            cls = None
        deep = bool(getattr(cls, "uses_autoencoder", False))
        manifold = deep and any(c.__name__ in _MANIFOLD for c in getattr(cls, "__mro__", ()))
    if not deep:
        return CLASSIC
    if manifold or node.get("init") == "umap":
        return "manifold"
    return "latent"


def consensus_partition(
    partitions: Mapping[str, np.ndarray],
    families: Mapping[str, str],
    n_clusters: int,
    seed: int,
) -> np.ndarray:
    """One partition that summarises the others, every family weighing the same.

    Each partition becomes its one-hot membership matrix, scaled so that every family's
    partitions together weigh one; K-Means (10 restarts, the seed) on the concatenation groups
    the rows that the partitions put together most often (the co-association of cluster
    ensembles, in memory linear in the rows). A noise label (-1) casts no vote (a zero row).
    May return fewer than ``n_clusters`` segments when the partitions allow no more.
    """
    from sklearn.cluster import KMeans

    names = list(partitions)
    size = {f: sum(families[n] == f for n in names) for f in set(families[n] for n in names)}
    blocks = []
    for name in names:
        labels = np.asarray(partitions[name])
        values, codes = np.unique(labels, return_inverse=True)
        onehot = np.zeros((len(labels), len(values)), dtype=np.float32)
        onehot[np.arange(len(labels)), codes] = 1.0
        onehot[:, values == -1] = 0.0  # noise votes for no segment
        blocks.append(onehot * np.float32(np.sqrt(1.0 / size[families[name]])))
    H = np.hstack(blocks)
    with warnings.catch_warnings():  # fewer distinct rows than k: fewer segments, reported
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(H)


class ConsensusAssignment(ClusterMixin, BaseEstimator):
    """The consensus partition as a fitted estimator (built by :class:`AutoCluster`; not a
    public estimator: it holds the labels of the rows it was built for).

    It has no ``predict``: the consensus is a partition of the rows it was computed on, as
    agglomerative clustering's is, so when it wins, ``deepseg-train`` writes no bundle (a
    nearest-mean rule would give the training rows other segments than ``labels_``).
    """

    def __init__(self, labels: np.ndarray | None = None) -> None:
        self.labels = labels

    def fit(self, X: Any, y: object = None) -> ConsensusAssignment:
        labels = np.asarray(self.labels)
        if labels.shape != (len(X),):
            raise ValueError(
                f"ConsensusAssignment needs one label per row: {labels.shape} for {len(X)}."
            )
        self.labels_ = np.unique(labels, return_inverse=True)[1]
        return self


#: scores closer than this count as equal (NMI differences at the margin are not rounding)
TOLERANCE = 1e-9


def highest(scores: Mapping[str, float], order: list[str]) -> tuple[str, str]:
    """The candidate with the highest score and the next one (ties: the first listed)."""
    names = [n for n in order if n in scores]

    def best(among: list[str]) -> str:
        return max(among, key=lambda n: (scores[n], -order.index(n)))

    top = best(names)
    rest = [n for n in names if n != top]
    return top, best(rest) if rest else top


def choose(
    scores: Mapping[str, float],
    families: Mapping[str, str],
    margin: float,
    order: list[str],
) -> tuple[str, str, str]:
    """The winner among scored candidates, the runner-up, and how the rule decided.

    The anchor is the first classic candidate listed (kmeans by default): it is kept unless the
    highest score exceeds its own by at least ``margin``. Without a classic candidate, the
    highest score wins. Ties go to the candidate listed first.

    Returns:
        (winner, runner-up, how): how is ``kept`` (the anchor stayed), ``left`` (another
        cleared the margin), ``highest`` (no anchor: the highest score) or ``alone`` (one
        candidate).

    >>> fam = {"kmeans": "raw", "dec": "latent"}
    >>> choose({"kmeans": 0.50, "dec": 0.52}, fam, 0.05, ["kmeans", "dec"])
    ('kmeans', 'dec', 'kept')
    >>> choose({"kmeans": 0.50, "dec": 0.60}, fam, 0.05, ["kmeans", "dec"])
    ('dec', 'kmeans', 'left')
    """
    names = [n for n in order if n in scores]
    if len(names) == 1:
        return names[0], names[0], "alone"
    classic = [n for n in names if families[n] == CLASSIC]
    if not classic:
        return (*highest(scores, names), "highest")
    anchor, (top, _) = classic[0], highest(scores, names)
    if top != anchor and scores[top] - scores[anchor] >= margin - TOLERANCE:
        return top, anchor, "left"
    return anchor, highest(scores, [n for n in names if n != anchor])[0], "kept"


def score_candidates(
    partitions: Mapping[str, np.ndarray], consensus: np.ndarray | None = None
) -> dict[str, float]:
    """Each candidate's agreement (mean NMI with the other candidates), and the consensus's
    (its mean NMI with the candidates: it is scored, it votes in no one's score)."""
    scores = agreement_scores(partitions)
    if consensus is not None:
        scores[CONSENSUS] = consensus_score(consensus, partitions)
    return scores


def explain_choice(
    chosen: str,
    runner: str,
    how: str,
    scores: Mapping[str, float],
    families: Mapping[str, str],
    margin: float,
    stood_in: str | None = None,
    stood_in_nmi: float | None = None,
    family_nmi: Mapping[str, float] | None = None,
) -> str:
    """One sentence a user can check: who won, against whom, by how much, and why."""
    what = "agreement (mean NMI with the other candidates)"
    score, runner_score = scores[chosen], scores[runner]
    anchor = "the anchor (the first classic candidate)"
    if how == "alone":
        why = f"{chosen} is the only candidate"
    elif how == "kept":
        why = (
            f"{chosen} is {anchor} ({what} {score:.3f}); the best other, {runner} "
            f"({runner_score:.3f}), does not clear it by the margin {margin:g}"
        )
    elif how == "left":
        why = (
            f"{chosen} ({families[chosen]}, {what} {score:.3f}) beats {anchor}, "
            f"{runner}, by {score - runner_score:.3f}, at least the margin {margin:g}"
        )
    else:
        why = f"{chosen} has the highest {what}, {score:.3f}; next {runner} ({runner_score:.3f})"
    if stood_in is not None and family_nmi and len(family_nmi) > 1:
        ranked = sorted(family_nmi.items(), key=lambda kv: -kv[1])
        (family, value), (other, other_value) = ranked[0], ranked[1]
        why += (
            f"; {stood_in} stands in for it: the {family} family agrees most with the "
            f"consensus (mean NMI {value:.3f}; next {other}, {other_value:.3f}) and "
            f"{stood_in} is its member nearest to it (NMI {stood_in_nmi:.3f})"
        )
    elif stood_in is not None:
        why += (
            f"; {stood_in}, the candidate nearest to the consensus (NMI {stood_in_nmi:.3f}), "
            "stands in for it"
        )
    return why


def describe_selection(selection: Mapping[str, Any]) -> str:
    """The whole choice (:meth:`AutoCluster.selection`) in one paragraph for the report: the
    candidates, their families, scores and times, the winner, the runner-up, the decision's
    margin and what the score measures."""
    scores = sorted(selection["scores"].items(), key=lambda kv: -kv[1])
    families = selection.get("families") or {}
    seconds = selection.get("seconds") or {}
    reused = set(selection.get("reused") or [])

    def one(name: str, value: float) -> str:
        family = f" [{families[name]}]" if name in families else ""
        if name in reused:
            time_ = ", reused"
        elif name in seconds:
            time_ = f", {seconds[name]:.1f}s"
        else:
            time_ = ""
        return f"{name}{family} {value:.3f}{time_}"

    listed = "; ".join(one(name, value) for name, value in scores)
    failed = selection.get("failed") or {}
    tail = f" Failed and left out: {', '.join(sorted(failed))}." if failed else ""
    fitted = len([n for n in selection["scores"] if n != "consensus"])
    consensus = " and their consensus" if "consensus" in selection["scores"] else ""
    margin = ""
    how = selection.get("decided_by")
    if "decision_margin" in selection and how not in (None, "alone"):
        asked = f", margin asked {selection['margin']:g}" if how in ("kept", "left") else ""
        margin = (
            f" Decision margin: {selection['decision_margin']:+.3f} against "
            f"{selection['runner_up']} (criterion {selection['criterion']}{asked})."
        )
        if how == "evenness":  # the margin is in silhouette, which did not decide
            margin = (
                f" Decided by evenness among near-tied silhouettes; silhouette difference "
                f"{selection['decision_margin']:+.3f} against {selection['runner_up']} "
                f"(criterion {selection['criterion']})."
            )
    if str(selection.get("criterion", "")).startswith("cosine_silhouette"):
        what = (
            "the cosine silhouette of its partition: the rows are directions (every row has "
            "the same norm), compared by angle; a near-tie goes to the most evenly sized "
            "partition"
        )
    else:
        what = (
            "mean NMI of its partition with every other candidate's; the consensus votes in "
            "no score"
        )
    return (
        f"model=auto fitted {fitted} candidates{consensus} and kept {selection['chosen']}: "
        f"{selection['reason']}.{margin} Label-free score of each [family] ({what}; no "
        f"label is read) and its time: {listed}.{tail}"
    )


def resolve_geometry(X: np.ndarray, geometry: str) -> str:
    """``euclidean`` or ``cosine``; ``auto`` is cosine when every row has the same norm.

    Rows of one norm are directions (sentence embeddings, L2-normalised vectors): their
    geometry is the angle between them. Zero rows, norms that differ by more than 0.1%, or
    few distinct values (one-hot categories, whose rows share a norm too) are Euclidean.

    >>> Z = np.random.default_rng(0).normal(size=(50, 3))
    >>> resolve_geometry(Z / np.linalg.norm(Z, axis=1, keepdims=True), "auto")
    'cosine'
    >>> resolve_geometry(Z, "auto")
    'euclidean'
    >>> resolve_geometry(np.eye(3)[[0, 1, 2, 1, 0]], "auto")  # one-hot codes
    'euclidean'
    """
    if geometry != "auto":
        return geometry
    if len(X) < 2:
        return "euclidean"
    X = np.asarray(X)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64))  # no float64 copy of X
    top = float(norms.max())
    if top <= 0 or float(norms.min()) < top * (1 - UNIT_NORM_TOLERANCE):
        return "euclidean"
    # One-hot codes (a table of categorical columns alone) have rows of one norm too, but few
    # distinct values: they are categories, not directions.
    head = X[: min(len(X), 200)]
    if len(np.unique(head)) <= 2 * (X.shape[1] + 1):
        return "euclidean"
    return "cosine"


def cosine_silhouette(X: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """The silhouette of a partition on cosine distance (on a seeded sample of at most
    :data:`SILHOUETTE_SAMPLE` rows); -1 when it is undefined (one cluster, or a cluster per
    row). Noise points (label -1) count as one more cluster."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    k = len(np.unique(labels))
    if not 2 <= k <= len(labels) - 1:
        return -1.0
    sample = SILHOUETTE_SAMPLE if len(labels) > SILHOUETTE_SAMPLE else None
    try:
        return float(
            silhouette_score(X, labels, metric="cosine", sample_size=sample, random_state=seed)
        )
    except ValueError:  # the sample drew a single cluster (a partition of one big cluster)
        return -1.0


def evenness(labels: np.ndarray, n_clusters: int) -> float:
    """How evenly a partition's rows spread over ``n_clusters`` clusters, in [0, 1]: the
    entropy of its cluster sizes over log(max(n_clusters, clusters found)); 1.0 for equal
    sizes, lower for uneven ones or fewer clusters than asked; times the share of rows that
    are not noise (label -1), so noise lowers it.

    >>> evenness(np.array([0, 0, 1, 1]), 2), round(evenness(np.array([0, 0, 0, 1]), 2), 3)
    (1.0, 0.811)
    >>> round(evenness(np.array([0, 0, 1, 1, -1, -1]), 2), 3)  # a third of the rows are noise
    0.667
    """
    labels = np.asarray(labels)
    _, counts = np.unique(labels[labels != -1], return_counts=True)
    groups = max(int(n_clusters), len(counts))
    if groups < 2 or len(counts) == 0 or len(labels) == 0:
        return 0.0
    kept = counts.sum() / len(labels)
    shares = counts / counts.sum()
    return float(kept * -(shares * np.log(shares)).sum() / np.log(groups))


def choose_on_directions(
    silhouettes: Mapping[str, float],
    evenness_of: Mapping[str, float],
    order: list[str],
    near: float = NEAR_SILHOUETTE,
) -> tuple[str, str, list[str]]:
    """The choice on directions: among the candidates whose cosine silhouette is within
    ``near`` of the best one's (relative), the most evenly sized partition; ties go to the
    candidate listed first.

    Silhouettes a few percent apart do not rank partitions of short texts: on BANKING77, K-Means,
    agglomerative and spectral clustering lie within 0.01 of each other (0.22) with ACC 0.60 to
    0.68, and the evenly sized one is the right one more often (docs/benchmarks.md).

    Returns:
        (winner, runner-up, the near-tied candidates): the runner-up is the best other
        near-tied candidate by evenness, or the best other by silhouette when none is near.

    >>> sil = {"kmeans": 0.232, "spectral": 0.222, "agglo": 0.150}
    >>> even = {"kmeans": 0.95, "spectral": 0.99, "agglo": 1.0}
    >>> choose_on_directions(sil, even, ["kmeans", "spectral", "agglo"])
    ('spectral', 'kmeans', ['kmeans', 'spectral'])
    """
    names = [n for n in order if n in silhouettes]
    top = max(silhouettes[n] for n in names)
    tied = [n for n in names if silhouettes[n] >= top - near * abs(top) - TOLERANCE]
    chosen, runner = highest(evenness_of, tied)
    if runner == chosen:  # nothing near: the runner-up by silhouette
        runner = highest(silhouettes, names)[1]
    return chosen, runner, tied


def nearest_to(
    consensus: np.ndarray, partitions: Mapping[str, np.ndarray], order: list[str]
) -> tuple[str, dict[str, float]]:
    """The candidate whose partition agrees most with the consensus (NMI), and every NMI.

    Ties go to the candidate listed first in ``order``.
    """
    near = {
        n: float(normalized_mutual_info_score(consensus, partitions[n]))
        for n in order
        if n in partitions and n != CONSENSUS
    }
    if not near:
        raise ValueError("nearest_to needs at least one candidate besides the consensus.")
    return max(near, key=lambda n: (near[n], -order.index(n))), near


def nearest_family(
    consensus: np.ndarray,
    partitions: Mapping[str, np.ndarray],
    families: Mapping[str, str],
    order: list[str],
) -> tuple[str, dict[str, float], dict[str, float]]:
    """The candidate that stands in for a winning consensus, chosen family first.

    The consensus gives every family one vote (:func:`consensus_partition`), so the stand-in is
    asked the same way: the family whose members agree most with the consensus on average
    (mean NMI), then that family's member nearest to it. A family that only one of its
    members carries (the others far from the consensus) loses to a family that agrees as a
    whole. A family of one member is judged by that member alone, so among near-equals the
    stand-in leans to a lone family (n2d among the packaged candidates). Ties go to the
    family, then the member, listed first in ``order``.

    >>> cons = [0, 0, 0, 0, 1, 1, 1, 1]
    >>> parts = {"a": cons, "b": [0, 1, 0, 1, 0, 1, 0, 1], "c": [0, 0, 0, 0, 1, 1, 1, 0]}
    >>> fams = {"a": "latent", "b": "latent", "c": "manifold"}
    >>> name, near, means = nearest_family(cons, parts, fams, list(parts))
    >>> name, round(near["a"], 3), round(near["c"], 3), round(means["latent"], 3)
    ('c', 1.0, 0.562, 0.5)

    Returns:
        (stand-in, each candidate's NMI with the consensus, each family's mean NMI).
    """
    _, near = nearest_to(consensus, partitions, order)
    names = list(near)
    unknown = [n for n in names if n not in families]
    if unknown:
        raise ValueError(
            f"nearest_family needs the family of every candidate: none for {unknown}."
        )
    groups: dict[str, list[str]] = {}
    for name in names:  # in the order given, so max() breaks ties toward the first listed
        groups.setdefault(families[name], []).append(name)
    means = {f: float(np.mean([near[n] for n in members])) for f, members in groups.items()}
    family = max(means, key=means.__getitem__)
    return max(groups[family], key=near.__getitem__), near, means


def consensus_score(consensus: np.ndarray, partitions: Mapping[str, np.ndarray]) -> float:
    """The consensus's agreement: its mean NMI with each candidate.

    The consensus is built from the candidates, so it is scored against them but casts no
    vote in their scores.
    """
    return float(
        np.mean([normalized_mutual_info_score(consensus, p) for p in partitions.values()])
    )


def shared_autoencoder(
    estimator: Any, X: np.ndarray, seed: int, cache: dict[str, tuple[Any, float]]
) -> tuple[Any, float] | None:
    """Pretrain once per (autoencoder, pretrain, trainer, seed) and share the network.

    Deep methods with identical pretraining options start from the same pretrained
    autoencoder, as in the papers, so its cost is paid once per dataset and seed. The
    estimator's ``checkpoint`` options apply to this pretraining too (they do not change its
    result, so they are not part of the key).

    The estimator's ``autoencoder`` and ``pretrain`` options are checked here unless it holds
    them checked (:meth:`deepseg.deep.estimator.DeepClusterer.checked_groups`), and it takes
    them back checked (the same options, merged with their defaults): its fit does not check
    them again. The key is made of the merged options, so options that differ only by a
    default written out share a pretraining.

    Returns:
        (autoencoder, pretraining seconds), or None for methods without an autoencoder or that
        bring their own.
    """
    if not getattr(estimator, "uses_autoencoder", False) or estimator.pretrained is not None:
        return None
    if getattr(estimator, "encoder_from", None) is not None:  # starts from a bundle's network
        return None
    from deepseg.deep.skeleton import pretrain_autoencoder
    from deepseg.options import AUTOENCODER, PRETRAIN

    autoencoder = AUTOENCODER.check(estimator.autoencoder)
    pretrain = PRETRAIN.check(estimator.pretrain)
    estimator.set_params(autoencoder=autoencoder, pretrain=pretrain)
    key = json_dumps([autoencoder, pretrain, estimator.trainer, seed], sort_keys=True, default=str)
    if key not in cache:
        start = time.perf_counter()
        ae = pretrain_autoencoder(
            X,
            autoencoder,
            pretrain,
            estimator.trainer,
            random_state=seed,
            checkpoint=getattr(estimator, "checkpoint", None),
        )
        cache[key] = (ae, time.perf_counter() - start)
        logger.info("Pretrained the autoencoder (seed %d) in %.1fs", seed, cache[key][1])
    return cache[key]


def _build(name: str, node: Mapping[str, Any], n_clusters: int, seed: int) -> Any:
    """Instantiate one candidate from its config node, with n_clusters and the seed."""
    from hydra.utils import get_object

    kwargs = dict(node)
    target = kwargs.pop("_target_", None)
    if not isinstance(target, str):
        raise ValueError(f"The candidate '{name}' of AutoCluster needs a _target_. Got {node!r}.")
    cls = get_object(target)
    params = inspect.signature(cls).parameters
    for key, value in (("n_clusters", n_clusters), ("random_state", seed)):
        if key in params:
            kwargs[key] = value
    return cls(**kwargs)


def default_candidates() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """A copy of the packaged candidates of ``model=auto`` (``configs/model/auto.yaml``):
    ``(candidates, cosine_candidates)``, as config nodes, what :class:`AutoCluster` fits when
    given none.

    They are composed from the packaged configs, so Python and the commands fit the same
    methods with the same options; the deep candidates leave the trainer options to Python's
    defaults (no progress bar). An application's own Hydra state is left as it was.
    """
    return copy.deepcopy(_packaged_candidates())


_HYDRA_LOCK = threading.Lock()


@functools.cache
def _packaged_candidates() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.singleton import Singleton
    from hydra.version import VersionBase
    from omegaconf import OmegaConf

    with _HYDRA_LOCK:
        # Hydra keeps process-wide singletons: an application's (its config loader, its
        # version_base) are put back as they were, the same objects
        instances = dict(Singleton._instances)
        global_hydra, version_base = GlobalHydra.instance(), VersionBase.instance()
        saved_hydra, saved_base = global_hydra.hydra, version_base.version_base
        try:
            global_hydra.clear()
            with initialize_config_module("deepseg.configs", version_base=None):
                cfg = compose("train", overrides=["model=auto"])
            model = OmegaConf.to_container(cfg.model, resolve=True)
        finally:
            Singleton._instances = instances
            global_hydra.hydra = saved_hydra
            version_base.version_base = saved_base
    assert isinstance(model, dict)

    def python_defaults(nodes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        return {
            name: {k: v for k, v in node.items() if k != "trainer"} for name, node in nodes.items()
        }

    return python_defaults(model["candidates"]), python_defaults(model["cosine_candidates"])


class AutoCluster(ClusterMixin, BaseEstimator):
    """Fit every candidate clustering and keep one partition, chosen by agreement, label-free.

    Args:
        n_clusters: the number of clusters every candidate is asked for.
        candidates: ``{name: config node}``; each node has a ``_target_`` (an estimator class)
            and its keyword arguments. None: the packaged candidates of
            ``configs/model/auto.yaml`` (:func:`default_candidates`).
        margin: how much more agreement (mean NMI) than the anchor, the first classic
            candidate, another candidate needs to be chosen (:func:`choose`).
        consensus: add the consensus partition of the candidates as one more candidate.
        stand_in: when the consensus wins, return a candidate in its place, chosen family
            first (:func:`nearest_family`).
        random_state: the seed every candidate is fitted with.
        geometry: ``auto`` (cosine when every row of ``X`` has the same norm: directions such
            as sentence embeddings; else euclidean), ``euclidean`` or ``cosine``. On cosine
            geometry the ``cosine_candidates`` join the candidates, scored by their cosine
            silhouette (:func:`cosine_silhouette`; no consensus, no margin): those within
            :data:`NEAR_SILHOUETTE` of the highest are a near-tie, which the most evenly sized
            partition wins (:func:`choose_on_directions`). On the four text corpora of the
            development suite agreement keeps K-Means (docs/benchmarks.md).
        cosine_candidates: ``{name: config node}`` fitted only on cosine geometry. None with
            ``candidates=None``: the packaged ones (average-linkage agglomerative clustering on
            cosine distance); None beside your own ``candidates``: none.

    Attributes:
        labels_: the chosen candidate's own labels.
        geometry_: the geometry the choice was made in, ``euclidean`` or ``cosine``.
        chosen_: the chosen candidate's name (``consensus`` for the consensus partition,
            possible only with ``stand_in=False``).
        stood_in_: the NMI of each candidate with the consensus when the consensus won and a
            candidate stood in for it; else None.
        stand_in_families_: then, each family's mean NMI with the consensus; else None.
        candidates_: ``{name: fitted estimator}`` of every candidate that fitted (or was taken
            fitted through ``fitted_for``); a candidate served through ``stored_for`` has its
            labels only, until :meth:`fit_chosen` fits it when it is the chosen one.
        candidate_labels_: ``{name: labels}`` of every candidate that fitted or was served.
        reused_: the candidates taken through ``fitted_for`` or ``stored_for``, not fitted.
        served_: ``{name: where from}`` of those served through ``stored_for`` (labels only).
        seed_: the seed the candidates were fitted with.
        families_: ``{name: family}`` (:func:`family_of`).
        scores_: ``{name: label-free score}``: agreement, or the cosine silhouette on
            directions.
        evenness_: on directions, ``{name: evenness}`` of each candidate's partition
            (:func:`evenness`).
        runner_up_: the candidate the decision was closest to.
        decision_margin_: the winner's score minus the runner-up's (negative when the anchor
            was kept against a higher score that did not clear ``margin``, or when evenness
            decided a near-tie on directions for a lower silhouette).
        failed_: ``{name: error}`` of the candidates that failed.
        reason_: one sentence on why the winner won.
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "n_clusters": N_CLUSTERS,
        "candidates": [Mapping, None],
        "margin": [Interval(Real, 0.0, None, closed="left")],
        "consensus": ["boolean"],
        "stand_in": ["boolean"],
        "random_state": SEED,
        "geometry": [StrOptions(set(GEOMETRIES))],
        "cosine_candidates": [Mapping, None],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        candidates: Mapping[str, Mapping[str, Any]] | None = None,
        margin: float = 0.05,
        consensus: bool = True,
        stand_in: bool = True,
        random_state: int | None = None,
        geometry: str = "auto",
        cosine_candidates: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.candidates = candidates
        self.geometry = geometry
        self.cosine_candidates = cosine_candidates
        self.margin = margin
        self.consensus = consensus
        self.stand_in = stand_in
        self.random_state = random_state

    def check_params(self, n_samples: int | None = None) -> int:
        """Check the parameters (and each candidate's, before any work); return the seed.

        A candidate that needs a missing extra (n2d without umap) is not an error here: it
        fails in :meth:`fit`, which records it and goes on without it.

        Raises:
            ValueError: naming the parameter, the expectation and the value.
        """
        self._validate_params()
        candidates, _ = self._candidate_nodes()
        if not any(node is not None for node in candidates.values()):
            raise ValueError(
                "The 'candidates' parameter of AutoCluster must be a non-empty mapping "
                f"{{name: config with _target_}} or None. Got {self.candidates!r} instead."
            )
        if self.consensus and CONSENSUS in candidates:
            raise ValueError(
                f"AutoCluster adds the candidate '{CONSENSUS}' itself (consensus=true); name "
                "yours otherwise."
            )
        seed = 0 if self.random_state is None else int(self.random_state)
        if n_samples is not None:  # the cosine candidates too, though only directions fit them
            for est in self._estimators(seed, cosine=True).values():
                check = getattr(est, "check_params", None)
                if check is not None:
                    try:
                        check(n_samples)
                    except ImportError:  # a missing extra: left out in fit
                        pass
        if self.random_state is None:
            return int(np.random.default_rng().integers(2**31 - 1))
        return int(self.random_state)

    def _candidate_nodes(self) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        """``(candidates, cosine_candidates)``: the given ones, or the packaged defaults."""
        if self.candidates is None:
            packaged, packaged_cosine = default_candidates()
            cosine = packaged_cosine if self.cosine_candidates is None else self.cosine_candidates
            return packaged, cosine
        return self.candidates, self.cosine_candidates or {}

    def _nodes(self, cosine: bool = False) -> dict[str, Mapping[str, Any]]:
        """The candidates' config nodes: ``candidates``, and ``cosine_candidates`` on cosine
        geometry (a name in both is the cosine one)."""
        candidates, cosine_candidates = self._candidate_nodes()
        nodes = dict(candidates)
        if cosine:
            nodes.update(cosine_candidates)
        # a candidate set to null (model.candidates.NAME=null) is left out
        return {name: node for name, node in nodes.items() if node is not None}

    def _estimators(self, seed: int, cosine: bool = False) -> dict[str, Any]:
        return {
            name: _build(name, dict(node), int(self.n_clusters), seed)
            for name, node in self._nodes(cosine).items()
        }

    def fit(
        self,
        X: Any,
        y: object = None,
        pretrained_for: Callable[[Any], Any] | None = None,
        fitted_for: Callable[[Mapping[str, Any]], tuple[Any, np.ndarray] | None] | None = None,
        stored_for: Callable[[str, Mapping[str, Any]], tuple[np.ndarray, str] | None]
        | None = None,
    ) -> AutoCluster:
        """Fit the candidates in order, then choose. ``y`` is ignored: no label is read.

        A candidate that fails is recorded in ``failed_`` and left out of the choice; when
        every candidate fails, the first error is raised.

        Args:
            X: array of shape (n_samples, n_features).
            y: ignored.
            pretrained_for: optional ``f(estimator) -> autoencoder or None``, the pretrained
                network for a deep candidate (the benchmark passes its shared pretraining, so
                a method and the same method inside auto pretrain once); by default the deep
                candidates with the same autoencoder options share one pretraining.
            fitted_for: optional ``f(config node) -> (fitted estimator, labels) or None``: a
                candidate already fitted on this X with this config, k and seed (the
                benchmark's own run of that method), taken as it is instead of refitted. Its
                name is in ``reused_``.
            stored_for: optional ``f(name, config node) -> (labels, where from) or None``: the
                partition a candidate gave on this X with this config, k and seed in an
                earlier run (the benchmark's job store), asked when ``fitted_for`` has none.
                Its labels are served, not refitted (the log says so, naming where from); it
                is in ``reused_`` and ``served_``, without an estimator until
                :meth:`fit_chosen`. When every candidate is served, nothing is fitted.
        """
        X = fit_input(self, X, dtype=np.float32, min_samples=2)
        seed = self.check_params(X.shape[0])
        self.geometry_ = resolve_geometry(X, self.geometry)
        cosine = self.geometry_ == "cosine"
        nodes = self._nodes(cosine)
        estimators = self._estimators(seed, cosine)
        pretrained: dict[str, tuple[Any, float]] = {}
        self.candidates_: dict[str, Any] = {}
        self.candidate_labels_: dict[str, np.ndarray] = {}
        self.candidate_seconds_: dict[str, float] = {}
        self.failed_: dict[str, str] = {}
        first_error: Exception | None = None
        self.reused_: list[str] = []
        self.served_: dict[str, str] = {}
        self.seed_ = seed
        for name, est in estimators.items():
            start = time.perf_counter()
            node = nodes[name]
            found = fitted_for(node) if fitted_for is not None else None
            if found is not None:
                self.candidates_[name], self.candidate_labels_[name] = found
                self.candidate_seconds_[name] = 0.0
                self.reused_.append(name)
                continue
            served = stored_for(name, node) if stored_for is not None else None
            if served is not None and np.shape(served[0]) == (X.shape[0],):
                self.candidate_labels_[name] = np.asarray(served[0])
                self.candidate_seconds_[name] = 0.0
                self.reused_.append(name)
                self.served_[name] = served[1]
                logger.info("auto: candidate %s served from %s, not refitted", name, served[1])
                continue
            if served is not None:
                logger.warning(
                    "auto: the stored labels of candidate %s (from %s) have shape %s, for %d "
                    "rows: it is fitted.", name, served[1], np.shape(served[0]), X.shape[0],
                )  # fmt: skip
            try:
                if pretrained_for is not None:
                    ae = pretrained_for(est)
                else:
                    shared = shared_autoencoder(est, X, seed, pretrained)
                    ae = None if shared is None else shared[0]
                if ae is not None:
                    est.set_params(pretrained=ae)
                labels = np.asarray(est.fit_predict(X))
            except Exception as exc:  # one candidate's failure leaves the others
                logger.warning("auto: candidate %s failed: %s: %s", name, type(exc).__name__, exc)
                self.failed_[name] = f"{type(exc).__name__}: {exc}"
                first_error = first_error or exc
                continue
            self.candidates_[name] = est
            self.candidate_labels_[name] = labels
            self.candidate_seconds_[name] = time.perf_counter() - start
            logger.info(
                "auto: candidate %s fitted in %.1f s (%d of %d)",
                name, self.candidate_seconds_[name], len(self.candidate_labels_), len(estimators),
            )  # fmt: skip
        if not self.candidate_labels_:
            assert first_error is not None
            raise first_error
        if cosine:
            self._choose_by_silhouette(X, seed, list(estimators), nodes)
        else:
            self._choose(X, seed, list(estimators))
        logger.info("auto: chose %s: %s", self.chosen_, self.reason_)
        self.labels_ = self.candidate_labels_[self.chosen_]
        return self

    def _choose(self, X: np.ndarray, seed: int, order: list[str]) -> None:
        """Score the fitted candidates (and their consensus), decide, explain."""
        self.evenness_: dict[str, float] = {}  # only directions are decided by it
        nodes = self._nodes()
        self.families_ = {n: family_of(n, nodes[n]) for n in self.candidate_labels_}
        base = dict(self.candidate_labels_)  # the candidates that vote
        order = [n for n in order if n in base]
        consensus = None
        if self.consensus and len(base) > 1:
            start = time.perf_counter()
            try:
                labels = consensus_partition(base, self.families_, int(self.n_clusters), seed)
            except ValueError as exc:  # e.g. fewer rows than segments
                logger.warning("auto: no consensus partition: %s", exc)
                self.failed_[CONSENSUS] = f"{type(exc).__name__}: {exc}"
            else:
                self.candidates_[CONSENSUS] = ConsensusAssignment(labels).fit(X)
                consensus = self.candidates_[CONSENSUS].labels_
                self.candidate_labels_[CONSENSUS] = consensus
                self.candidate_seconds_[CONSENSUS] = time.perf_counter() - start
                self.families_[CONSENSUS] = CONSENSUS
                order = [*order, CONSENSUS]
        self.scores_ = score_candidates(base, consensus)
        margin = float(self.margin)
        chosen, runner, how = choose(self.scores_, self.families_, margin, order)
        self.chosen_, self.runner_up_, self.decision_how_ = chosen, runner, how
        self.decision_margin_ = self.scores_[chosen] - self.scores_[runner]
        self.stood_in_: dict[str, float] | None = None
        self.stand_in_families_: dict[str, float] | None = None
        if chosen == CONSENSUS and self.stand_in and len(base) > 0:
            self.chosen_, self.stood_in_, self.stand_in_families_ = nearest_family(
                self.candidate_labels_[CONSENSUS], base, self.families_, order
            )
        self.reason_ = explain_choice(
            chosen, runner, how, self.scores_, self.families_, margin,
            stood_in=None if self.stood_in_ is None else self.chosen_,
            stood_in_nmi=None if self.stood_in_ is None else self.stood_in_[self.chosen_],
            family_nmi=self.stand_in_families_,
        )  # fmt: skip

    def _choose_by_silhouette(
        self, X: np.ndarray, seed: int, order: list[str], nodes: Mapping[str, Any]
    ) -> None:
        """On directions: among the candidates near the highest cosine silhouette, the most
        evenly sized partition (:func:`choose_on_directions`; no consensus).

        Every candidate's partition is scored in the same space, the input's own directions,
        so the scores compare; agreement would favour the many candidates that share
        K-Means' preference for clusters of equal size.
        """
        order = [n for n in order if n in self.candidate_labels_]
        self.families_ = {n: family_of(n, nodes[n]) for n in order}
        self.scores_ = {n: cosine_silhouette(X, self.candidate_labels_[n], seed) for n in order}
        k = int(self.n_clusters)
        self.evenness_ = {n: evenness(self.candidate_labels_[n], k) for n in order}
        self.chosen_, self.runner_up_, tied = choose_on_directions(
            self.scores_, self.evenness_, order
        )
        how = "alone" if len(order) == 1 else "silhouette" if len(tied) == 1 else "evenness"
        self.decision_how_ = how
        self.decision_margin_ = self.scores_[self.chosen_] - self.scores_[self.runner_up_]
        self.stood_in_ = None
        self.stand_in_families_ = None
        if how == "alone":
            self.reason_ = f"{self.chosen_} is the only candidate"
            return
        top = max(self.scores_.values())
        head = (
            "every row of the input has the same norm (directions, such as sentence "
            "embeddings), so the candidates are compared by their cosine silhouette"
        )
        if how == "silhouette":
            self.reason_ = (
                f"{head}: {self.chosen_} has the highest, {self.scores_[self.chosen_]:.3f}, "
                f"and no other is within {NEAR_SILHOUETTE:.0%} of it; next {self.runner_up_} "
                f"({self.scores_[self.runner_up_]:.3f})"
            )
            return
        within = ", ".join(
            f"{n} {self.scores_[n]:.3f} (evenness {self.evenness_[n]:.3f})" for n in tied
        )
        self.reason_ = (
            f"{head}: {len(tied)} are within {NEAR_SILHOUETTE:.0%} of the highest, {top:.3f}: "
            f"{within}; a near-tie, which the most evenly sized partition wins: "
            f"{self.chosen_} (evenness {self.evenness_[self.chosen_]:.3f}; next "
            f"{self.runner_up_}, {self.evenness_[self.runner_up_]:.3f})"
        )

    @property
    def best_estimator_(self) -> Any:
        """The chosen candidate, fitted.

        Raises:
            AttributeError: the chosen candidate's partition was served (``stored_for``)
                without its estimator; :meth:`fit_chosen` fits it.
        """
        check_is_fitted(self, "chosen_")
        if self.chosen_ not in self.candidates_:
            raise AttributeError(
                f"AutoCluster chose {self.chosen_}, whose partition was served from "
                f"{self.served_.get(self.chosen_)} without its fitted estimator; "
                "fit_chosen(X) fits it."
            )
        return self.candidates_[self.chosen_]

    def fit_chosen(self, X: Any, pretrained_for: Callable[[Any], Any] | None = None) -> Any:
        """The chosen candidate's fitted estimator, fitted now on ``X`` (the rows ``fit`` saw)
        when its partition was served without it; else the one ``fit`` has.

        Only the chosen candidate is fitted, with its config, k and the seed of ``fit``, and
        the log says so. ``labels_`` stay the served ones (the results row was scored on
        them); a fit that gives other labels is logged.

        Args:
            X: the rows ``fit`` was given.
            pretrained_for: as in :meth:`fit`.
        """
        check_is_fitted(self, "chosen_")
        if self.chosen_ in self.candidates_:
            return self.candidates_[self.chosen_]
        X = self._new_rows(X)
        name = self.chosen_
        node = self._nodes(self.geometry_ == "cosine")[name]
        est = _build(name, dict(node), int(self.n_clusters), int(self.seed_))
        logger.info(
            "auto: fitting the chosen candidate %s, served from %s, for its estimator",
            name, self.served_.get(name),
        )  # fmt: skip
        if pretrained_for is not None:
            ae = pretrained_for(est)
        else:
            shared = shared_autoencoder(est, X, int(self.seed_), {})
            ae = None if shared is None else shared[0]
        if ae is not None:
            est.set_params(pretrained=ae)
        labels = np.asarray(est.fit_predict(X))
        if not np.array_equal(labels, self.labels_):
            logger.warning(
                "auto: %s refitted gives other labels than the served ones (NMI %.3f); "
                "labels_ stay the served ones.",
                name, normalized_mutual_info_score(self.labels_, labels),
            )  # fmt: skip
        self.candidates_[name] = est
        return est

    def predict(self, X: Any) -> np.ndarray:
        """The chosen candidate's assignment of new rows (when it can assign them)."""
        best = self.best_estimator_
        if not hasattr(best, "predict"):
            raise AttributeError(
                f"AutoCluster chose {self.chosen_}, which cannot assign new rows (no predict)."
            )
        return np.asarray(best.predict(self._new_rows(X)))

    def _new_rows(self, X: Any) -> np.ndarray:
        """New rows checked as in ``fit`` (float32, the fitted width and column names)."""
        return new_input(self, X, dtype=np.float32, fitted="chosen_")

    @available_if(lambda self: hasattr(self.best_estimator_, "predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """The chosen candidate's soft assignment (when it has one)."""
        return np.asarray(self.best_estimator_.predict_proba(self._new_rows(X)))

    @available_if(lambda self: hasattr(self.best_estimator_, "transform"))
    def transform(self, X: Any) -> np.ndarray:
        """The chosen candidate's embedding (when it has one)."""
        return np.asarray(self.best_estimator_.transform(self._new_rows(X)))

    def segmenter_parts(self) -> tuple[Any, Any, str | None]:
        """The chosen candidate's (encoder, head, why no head), for its bundle."""
        best = self.best_estimator_
        own = getattr(best, "segmenter_parts", None)
        if callable(own):
            return own()
        from deepseg.baselines import segmenter_parts

        return segmenter_parts(best)

    def selection(self) -> dict[str, Any]:
        """The choice as plain data: candidates, their scores and times, the winner, why."""
        check_is_fitted(self, "chosen_")
        return {
            "criterion": "cosine_silhouette_then_evenness" if self.geometry_ == "cosine" else RULE,
            "geometry": self.geometry_,
            # on directions the silhouette decides alone: no margin is asked
            "margin": None if self.geometry_ == "cosine" else float(self.margin),
            "chosen": self.chosen_,
            "stood_in_for": None if self.stood_in_ is None else CONSENSUS,
            "nmi_with_consensus": None
            if self.stood_in_ is None
            else {k: round(v, 4) for k, v in self.stood_in_.items()},
            "family_nmi_with_consensus": None
            if getattr(self, "stand_in_families_", None) is None
            else {k: round(v, 4) for k, v in self.stand_in_families_.items()},
            "runner_up": self.runner_up_,
            "decision_margin": round(float(self.decision_margin_), 4),
            "decided_by": self.decision_how_,
            "segments_found": {
                k: len(np.unique(v[v >= 0])) for k, v in self.candidate_labels_.items()
            },
            "reason": self.reason_,
            "scores": {k: round(v, 4) for k, v in self.scores_.items()},
            "evenness": {k: round(v, 4) for k, v in getattr(self, "evenness_", {}).items()},
            "families": dict(self.families_),
            "seconds": {k: round(v, 2) for k, v in self.candidate_seconds_.items()},
            "failed": dict(self.failed_),
            "reused": list(self.reused_),
            "served": dict(getattr(self, "served_", {})),
        }
