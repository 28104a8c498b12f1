"""Assignment heads and fixed encoders: pure torch, exportable, rebuilt from their own state.

A head maps embeddings ``z`` of shape (n, latent_dim) to soft assignments of shape
(n, n_clusters) (one-hot for hard methods). Every head and fixed encoder here carries what a
bundle needs to rebuild it, the way :class:`~deepseg.nn.modules.Autoencoder` does:

* ``kind``: its name in :data:`HEADS` / :data:`ENCODERS`;
* ``config``: its non-tensor constructor arguments (JSON values);
* ``tensors()``: its tensors by name;
* ``from_state(config, tensors)``: the module again, from those two;
* ``check_state(config, tensors)``: whether a stored config agrees with the stored tensors
  (every tensor present, each numeric constructor argument equal to its stored copy), and the
  number of clusters they hold;
* ``centers_``: the cluster centres (or mixture means) in the space it assigns in, if any.

So a bundle only writes and reads manifests and tensors; nothing in it is method-specific. The
heads live here rather than beside their methods in :mod:`deepseg.deep` because loading a bundle
must not import Lightning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from deepseg.nn.modules import mixture_responsibilities

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


class Head(nn.Module):
    """Base of the heads and fixed encoders: the rebuild protocol (see the module docstring)."""

    kind: ClassVar[str] = ""
    _tensor_names: ClassVar[tuple[str, ...]] = ()
    #: The tensor holding the cluster centres (None: the head has none).
    _centers_name: ClassVar[str | None] = None

    @property
    def config(self) -> dict[str, Any]:
        return {}

    @property
    def centers_(self) -> torch.Tensor | None:
        """Cluster centres / mixture means, shape (n_clusters, dim), or None."""
        return None if self._centers_name is None else getattr(self, self._centers_name)

    def stored_tensors(self) -> dict[str, torch.Tensor]:
        """:meth:`tensors` plus a float64 copy of each numeric constructor argument (e.g. DEC's
        ``alpha``): stored beside the weights, under their checksum, so :meth:`check_state`
        can refuse a config that was edited after it was written."""
        out = self.tensors()
        for key, value in self.config.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = torch.tensor([float(value)], dtype=torch.float64)
        return out

    @classmethod
    def check_state(cls, config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> int:
        """Check a stored config against the stored tensors (:meth:`stored_tensors`).

        Args:
            config: the head's stored config (its ``type`` and constructor arguments).
            tensors: the stored tensors by name.

        Returns:
            The number of clusters the tensors hold (rows of the first tensor).

        Raises:
            KeyError: naming a missing tensor.
            ValueError: when a numeric argument differs from its stored copy.
        """
        for name in cls._tensor_names:
            if name not in tensors:
                raise KeyError(name)
        for name, tensor in tensors.items():
            if name in cls._tensor_names:
                continue
            stored = float(tensor.reshape(-1)[0])
            claimed = config.get(name)
            if (
                isinstance(claimed, bool)
                or not isinstance(claimed, int | float)
                or not math.isclose(claimed, stored, rel_tol=1e-12)
            ):
                raise ValueError(
                    f"{name}={claimed!r} does not match the weights' {name} {stored!r}"
                )
        return int(tensors[cls._tensor_names[0]].shape[0])

    @property
    def n_clusters(self) -> int:
        """Number of clusters: the first dimension of the first tensor."""
        return int(getattr(self, self._tensor_names[0]).shape[0])

    def tensors(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name).detach().cpu() for name in self._tensor_names}

    @classmethod
    def from_state(cls, config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> Head:
        kwargs = {k: v for k, v in config.items() if k != "type"}
        return cls(**{name: tensors[name] for name in cls._tensor_names}, **kwargs)


class StudentTAssignment(Head):
    """DEC's soft assignment: a Student-t kernel between embeddings and learnable centres.

    ``q_ij = (1 + |z_i - mu_j|^2 / alpha)^(-(alpha+1)/2)``, normalised over clusters j.

    Args:
        centers: initial centres of shape (n_clusters, latent_dim).
        alpha: degrees of freedom of the Student-t kernel.
    """

    kind = "student_t"
    _tensor_names = ("centers",)
    _centers_name = "centers"

    def __init__(self, centers: torch.Tensor, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.centers = nn.Parameter(centers.detach().clone().float())

    @property
    def config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        dist = torch.cdist(z.float(), self.centers).pow(2)
        logits = -(self.alpha + 1.0) / 2.0 * torch.log1p(dist / self.alpha)
        return torch.softmax(logits, dim=1)


class NearestCenter(Head):
    """Hard assignment to the nearest centre, as one-hot "probabilities".

    Args:
        centers: centres of shape (n_clusters, dim); their dtype is the one distances use.
    """

    kind = "nearest_center"
    _tensor_names = ("centers",)
    _centers_name = "centers"
    centers: torch.Tensor

    def __init__(self, centers: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("centers", centers.detach().clone())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        labels = torch.cdist(z.to(self.centers.dtype), self.centers).argmin(dim=1)
        return nn.functional.one_hot(labels, self.centers.shape[0]).float()


class GaussianMixtureHead(Head):
    """Responsibilities of a Gaussian mixture, in float64, from means, precision Cholesky
    factors (scikit-learn's ``precisions_cholesky_``) and weights.

    Args:
        means: (k, d).
        precisions_cholesky: (k, d, d) full, (d, d) tied, (k, d) diag or (k,) spherical.
        weights: (k,).
        covariances: scikit-learn's ``covariances_`` (kept for profiles and drift; not used to
            assign).
        covariance_type: "full", "tied", "diag" or "spherical".
    """

    kind = "gmm"
    _tensor_names = ("means", "precisions_cholesky", "weights", "covariances")
    _centers_name = "means"
    means: torch.Tensor
    precisions_cholesky: torch.Tensor
    weights: torch.Tensor
    covariances: torch.Tensor
    log_norm: torch.Tensor

    def __init__(
        self,
        means: torch.Tensor,
        precisions_cholesky: torch.Tensor,
        weights: torch.Tensor,
        covariances: torch.Tensor,
        covariance_type: str,
    ) -> None:
        super().__init__()
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"The 'covariance_type' of a Gaussian mixture head must be one of "
                f"{list(COVARIANCE_TYPES)}. Got {covariance_type!r} instead."
            )
        self.covariance_type = covariance_type
        self.register_buffer("means", means.detach().double())
        self.register_buffer("precisions_cholesky", precisions_cholesky.detach().double())
        self.register_buffer("weights", weights.detach().double())
        self.register_buffer("covariances", covariances.detach().double())
        prec = self.precisions_cholesky
        if covariance_type == "full":
            log_det = torch.diagonal(prec, dim1=1, dim2=2).log().sum(dim=1)
        elif covariance_type == "tied":
            log_det = torch.diagonal(prec).log().sum().expand(means.shape[0]).clone()
        elif covariance_type == "diag":
            log_det = prec.log().sum(dim=1)
        else:
            log_det = means.shape[1] * prec.log()
        # constant: log|det L_k| plus log w_k, computed once (and kept out of exported graphs);
        # derived, so not part of the stored state
        self.register_buffer("log_norm", log_det + self.weights.log(), persistent=False)

    @classmethod
    def from_mixture(cls, gmm: Any) -> GaussianMixtureHead:
        """The head of a fitted scikit-learn ``GaussianMixture``."""

        def t(value: Any) -> torch.Tensor:
            return torch.as_tensor(value).detach().clone().contiguous()

        return cls(
            t(gmm.means_),
            t(gmm.precisions_cholesky_),
            t(gmm.weights_),
            t(gmm.covariances_),
            str(gmm.covariance_type),
        )

    @property
    def config(self) -> dict[str, Any]:
        return {"covariance_type": self.covariance_type}

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Weighted log densities ``log w_k + log N(z | mu_k, Sigma_k)``, shape (n, k)."""
        x = z.double()
        d = self.means.shape[1]
        prec = self.precisions_cholesky
        if self.covariance_type == "full":
            # (k, n, d): every point through every component's factor
            y = x.unsqueeze(0) @ prec - self.means.unsqueeze(1) @ prec
            sq = y.pow(2).sum(dim=2).T
        elif self.covariance_type == "tied":
            y = (x @ prec).unsqueeze(1) - (self.means @ prec).unsqueeze(0)
            sq = y.pow(2).sum(dim=2)
        elif self.covariance_type == "diag":
            y = (x.unsqueeze(1) - self.means.unsqueeze(0)) * prec.unsqueeze(0)
            sq = y.pow(2).sum(dim=2)
        else:
            y = (x.unsqueeze(1) - self.means.unsqueeze(0)) * prec.view(1, -1, 1)
            sq = y.pow(2).sum(dim=2)
        return -0.5 * (d * math.log(2 * math.pi) + sq) + self.log_norm

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.log_prob(z), dim=1).float()


