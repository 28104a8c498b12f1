"""``model=auto``: fit several clusterings of one table, keep one partition chosen without labels.

:class:`AutoCluster` fits each candidate (classic and deep methods, each with its own options)
on the same features, then chooses among their partitions by how much they agree: the winner is
the partition that shares the most information with the others (its mean normalised mutual
information with every other candidate, the "median partition" of cluster-ensemble selection).
Agreement is measured between partitions, never in any candidate's own embedding, so the
scores are comparable across candidates, and no label is read.

The deep candidates that share their autoencoder options are pretrained once, as in the
benchmark.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.metrics import normalized_mutual_info_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from deepseg.baselines import _check_int
from deepseg.io import json_dumps

logger = logging.getLogger(__name__)

__all__ = ["AutoCluster", "agreement_scores", "shared_autoencoder"]

CRITERIA = ("agreement",)


def agreement_scores(partitions: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Each partition's mean NMI with every other partition (1.0 when it is alone).

    >>> a, b, c = [0, 0, 1, 1], [1, 1, 0, 0], [0, 1, 0, 1]
    >>> {k: round(v, 3) for k, v in agreement_scores({"a": a, "b": b, "c": c}).items()}
    {'a': 0.5, 'b': 0.5, 'c': 0.0}
    """
    names = list(partitions)
    if len(names) == 1:
        return {names[0]: 1.0}
    matrix = np.eye(len(names))
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            value = normalized_mutual_info_score(partitions[a], partitions[names[j]])
            matrix[i, j] = matrix[j, i] = value
    means = (matrix.sum(axis=1) - 1.0) / (len(names) - 1)
    return {name: float(v) for name, v in zip(names, means, strict=True)}


