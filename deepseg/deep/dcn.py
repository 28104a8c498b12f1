"""DCN (Yang et al. 2017): reconstruction plus a k-means loss with online centre updates; the
clustering-phase module and the estimator. The head is :class:`deepseg.nn.heads.NearestCenter`."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from deepseg.deep import params as P
from deepseg.deep.estimator import INIT, DeepClusterer
from deepseg.deep.skeleton import ClusteringModule
from deepseg.losses import kmeans_loss
from deepseg.nn.heads import NearestCenter


class DCNModule(ClusteringModule):
    """Each batch is assigned to its nearest centres; the loss pulls embeddings towards them;
    the centres then move towards their members with a per-centre step of 1 / count.

    Per-batch member sums and counts are reduced across processes, so every process applies the
    same centre update.

    Args:
        centers: initial centres of shape (n_clusters, latent_dim).
        cluster_weight: weight of the k-means term (``lambda / 2`` in the paper).
        **kwargs: see :class:`ClusteringModule` (``rec_weight`` is 1 in the paper).
    """

    centers: torch.Tensor
    counts: torch.Tensor

    def __init__(self, centers: torch.Tensor, cluster_weight: float = 0.05, **kwargs: Any):
        super().__init__(**kwargs)
        self.cluster_weight = cluster_weight
        self.register_buffer("centers", centers.clone().float())
        self.register_buffer("counts", torch.ones(centers.shape[0]))

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        # Hard assignments, expressed as one-hot "probabilities"
        labels = torch.cdist(z.float(), self.centers).argmin(dim=1)
        return torch.nn.functional.one_hot(labels, self.centers.shape[0]).float()

    def cluster_loss(self, z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            labels = torch.cdist(z.float(), self.centers).argmin(dim=1)
        loss = self.cluster_weight * kmeans_loss(z, self.centers, labels)
        self._update_centers(z.detach().float(), labels)
        return loss

    @torch.no_grad()
    def _update_centers(self, z: torch.Tensor, labels: torch.Tensor) -> None:
        k = self.centers.shape[0]
        sums = torch.zeros_like(self.centers).index_add_(0, labels, z)
        # (bincount would wait for the device: it sizes its output by the largest label)
        counts = z.new_zeros(k).index_add_(0, labels, z.new_ones(len(labels)))
        sums, counts = self.all_reduce_sum(sums), self.all_reduce_sum(counts)
        # Sequential 1/count steps over a batch's members, in closed form for their mean. The
        # centres without members keep their values through a where, not a boolean index: no
        # data-dependent shape, so no wait for the device (the arithmetic of the others is the
        # same, element for element)
        hit = (counts > 0).unsqueeze(1)
        self.counts += counts
        rate = (counts / self.counts).unsqueeze(1)
        means = sums / counts.clamp_min(1.0).unsqueeze(1)
        self.centers.copy_(
            torch.where(hit, (1 - rate) * self.centers + rate * means, self.centers)
        )


@dataclasses.dataclass(eq=False, repr=False)
class DCN(DeepClusterer):
    """Deep Clustering Network (Yang et al. 2017).

    Args:
        n_clusters: number of clusters.
        cluster_weight: weight of the k-means loss (lambda / 2).
        rec_weight: weight of the reconstruction loss.
        epochs: epochs of the clustering phase.
        batch_size: clustering-phase batch size.
        lr: Adam learning rate.
        init: first centres, "kmeans" or "umap" (see :class:`~deepseg.deep.dec.DEC`).
        autoencoder, pretrain, trainer, pretrained, encoder_from, freeze_encoder, random_state:
            the options every deep method shares (see :mod:`deepseg.deep.estimator`).
    """

    _module_class = DCNModule

    cluster_weight: float = P.param(0.05, P.NON_NEGATIVE_FLOAT)
    rec_weight: float = P.param(1.0, P.NON_NEGATIVE_FLOAT)
    epochs: int = P.param(50, P.NON_NEGATIVE_INT)
    batch_size: int = P.param(256, P.POSITIVE_INT)
    lr: float = P.param(1e-4, P.POSITIVE_FLOAT)
    init: str = P.param("kmeans", INIT)

    def _module_kwargs(self) -> dict[str, Any]:
        return {
            "cluster_weight": self.cluster_weight,
            "rec_weight": self.rec_weight,
            "lr": self.lr,
            "optimizer": "adam",
            "update_interval": 10**9,  # DCN updates its centres every step, in cluster_loss
            "batch_size": self.batch_size,
            "epochs": self.epochs,
        }

    def _head(self) -> NearestCenter:
        assert self.module_ is not None
        return NearestCenter(self.module_.centers.detach().cpu().float())