class MixturePosterior(Head):
    """VaDE's cluster posterior ``p(c | z)`` from the learned Gaussian-mixture prior.

    Args:
        pi_logits: unnormalised log mixture weights of shape (n_clusters,).
        mu_c: component means of shape (n_clusters, latent_dim).
        logvar_c: component log-variances of shape (n_clusters, latent_dim).
    """

    kind = "vade"
    _tensor_names = ("pi_logits", "mu_c", "logvar_c")
    _centers_name = "mu_c"
    pi_logits: torch.Tensor
    mu_c: torch.Tensor
    logvar_c: torch.Tensor

    def __init__(
        self, pi_logits: torch.Tensor, mu_c: torch.Tensor, logvar_c: torch.Tensor
    ) -> None:
        super().__init__()
        self.register_buffer("pi_logits", pi_logits.detach().clone())
        self.register_buffer("mu_c", mu_c.detach().clone())
        self.register_buffer("logvar_c", logvar_c.detach().clone())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return mixture_responsibilities(z, self.pi_logits, self.mu_c, self.logvar_c)


class LinearProjection(Head):
    """PCA's transform as a fixed encoder: ``x @ W.T - mean @ W.T`` (scikit-learn's order).

    Args:
        mean: the training mean of shape (n_features,).
        components: the projection of shape (n_components, n_features).
    """

    kind = "linear"
    _tensor_names = ("mean", "components")
    mean: torch.Tensor
    components: torch.Tensor
    offset: torch.Tensor

    def __init__(self, mean: torch.Tensor, components: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("components", components.detach().clone())
        self.register_buffer("offset", mean.reshape(1, -1) @ components.T, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.components.dtype) @ self.components.T - self.offset


class AssignmentNet(nn.Module):
    """Encoder plus assignment head: ``x -> (z, proba)``; what export writes out."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return z, self.head(z)


#: Assignment heads by ``kind``.
HEADS: dict[str, type[Head]] = {
    cls.kind: cls
    for cls in (StudentTAssignment, NearestCenter, GaussianMixtureHead, MixturePosterior)
}
#: Fixed (non-trained) encoders by ``kind``; "autoencoder" and "identity" are the other kinds.
ENCODERS: dict[str, type[Head]] = {LinearProjection.kind: LinearProjection}
