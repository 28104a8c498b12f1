"""DEC (Xie et al. 2016) and IDEC (Guo et al. 2017) as clustering-phase modules."""

from __future__ import annotations

from typing import Any

import torch

from deepseg.losses import kl_clustering_loss, target_distribution
from deepseg.models.base import ClusteringModule
from deepseg.nn.modules import StudentTAssignment


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
        self.head = StudentTAssignment(centers.shape[0], centers.shape[1], alpha, centers)
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
        self.log("train/label_change", self.label_change)
        return self.label_change < self.tol
