"""DEC (Xie et al. 2016) and IDEC (Guo et al. 2017): the clustering-phase module and the
estimators. The assignment head is :class:`deepseg.nn.heads.StudentTAssignment`."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

import torch

from deepseg.deep import params as P
from deepseg.deep.estimator import INIT, DeepClusterer
from deepseg.deep.skeleton import ClusteringModule
from deepseg.losses import kl_clustering_loss, target_distribution
from deepseg.nn.heads import StudentTAssignment


class DECModule(ClusteringModule):
    """Student-t soft assignment trained towards its own sharpened target distribution.

    The target ``p`` is recomputed over the whole data every ``update_interval`` steps (the soft
    cluster frequencies are summed over every process); training stops when fewer than ``tol``
    of the labels changed since the previous update. IDEC is this module with ``rec_weight`` > 0.

    Args:
        centers: initial centres of shape (n_clusters, latent_dim) (k-means on the embedding).
        alpha: Student-t degrees of freedom.
        tol: label-change share below which training stops.
        **kwargs: see :class:`ClusteringModule`.
    """

    p: torch.Tensor
    last_labels: torch.Tensor

    def __init__(
        self, centers: torch.Tensor, alpha: float = 1.0, tol: float = 1e-3, **kwargs: Any
    ):
        super().__init__(**kwargs)
        self.head = StudentTAssignment(centers, alpha)
        self.tol = tol
        n = self.X.shape[0]
        self.register_buffer("p", torch.zeros(n, centers.shape[0]), persistent=False)
        self.register_buffer(
            "last_labels", torch.full((n,), -1, dtype=torch.long), persistent=False
        )
        self.label_change: float | None = None

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z)

    def cluster_loss(self, z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return kl_clustering_loss(self.head(z), self.p[index])

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            **super().checkpoint_state(),
            "p": self.p.detach().cpu().clone(),
            "last_labels": self.last_labels.detach().cpu().clone(),
            "label_change": self.label_change,
        }

    def load_checkpoint_state(self, state: Mapping[str, Any]) -> None:
        super().load_checkpoint_state(state)
        if "p" in state:
            self.p.copy_(state["p"])
            self.last_labels.copy_(state["last_labels"])
        self.label_change = state.get("label_change")

    @torch.no_grad()
    def refresh(self) -> bool:
        q = self.head(self.embed_rows())
        frequencies = self.all_reduce_sum(q.sum(dim=0))
        self.p[self.shard] = target_distribution(q, frequencies)
        labels = q.argmax(dim=1)
        previous = self.last_labels[self.shard]
        changed = self.all_reduce_sum((labels != previous).sum().float())
        total = self.all_reduce_sum(torch.tensor(float(len(labels)), device=q.device))
        first = bool((previous < 0).all())
        self.last_labels[self.shard] = labels
        if first:
            return False
        self.label_change = float(changed / total)
        if self.metrics_are_read():
            self.log("train/label_change", self.label_change)
        return self.label_change < self.tol


OPTIMIZER = P.Options(("sgd", "adam"))


@dataclasses.dataclass(eq=False, repr=False)
class DEC(DeepClusterer):
    """Deep Embedded Clustering (Xie et al. 2016).

    Args:
        n_clusters: number of clusters.
        alpha: Student-t degrees of freedom.
        update_interval: steps between recomputations of the target distribution.
        tol: stop when fewer than this share of labels changed between two updates.
        epochs: maximum epochs of the clustering phase.
        batch_size: clustering-phase batch size.
        lr: clustering-phase learning rate.
        optimizer: "sgd" (momentum 0.9, as in the paper) or "adam".
        rec_weight: weight of the reconstruction loss against the clustering loss (0 for DEC;
            IDEC uses 10).
        init: first centres: "kmeans" (K-Means in the embedding, as in the paper) or "umap"
            (means of the clusters that UMAP + a Gaussian mixture find in the embedding, as
            N2D).
        autoencoder, pretrain, trainer, pretrained, encoder_from, freeze_encoder, random_state:
            the options every deep method shares (see :mod:`deepseg.deep.estimator`).
    """

    _module_class = DECModule

    alpha: float = P.param(1.0, P.POSITIVE_FLOAT)
    update_interval: int = P.param(140, P.POSITIVE_INT)
    tol: float = P.param(1e-3, P.NON_NEGATIVE_FLOAT)
    epochs: int = P.param(50, P.NON_NEGATIVE_INT)
    batch_size: int = P.param(256, P.POSITIVE_INT)
    lr: float = P.param(0.01, P.POSITIVE_FLOAT)
    optimizer: str = P.param("sgd", OPTIMIZER)
    rec_weight: float = P.param(0.0, P.NON_NEGATIVE_FLOAT)
    init: str = P.param("kmeans", INIT)

    def _module_kwargs(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "tol": self.tol,
            "update_interval": self.update_interval,
            "lr": self.lr,
            "optimizer": self.optimizer,
            "rec_weight": self.rec_weight,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
        }

    def _head(self) -> StudentTAssignment:
        assert self.module_ is not None
        head = copy.deepcopy(self.module_.head).cpu()
        head.centers.requires_grad_(False)
        return head


@dataclasses.dataclass(eq=False, repr=False)
class IDEC(DEC):
    """Improved DEC (Guo et al. 2017): DEC plus the reconstruction loss, which keeps the
    embedding's local structure. Same arguments as :class:`DEC`, with ``rec_weight=10`` and
    Adam at ``lr=0.001`` by default.

    The paper minimises ``L_rec + gamma * L_cluster`` with ``gamma = 0.1``; deepseg's step
    minimises ``L_cluster + rec_weight * L_rec``, so the paper's balance is ``rec_weight = 1 /
    gamma = 10`` (the overall factor of 10 is immaterial to Adam)."""

    lr: float = P.param(1e-3, P.POSITIVE_FLOAT)
    optimizer: str = P.param("adam", OPTIMIZER)
    rec_weight: float = P.param(10.0, P.NON_NEGATIVE_FLOAT)
