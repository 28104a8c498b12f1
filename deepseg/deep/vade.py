"""VaDE (Jiang et al. 2017): a variational autoencoder with a Gaussian-mixture prior.

The generative model is ``c ~ Cat(pi)``, ``z | c ~ N(mu_c, diag(sigma2_c))``,
``x | z ~ N(f(z), sigma2_x I)``: a Gaussian decoder, since deepseg's features are real-valued
(the paper used a Bernoulli decoder on binarised MNIST). The approximate posterior is
``q(z, c | x) = q(z | x) q(c | x)`` with ``q(z | x) = N(mu(x), diag(sigma2(x)))`` and
``q(c | x)`` set to the responsibilities ``gamma_c = p(c | z)`` at a sample of ``q(z | x)``.

The loss pieces are pure functions on tensors, here rather than in :mod:`deepseg.losses`
because only VaDE uses them. The mixture posterior lives in :mod:`deepseg.nn.modules` and the head
in :mod:`deepseg.nn.heads` (:class:`~deepseg.nn.heads.MixturePosterior`), where bundles read them
without importing Lightning.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from deepseg.baselines import GMMClusterer
from deepseg.deep import params as P
from deepseg.deep.estimator import DeepClusterer
from deepseg.deep.skeleton import ClusteringModule
from deepseg.losses import reconstruction_loss
from deepseg.nn.heads import MixturePosterior
from deepseg.nn.modules import mixture_responsibilities

logger = logging.getLogger(__name__)


def vade_kl(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    gamma: torch.Tensor,
    pi_logits: torch.Tensor,
    mu_c: torch.Tensor,
    logvar_c: torch.Tensor,
) -> torch.Tensor:
    """``KL(q(z, c | x) || p(z, c))`` in closed form (the paper's ELBO without its likelihood
    term), averaged over the batch.

    With ``q(z | x) = N(mu, diag(sigma2))`` and ``q(c | x) = gamma``::

        KL = 1/2 sum_c gamma_c sum_j [log sigma2_cj + (sigma2_j + (mu_j - mu_cj)^2) / sigma2_cj]
             - 1/2 sum_j (1 + log sigma2_j) + sum_c gamma_c (log gamma_c - log pi_c)

    Args:
        mu: posterior means of shape (n, latent_dim).
        logvar: posterior log-variances of shape (n, latent_dim).
        gamma: responsibilities ``q(c | x)`` of shape (n, n_clusters).
        pi_logits: unnormalised log mixture weights of shape (n_clusters,).
        mu_c: component means of shape (n_clusters, latent_dim).
        logvar_c: component log-variances of shape (n_clusters, latent_dim).

    >>> # q equal to the prior's only component: nothing to pay
    >>> float(vade_kl(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 1), torch.zeros(1),
    ...               torch.zeros(1, 3), torch.zeros(1, 3)))
    0.0
    >>> # one unit away from the mean in one dimension: 1/2
    >>> float(vade_kl(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2), torch.ones(1, 1),
    ...               torch.zeros(1), torch.zeros(1, 2), torch.zeros(1, 2)))
    0.5
    """
    mu, logvar, gamma = mu.float(), logvar.float(), gamma.float()
    var_c = logvar_c.exp()  # (k, d)
    diff2 = (mu.unsqueeze(1) - mu_c).pow(2)  # (n, k, d)
    per_component = (logvar_c + (logvar.exp().unsqueeze(1) + diff2) / var_c).sum(dim=2)
    log_pi = torch.log_softmax(pi_logits, dim=0)
    log_gamma = gamma.clamp_min(1e-12).log()
    kl = (
        0.5 * (gamma * per_component).sum(dim=1)
        - 0.5 * (1.0 + logvar).sum(dim=1)
        + (gamma * (log_gamma - log_pi)).sum(dim=1)
    )
    return kl.mean()


class VaDEModule(ClusteringModule):
    """VaDE's clustering phase: maximise the ELBO of a VAE with a Gaussian-mixture prior.

    Posterior network: the pretrained autoencoder's encoder is the mean network ``mu(x)`` (so
    the estimator's ``transform`` returns posterior means), and a linear layer on the mean,
    ``log sigma2(x) = W mu(x) + b``, gives the log-variance. The paper branches both heads off
    the encoder's last hidden layer; branching off the mean instead keeps the shared training
    step (which encodes once) and still makes the variance a learned function of x. ``W`` starts
    at zero and ``b`` at the log of 1% of the mixture's mean variance in each dimension, so
    sampling starts close to the pretrained deterministic encoder.

    The prior ``(pi, mu_c, sigma2_c)`` is learned with the networks, parametrised as logits and
    log-variances, and initialised from a diagonal GMM fitted on the pretrained embedding.

    Loss per step, from one reparametrised sample ``z = mu + sigma * eps`` per point: the
    decoder's Gaussian negative log-likelihood, ``|x - x_hat|^2 / (2 sigma2_x)`` summed over
    features, plus :func:`vade_kl`. The decoder variance ``sigma2_x`` is fixed for the phase;
    by default it is the pretrained autoencoder's reconstruction MSE, which puts the likelihood
    on the scale of the data (with ``sigma2_x = 1`` on features scaled to [0, 1], as digits
    are, the KL term dominated and VaDE merged the clusters: ACC fell from 0.81 at
    initialisation to 0.30). Adam's learning rate decays by 0.9 every 10 epochs, as in the
    paper.

    Args:
        centers: initial component means of shape (n_clusters, latent_dim).
        variances: initial component variances of shape (n_clusters, latent_dim).
        weights: initial mixture weights of shape (n_clusters,).
        obs_var: the decoder variance ``sigma2_x``; None estimates it at the start of the fit
            as the autoencoder's mean squared reconstruction error over the data.
        lr_decay: multiplicative learning-rate decay applied every ``lr_decay_epochs``.
        lr_decay_epochs: epochs between learning-rate decays.
        **kwargs: see :class:`ClusteringModule` (``rec_weight`` must stay 0: the ELBO holds
            its own reconstruction term).
    """

    def __init__(
        self,
        centers: torch.Tensor,
        variances: torch.Tensor,
        weights: torch.Tensor,
        obs_var: float | None = None,
        lr_decay: float = 0.9,
        lr_decay_epochs: int = 10,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("rec_weight", 0.0) != 0.0:
            raise ValueError(
                "VaDEModule's ELBO holds its own reconstruction term; 'rec_weight' must be 0. "
                f"Got {kwargs['rec_weight']!r}."
            )
        super().__init__(**kwargs)
        # The shared step freezes the decoder when rec_weight is 0; VaDE's likelihood term
        # trains it
        self.autoencoder.decoder.requires_grad_(True)
        k, d = centers.shape
        if variances.shape != (k, d) or weights.shape != (k,):
            raise ValueError(
                f"VaDEModule expects variances of shape {(k, d)} and weights of shape {(k,)}; "
                f"got {tuple(variances.shape)} and {tuple(weights.shape)}."
            )
        variances = variances.float().clamp_min(1e-6)
        self.pi_logits = nn.Parameter(weights.float().clamp_min(1e-6).log())
        self.mu_c = nn.Parameter(centers.clone().float())
        self.logvar_c = nn.Parameter(variances.log())
        self.logvar_head = nn.Linear(d, d)
        with torch.no_grad():
            self.logvar_head.weight.zero_()
            self.logvar_head.bias.copy_((0.01 * variances.mean(dim=0)).log())
        if obs_var is not None and not obs_var > 0:
            raise ValueError(f"The 'obs_var' must be > 0 or None. Got {obs_var!r}.")
        self.obs_var = obs_var
        self.sigma2_x = 1.0 if obs_var is None else float(obs_var)
        self._sigma2_x_restored = False  # set by a checkpoint (load_checkpoint_state)
        self.lr_decay = lr_decay
        self.lr_decay_epochs = lr_decay_epochs

    def checkpoint_state(self) -> dict[str, Any]:
        return {**super().checkpoint_state(), "sigma2_x": self.sigma2_x}

    def load_checkpoint_state(self, state: Mapping[str, Any]) -> None:
        super().load_checkpoint_state(state)
        if "sigma2_x" in state:
            # the pretrained network's MSE, not the resumed one's
            self.sigma2_x = float(state["sigma2_x"])
            self._sigma2_x_restored = True

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.obs_var is None and not self._sigma2_x_restored:
            self.sigma2_x = self.reconstruction_mse()
            logger.info(
                "VaDE decoder variance %.4g: the pretrained reconstruction MSE", self.sigma2_x
            )

    @torch.no_grad()
    def reconstruction_mse(self) -> float:
        """Mean squared reconstruction error of the autoencoder over the data (every shard)."""
        was_training = self.autoencoder.training
        self.autoencoder.eval()
        sse = self.X.new_zeros(())
        for chunk in torch.split(self.shard, self.eval_batch_size):
            x = self.X[chunk]
            sse += (self.autoencoder(x)[1].float() - x).pow(2).sum()
        self.autoencoder.train(was_training)
        count = self.X.new_tensor(float(len(self.shard) * self.X.shape[1]))
        mse = self.all_reduce_sum(sse) / self.all_reduce_sum(count).clamp_min(1.0)
        return max(float(mse), 1e-6)

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        return mixture_responsibilities(z, self.pi_logits, self.mu_c, self.logvar_c)

    def cluster_loss(self, z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        # z is the posterior mean from the shared step's encoder pass
        mu = z.float()
        logvar = self.logvar_head(mu)
        sample = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        x = self.X[index]
        x_hat = self.autoencoder.decoder(sample)
        # -log N(x | x_hat, sigma2_x I) per point, up to a constant
        rec = x.shape[1] * reconstruction_loss(x_hat, x) / (2.0 * self.sigma2_x)
        gamma = self.assign(sample)
        kl = vade_kl(mu, logvar, gamma, self.pi_logits, self.mu_c, self.logvar_c)
        self.accumulate("train/rec_loss", rec)
        self.accumulate("train/kl_loss", kl)
        return rec + kl

    def configure_optimizers(self) -> Any:
        optimizer = super().configure_optimizers()
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=self.lr_decay_epochs, gamma=self.lr_decay
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler}}


@dataclasses.dataclass(eq=False, repr=False)
class VaDE(DeepClusterer):
    """Variational Deep Embedding (Jiang et al. 2017).

    The shared skeleton: pretrain an autoencoder, embed, fit a diagonal GMM on the embedding,
    then train :class:`VaDEModule` (a VAE whose prior is that mixture,
    learned jointly with the networks). ``labels_`` is VaDE's own assignment, the argmax of the
    responsibilities ``gamma = p(c | z)`` at the posterior mean; ``predict_proba`` returns
    ``gamma`` and ``transform`` the posterior means ``mu(x)``. The decoder is Gaussian with its
    variance fixed to the pretrained reconstruction MSE (see
    :class:`VaDEModule` for this choice and for the posterior network).

    Args:
        n_clusters: number of mixture components.
        epochs: epochs of the clustering phase.
        batch_size: clustering-phase batch size.
        lr: Adam learning rate, decayed by 0.9 every 10 epochs as in the paper. The paper's
            0.002 multiplied the pretrained reconstruction error by 6-15 in the first epoch on
            digits (scrambling the initial clusters) and ended at an equal or worse loss than
            the default 0.0005, which fine-tunes the pretrained networks smoothly.
        freeze_encoder: keep the encoder (the posterior mean network) fixed; the prior,
            the variance head and the decoder still train.
        autoencoder, pretrain, trainer, pretrained, encoder_from, random_state: the options
            every deep method shares (see :mod:`deepseg.deep.estimator`).

    Attributes:
        labels_: cluster of each training row, shape (n_samples,).
        init_gmm_: the diagonal GMM fitted on the pretrained embedding that initialised the
            prior (a :class:`~deepseg.baselines.GMMClusterer`).
        module_: the trained VaDEModule (prior parameters ``pi_logits``, ``mu_c``,
            ``logvar_c``).
        autoencoder_: the fine-tuned autoencoder; its encoder is the posterior mean network.
    """

    _module_class = VaDEModule

    epochs: int = P.param(50, P.NON_NEGATIVE_INT)
    batch_size: int = P.param(256, P.POSITIVE_INT)
    lr: float = P.param(5e-4, P.POSITIVE_FLOAT)

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

    def _head(self) -> MixturePosterior:
        assert self.module_ is not None
        m = self.module_
        return MixturePosterior(
            m.pi_logits.detach().cpu(), m.mu_c.detach().cpu(), m.logvar_c.detach().cpu()
        )
