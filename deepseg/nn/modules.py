"""MLP autoencoders, input corruption, the batched embedding loop and the mixture posterior.

Modules keep their constructor arguments in ``config`` so that a checkpoint can store them next
to the ``state_dict`` and be rebuilt without hand-written architecture code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from deepseg import options as declared

#: the activations by the names :data:`deepseg.options.ACTIVATIONS` declares
ACTIVATIONS = dict(
    zip(declared.ACTIVATIONS, (nn.ReLU, nn.GELU, nn.ELU, nn.SiLU, nn.Tanh), strict=True)
)
NORMS = declared.NORMS
NOISE_KINDS = declared.NOISE_KINDS
_LOG_2PI = math.log(2.0 * math.pi)


def _check_choice(value: str, name: str, options: Sequence[str]) -> None:
    if value not in options:
        raise ValueError(f"The '{name}' parameter must be one of {list(options)}. Got {value!r}.")


class MLP(nn.Sequential):
    """Linear layers with activation, optional norm and dropout between them.

    Args:
        dims: layer widths, input first: ``[d_in, h1, ..., d_out]``.
        activation: activation name (relu, gelu, elu, silu, tanh).
        norm: "none", "batch" or "layer", applied after each hidden linear layer.
        dropout: dropout after each hidden activation.
        last_activation: also apply the activation (and norm) after the last layer.
    """

    def __init__(
        self,
        dims: Sequence[int],
        activation: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
        last_activation: bool = False,
    ) -> None:
        _check_choice(activation, "activation", list(ACTIVATIONS))
        _check_choice(norm, "norm", NORMS)
        if len(dims) < 2 or any(int(d) < 1 for d in dims):
            raise ValueError(f"MLP dims must be at least two positive widths. Got {list(dims)}.")
        layers: list[nn.Module] = []
        n = len(dims) - 1
        for i in range(n):
            layers.append(nn.Linear(int(dims[i]), int(dims[i + 1])))
            if i < n - 1 or last_activation:
                if norm == "batch":
                    layers.append(nn.BatchNorm1d(int(dims[i + 1])))
                elif norm == "layer":
                    layers.append(nn.LayerNorm(int(dims[i + 1])))
                layers.append(ACTIVATIONS[activation]())
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


class Autoencoder(nn.Module):
    """A symmetric MLP autoencoder: d_in -> hidden... -> latent -> ...hidden -> d_in.

    Args:
        input_dim: number of input features.
        hidden_dims: encoder widths; the decoder mirrors them.
        latent_dim: embedding size.
        activation: activation name.
        norm: "none", "batch" or "layer".
        dropout: dropout in hidden layers.

    Shapes:
        x: (batch, input_dim) -> z: (batch, latent_dim) -> x_hat: (batch, input_dim)
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (500, 500, 2000),
        latent_dim: int = 10,
        activation: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = [int(h) for h in hidden_dims]
        self.config: dict[str, Any] = {
            "input_dim": int(input_dim),
            "hidden_dims": hidden,
            "latent_dim": int(latent_dim),
            "activation": activation,
            "norm": norm,
            "dropout": float(dropout),
        }
        self.encoder = MLP([input_dim, *hidden, latent_dim], activation, norm, dropout)
        self.decoder = MLP([latent_dim, *reversed(hidden), input_dim], activation, norm, dropout)

    @property
    def latent_dim(self) -> int:
        return int(self.config["latent_dim"])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return z, self.decoder(z)


def corrupt(
    x: torch.Tensor,
    kind: str = "none",
    level: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Denoising-autoencoder input corruption.

    Args:
        x: batch of shape (batch, n_features).
        kind: "none"; "gaussian" (add N(0, level^2)); "mask" (zero a share ``level`` of the
            entries); "swap" (replace a share ``level`` of the entries with the same feature of
            another row in the batch: tabular swap noise, which keeps every feature's marginal).
        level: noise standard deviation or share of corrupted entries.
        generator: optional torch generator for reproducibility.

    Returns:
        A corrupted copy of ``x`` (``x`` itself when kind is "none" or level is 0).
    """
    _check_choice(kind, "noise", NOISE_KINDS)
    if kind == "none" or level <= 0:
        return x
    if kind == "gaussian":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + level * noise
    hit = torch.rand(x.shape, generator=generator, device=x.device) < level
    if kind == "mask":
        return x.masked_fill(hit, 0.0)
    rows = torch.randint(0, x.shape[0], x.shape, generator=generator, device=x.device)
    swapped = torch.gather(x, 0, rows)
    return torch.where(hit, swapped, x)


def mixture_log_joint(
    z: torch.Tensor, pi_logits: torch.Tensor, mu_c: torch.Tensor, logvar_c: torch.Tensor
) -> torch.Tensor:
    """``log p(c) + log N(z | mu_c, diag(sigma2_c))`` for every point and component.

    Args:
        z: embeddings of shape (n, latent_dim).
        pi_logits: unnormalised log mixture weights of shape (n_clusters,).
        mu_c: component means of shape (n_clusters, latent_dim).
        logvar_c: component log-variances ``log sigma2_c`` of shape (n_clusters, latent_dim).

    Returns:
        Log joint densities of shape (n, n_clusters).

    >>> out = mixture_log_joint(torch.zeros(1, 1), torch.zeros(2), torch.zeros(2, 1),
    ...                         torch.zeros(2, 1))
    >>> [round(v, 4) for v in out[0].tolist()]  # log(1/2) + log N(0 | 0, 1)
    [-1.6121, -1.6121]
    """
    z = z.float().unsqueeze(1)  # (n, 1, d) against (k, d)
    log_pdf = -0.5 * (_LOG_2PI + logvar_c + (z - mu_c).pow(2) / logvar_c.exp()).sum(dim=2)
    return torch.log_softmax(pi_logits, dim=0) + log_pdf


def mixture_responsibilities(
    z: torch.Tensor, pi_logits: torch.Tensor, mu_c: torch.Tensor, logvar_c: torch.Tensor
) -> torch.Tensor:
    """VaDE's cluster posterior ``gamma_c = p(c | z)``, of shape (n, n_clusters).

    Arguments as in :func:`mixture_log_joint`.

    >>> gamma = mixture_responsibilities(torch.tensor([[0.0], [3.0]]), torch.zeros(2),
    ...                                  torch.tensor([[0.0], [3.0]]), torch.zeros(2, 1))
    >>> [[round(v, 3) for v in row] for row in gamma.tolist()]
    [[0.989, 0.011], [0.011, 0.989]]
    """
    return torch.softmax(mixture_log_joint(z, pi_logits, mu_c, logvar_c), dim=1)


def _device_of(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def embed(model: nn.Module, X: Any, batch_size: int = 4096) -> Any:
    """Encoder outputs for X, batched, without gradients: the one embedding loop of deepseg.

    Args:
        model: an :class:`Autoencoder` (its ``encode`` is used) or any encoder module.
        X: array of shape (n_samples, n_features).
        batch_size: rows per forward pass.

    Returns:
        A float32 numpy array of shape (n_samples, latent_dim).
    """
    import numpy as np

    encode = getattr(model, "encode", model)
    was_training = model.training
    model.eval()
    device = _device_of(model)
    X_t = torch.as_tensor(np.asarray(X, dtype=np.float32))
    if len(X_t) == 0:
        out = [encode(X_t.to(device)).float().cpu()]
    else:
        out = [encode(chunk.to(device)).float().cpu() for chunk in torch.split(X_t, batch_size)]
    model.train(was_training)
    return torch.cat(out).numpy()
