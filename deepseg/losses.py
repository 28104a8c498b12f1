"""Loss functions and the statistics they need, as pure functions on tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared reconstruction error, averaged over features and the batch.

    >>> float(reconstruction_loss(torch.ones(2, 3), torch.zeros(2, 3)))
    1.0
    """
    return F.mse_loss(x_hat.float(), x.float())


def target_distribution(q: torch.Tensor, frequencies: torch.Tensor | None = None) -> torch.Tensor:
    """DEC's sharpened target ``p_ij = (q_ij^2 / f_j) / sum_k (q_ik^2 / f_k)``.

    Args:
        q: soft assignments of shape (n_samples, n_clusters).
        frequencies: soft cluster frequencies ``f_j = sum_i q_ij`` over the whole data, of shape
            (n_clusters,). Pass them when ``q`` is a shard of the data (the frequencies must be
            summed over every shard); by default they are computed from ``q``.

    >>> p = target_distribution(torch.tensor([[0.6, 0.4], [0.5, 0.5]]))
    >>> [round(v, 3) for v in p[0].tolist()]
    [0.643, 0.357]
    """
    f = q.sum(dim=0) if frequencies is None else frequencies
    weight = q.pow(2) / f.clamp_min(1e-12)
    return weight / weight.sum(dim=1, keepdim=True)


def kl_clustering_loss(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """KL(P || Q), summed over clusters and averaged over the batch.

    >>> float(kl_clustering_loss(torch.tensor([[0.5, 0.5]]), torch.tensor([[0.5, 0.5]])))
    0.0
    """
    q = q.float().clamp_min(1e-12)
    return (p * (p.clamp_min(1e-12).log() - q.log())).sum(dim=1).mean()


def kmeans_loss(z: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """DCN's k-means term: mean squared distance of each embedding to its assigned centre.

    >>> float(kmeans_loss(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2), torch.tensor([0])))
    1.0
    """
    return (z.float() - centers[labels]).pow(2).sum(dim=1).mean()
