"""VaDE (Jiang et al. 2017): variational deep embedding with a Gaussian-mixture prior."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from deepseg.cluster.baselines import GMMClusterer
from deepseg.cluster.deep import DeepClusterer
from deepseg.models.vade import VaDEModule
from deepseg.nn.modules import Autoencoder

logger = logging.getLogger(__name__)


class VaDE(DeepClusterer):
    """Variational Deep Embedding (Jiang et al. 2017).

    The shared skeleton: pretrain an autoencoder, embed, fit a diagonal GMM on the embedding,
    then train :class:`~deepseg.models.vade.VaDEModule` (a VAE whose prior is that mixture,
    learned jointly with the networks). ``labels_`` is VaDE's own assignment, the argmax of the
    responsibilities ``gamma = p(c | z)`` at the posterior mean; ``predict_proba`` returns
    ``gamma`` and ``transform`` the posterior means ``mu(x)``. The decoder is Gaussian with its
    variance fixed to the pretrained reconstruction MSE (see
    :class:`~deepseg.models.vade.VaDEModule` for this choice and for the posterior network).

    Args:
        n_clusters: number of mixture components.
        epochs: epochs of the clustering phase.
        batch_size: clustering-phase batch size.
        lr: Adam learning rate, decayed by 0.9 every 10 epochs as in the paper. The paper's
            0.002 multiplied the pretrained reconstruction error by 6-15 in the first epoch on
            digits (scrambling the initial clusters) and ended at an equal or worse loss than
            the default 0.0005, which fine-tunes the pretrained networks smoothly.
        autoencoder, pretrain, trainer: grouped options (see :mod:`deepseg.cluster.deep`).
        pretrained: an already trained Autoencoder to start from.
        encoder_from: a bundle whose autoencoder the fit starts from (no pretraining).
        freeze_encoder: keep the encoder (the posterior mean network) fixed; the prior,
            the variance head and the decoder still train.
        random_state: seed.

    Attributes:
        labels_: cluster of each training row, shape (n_samples,).
        init_gmm_: the diagonal GMM fitted on the pretrained embedding that initialised the
            prior (a :class:`~deepseg.cluster.baselines.GMMClusterer`).
        module_: the trained VaDEModule (prior parameters ``pi_logits``, ``mu_c``,
            ``logvar_c``).
        autoencoder_: the fine-tuned autoencoder; its encoder is the posterior mean network.
    """

    _module_class = VaDEModule

    def __init__(
        self,
        n_clusters: int = 8,
        epochs: int = 50,
        batch_size: int = 256,
        lr: float = 5e-4,
        autoencoder: Mapping[str, Any] | None = None,
        pretrain: Mapping[str, Any] | None = None,
        trainer: Mapping[str, Any] | None = None,
        pretrained: Autoencoder | None = None,
        encoder_from: str | None = None,
        freeze_encoder: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.autoencoder = autoencoder
        self.pretrain = pretrain
        self.trainer = trainer
        self.pretrained = pretrained
        self.encoder_from = encoder_from
        self.freeze_encoder = freeze_encoder
        self.random_state = random_state

    def _validate_params(self, n_samples: int) -> int:
        seed = super()._validate_params(n_samples)
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            low = 0 if name == "epochs" else 1
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ValueError(
                    f"The '{name}' parameter of VaDE must be an int in the range [{low}, inf). "
                    f"Got {value!r} instead."
                )
        lr = self.lr
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
            raise ValueError(
                f"The 'lr' parameter of VaDE must be a float in the range (0, inf). "
                f"Got {lr!r} instead."
            )
        return seed

    def _init_clusters(self, z: np.ndarray, seed: int) -> np.ndarray:
        """Fit the diagonal GMM that initialises the prior; return its means, of shape
        (n_clusters, latent_dim). Its variances and weights reach the module through
        ``_module_kwargs``, from ``init_gmm_``."""
        self.init_gmm_ = GMMClusterer(
            self.n_clusters, covariance_type="diag", n_init=3, random_state=seed
        ).fit(z)
        return self.init_gmm_.gmm_.means_.astype(np.float32)

    def _module_kwargs(self) -> dict[str, Any]:
        gmm = self.init_gmm_.gmm_
        return {
            "variances": torch.as_tensor(gmm.covariances_, dtype=torch.float32),
            "weights": torch.as_tensor(gmm.weights_, dtype=torch.float32),
            "lr": self.lr,
            "optimizer": "adam",
            "rec_weight": 0.0,
            "update_interval": 10**9,  # no whole-data statistics to refresh
            "batch_size": self.batch_size,
            "epochs": self.epochs,
        }