def shared_autoencoder(
    estimator: Any, X: np.ndarray, seed: int, cache: dict[str, tuple[Any, float]]
) -> tuple[Any, float] | None:
    """Pretrain once per (autoencoder, pretrain, trainer, seed) and share the network.

    Deep methods with identical pretraining options start from the same pretrained
    autoencoder, as in the papers, so its cost is paid once per dataset and seed. The
    estimator's ``checkpoint`` options apply to this pretraining too (they do not change its
    result, so they are not part of the key).

    Returns:
        (autoencoder, pretraining seconds), or None for methods without an autoencoder or that
        bring their own.
    """
    if not getattr(estimator, "uses_autoencoder", False) or estimator.pretrained is not None:
        return None
    if getattr(estimator, "encoder_from", None) is not None:  # starts from a bundle's network
        return None
    from deepseg.deep.skeleton import pretrain_autoencoder

    key = json_dumps(
        [estimator.autoencoder, estimator.pretrain, estimator.trainer, seed],
        sort_keys=True,
        default=str,
    )
    if key not in cache:
        start = time.perf_counter()
        ae = pretrain_autoencoder(
            X,
            estimator.autoencoder,
            estimator.pretrain,
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


class AutoCluster(ClusterMixin, BaseEstimator):
    """Fit every candidate clustering and keep the partition that agrees most with the others.

    Args:
        n_clusters: the number of clusters every candidate is asked for.
        candidates: ``{name: config node}``; each node has a ``_target_`` (an estimator class)
            and its keyword arguments (``configs/model/auto.yaml`` lists the defaults).
        criterion: the label-free choice: ``agreement`` (mean NMI with the other partitions).
        random_state: the seed every candidate is fitted with.

    Attributes:
        labels_: the chosen candidate's own labels.
        chosen_: the chosen candidate's name.
        candidates_: ``{name: fitted estimator}`` of every candidate that fitted.
        candidate_labels_: ``{name: labels}`` of those candidates.
        scores_: ``{name: label-free score}``; the highest won.
        failed_: ``{name: error}`` of the candidates that failed.
        reason_: one sentence on why the winner won.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        candidates: Mapping[str, Mapping[str, Any]] | None = None,
        criterion: str = "agreement",
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.candidates = candidates
        self.criterion = criterion
        self.random_state = random_state

    def check_params(self, n_samples: int | None = None) -> int:
        """Check the parameters (and each candidate's, before any work); return the seed.

        A candidate that needs a missing extra (n2d without umap) is not an error here: it
        fails in :meth:`fit`, which records it and goes on without it.

        Raises:
            ValueError: naming the parameter, the expectation and the value.
        """
        _check_int(self.n_clusters, "n_clusters", "AutoCluster", 2)
        if not isinstance(self.candidates, Mapping) or not any(
            node is not None for node in self.candidates.values()
        ):
            raise ValueError(
                "The 'candidates' parameter of AutoCluster must be a non-empty mapping "
                f"{{name: config with _target_}}. Got {self.candidates!r} instead."
            )
        if self.criterion not in CRITERIA:
            raise ValueError(
                f"The 'criterion' parameter of AutoCluster must be one of {list(CRITERIA)}. "
                f"Got {self.criterion!r} instead."
            )
        seed = 0 if self.random_state is None else int(self.random_state)
        if n_samples is not None:
            for est in self._estimators(seed).values():
                check = getattr(est, "check_params", None)
                if check is not None:
                    try:
                        check(n_samples)
                    except ImportError:  # a missing extra: left out in fit
                        pass
        if self.random_state is None:
            return int(np.random.default_rng().integers(2**31 - 1))
        return int(self.random_state)

    def _estimators(self, seed: int) -> dict[str, Any]:
        assert self.candidates is not None
        return {  # a candidate set to null (model.candidates.NAME=null) is left out
            name: _build(name, dict(node), int(self.n_clusters), seed)
            for name, node in self.candidates.items()
            if node is not None
        }

    def fit(
        self,
        X: Any,
        y: object = None,
        pretrained_for: Callable[[Any], Any] | None = None,
        fitted_for: Callable[[Mapping[str, Any]], tuple[Any, np.ndarray] | None] | None = None,
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
        """
        X = np.asarray(X, dtype=np.float32)
        seed = self.check_params(X.shape[0])
        estimators = self._estimators(seed)
        pretrained: dict[str, tuple[Any, float]] = {}
        self.candidates_: dict[str, Any] = {}
        self.candidate_labels_: dict[str, np.ndarray] = {}
        self.candidate_seconds_: dict[str, float] = {}
        self.failed_: dict[str, str] = {}
        first_error: Exception | None = None
        self.reused_: list[str] = []
        for name, est in estimators.items():
            start = time.perf_counter()
            node = self.candidates[name]  # type: ignore[index]  # checked in check_params
            found = fitted_for(node) if fitted_for is not None else None
            if found is not None:
                self.candidates_[name], self.candidate_labels_[name] = found
                self.candidate_seconds_[name] = 0.0
                self.reused_.append(name)
                continue
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
        if not self.candidates_:
            assert first_error is not None
            raise first_error
        self.scores_ = agreement_scores(self.candidate_labels_)
        order = list(estimators)  # ties go to the first candidate listed
        self.chosen_ = max(self.scores_, key=lambda n: (self.scores_[n], -order.index(n)))
        ranked = sorted(self.scores_.items(), key=lambda kv: -kv[1])
        runner_up = f"; next {ranked[1][0]} ({ranked[1][1]:.3f})" if len(ranked) > 1 else ""
        self.reason_ = (
            f"{self.chosen_} agrees most with the other {len(ranked) - 1} candidates "
            f"(mean NMI {self.scores_[self.chosen_]:.3f}{runner_up})"
        )
        logger.info("auto: chose %s: %s", self.chosen_, self.reason_)
        self.labels_ = self.candidate_labels_[self.chosen_]
        self.n_features_in_ = X.shape[1]
        return self

    @property
    def best_estimator_(self) -> Any:
        """The chosen candidate, fitted."""
        check_is_fitted(self, "chosen_")
        return self.candidates_[self.chosen_]

    def predict(self, X: Any) -> np.ndarray:
        """The chosen candidate's assignment of new rows (when it can assign them)."""
        best = self.best_estimator_
        if not hasattr(best, "predict"):
            raise AttributeError(
                f"AutoCluster chose {self.chosen_}, which cannot assign new rows (no predict)."
            )
        return np.asarray(best.predict(X))

    @available_if(lambda self: hasattr(self.best_estimator_, "predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """The chosen candidate's soft assignment (when it has one)."""
        return np.asarray(self.best_estimator_.predict_proba(X))

    @available_if(lambda self: hasattr(self.best_estimator_, "transform"))
    def transform(self, X: Any) -> np.ndarray:
        """The chosen candidate's embedding (when it has one)."""
        return np.asarray(self.best_estimator_.transform(X))

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
            "criterion": self.criterion,
            "chosen": self.chosen_,
            "reason": self.reason_,
            "scores": {k: round(v, 4) for k, v in self.scores_.items()},
            "seconds": {k: round(v, 2) for k, v in self.candidate_seconds_.items()},
            "failed": dict(self.failed_),
            "reused": list(self.reused_),
        }
