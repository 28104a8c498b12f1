"""The training skeleton shared by every deep method.

Phase 1, pretraining, is :class:`AutoencoderModule`. The clustering phase is a subclass of
:class:`ClusteringModule`, which owns the step: it corrupts the input when asked, encodes,
adds the reconstruction term with weight ``rec_weight``, and calls the method's
``cluster_loss``. Whole-data statistics (targets, frequencies, centres) are refreshed by the
method's ``refresh`` every ``update_interval`` steps, from batched ``no_grad`` passes over this
process's shard, reduced across processes with :meth:`ClusteringModule.all_reduce_sum`. A method
stops training by returning True from ``refresh`` (e.g. DEC's label-change tolerance).

Modules never see ground-truth labels: batches are ``(x, index)``.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from deepseg.losses import reconstruction_loss
from deepseg.nn.modules import Autoencoder, corrupt


class EpochMeanLogger(L.LightningModule):
    """Epoch means of per-step losses, logged once per epoch.

    ``self.log`` on every step costs more than a small clustering step's own arithmetic on a
    CPU; :meth:`accumulate` only adds detached values on the module's device, and
    ``on_train_epoch_end`` logs their means (``sync_dist``) under the same keys.
    """

    def __init__(self) -> None:
        super().__init__()
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def accumulate(self, name: str, value: torch.Tensor) -> None:
        value = value.detach()
        if name in self._sums:
            self._sums[name] += value
            self._counts[name] += 1
        else:
            self._sums[name] = value.clone().float()
            self._counts[name] = 1

    def on_train_epoch_end(self) -> None:
        for name, total in self._sums.items():
            self.log(
                name, total / self._counts[name], prog_bar=name == "train/loss", sync_dist=True
            )
        self._sums, self._counts = {}, {}


class AutoencoderModule(EpochMeanLogger):
    """Pretraining: (denoising) reconstruction.

    Args:
        autoencoder: the network to train.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        noise: input corruption kind (see :func:`deepseg.nn.corrupt`).
        noise_level: corruption strength.
        lr_schedule: "constant", or "cosine" to decay the learning rate to 0 over the run's
            steps.
    """

    def __init__(
        self,
        autoencoder: Autoencoder,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        noise: str = "none",
        noise_level: float = 0.0,
        lr_schedule: str = "constant",
    ) -> None:
        super().__init__()
        if lr_schedule not in ("constant", "cosine"):
            raise ValueError(
                f"The 'lr_schedule' must be 'constant' or 'cosine'. Got {lr_schedule!r}."
            )
        self.autoencoder = autoencoder
        self.lr = lr
        self.weight_decay = weight_decay
        self.noise = noise
        self.noise_level = noise_level
        self.lr_schedule = lr_schedule

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, _ = batch
        _, x_hat = self.autoencoder(corrupt(x, self.noise, self.noise_level))
        loss = reconstruction_loss(x_hat, x)
        self.accumulate("train/rec_loss", loss)
        self.accumulate("train/loss", loss)
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.lr_schedule == "constant":
            return optimizer
        steps = max(int(self.trainer.estimated_stepping_batches), 1)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class ClusteringModule(EpochMeanLogger):
    """Base of the clustering phase. Subclasses implement ``cluster_loss``, ``refresh`` and
    ``assign``.

    Args:
        autoencoder: the pretrained network (fine-tuned in this phase).
        X: the full training matrix of shape (n_samples, n_features), for whole-data passes.
        shard: the row indices this process trains on; by default the datamodule's
            ``shard_indices()`` when it has one (data-parallel runs), else every row.
        lr: learning rate.
        optimizer: "adam" or "sgd" (momentum 0.9).
        rec_weight: weight of the reconstruction term (0 trains the encoder alone).
        update_interval: steps between calls of ``refresh``.
        eval_batch_size: batch size of the whole-data passes.
        noise: input corruption in this phase.
        noise_level: corruption strength.
    """

    def __init__(
        self,
        autoencoder: Autoencoder,
        X: torch.Tensor,
        shard: torch.Tensor | None = None,
        lr: float = 1e-3,
        optimizer: str = "adam",
        rec_weight: float = 0.0,
        update_interval: int = 140,
        eval_batch_size: int = 4096,
        noise: str = "none",
        noise_level: float = 0.0,
    ) -> None:
        super().__init__()
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"The 'optimizer' must be 'adam' or 'sgd'. Got {optimizer!r}.")
        if update_interval < 1:
            raise ValueError(f"The 'update_interval' must be >= 1. Got {update_interval!r}.")
        self.autoencoder = autoencoder
        self.X = X
        self.shard = torch.arange(X.shape[0]) if shard is None else shard
        self.lr = lr
        self.optimizer = optimizer
        self.rec_weight = rec_weight
        self.update_interval = update_interval
        self.eval_batch_size = eval_batch_size
        self.noise = noise
        self.noise_level = noise_level
        self.stopped_early = False
        self._dropouts: list[torch.nn.Module] = []  # filled in on_fit_start
        # Without the reconstruction term the decoder takes no part in the loss: freeze it so
        # that the optimiser and data-parallel gradient sync leave it alone
        self.autoencoder.decoder.requires_grad_(rec_weight > 0)

    # -- the method's part ---------------------------------------------------------------------

    def cluster_loss(self, z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def refresh(self) -> bool:
        """Recompute whole-data statistics; return True to stop training."""
        return False

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """Soft assignments of shape (n, n_clusters) for embeddings z."""
        raise NotImplementedError

    # -- the shared skeleton -------------------------------------------------------------------

    def on_fit_start(self) -> None:
        shard_indices = getattr(getattr(self.trainer, "datamodule", None), "shard_indices", None)
        if shard_indices is not None:
            self.shard = shard_indices()
        # Moved once, so that nothing crosses devices inside the loop
        self.X = self.X.to(self.device)
        self.shard = self.shard.to(self.device)
        self._dropouts = [m for m in self.autoencoder.modules() if isinstance(m, torch.nn.Dropout)]

    @torch.no_grad()
    def embed_rows(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of ``rows`` of X (default: this process's shard), batched, no grad."""
        rows = self.shard if rows is None else rows
        was_training = self.autoencoder.training
        self.autoencoder.eval()
        out = [
            self.autoencoder.encode(self.X[chunk])
            for chunk in torch.split(rows, self.eval_batch_size)
        ]
        self.autoencoder.train(was_training)
        return torch.cat(out) if out else self.X.new_zeros((0, self.autoencoder.latent_dim))

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over every process (identity with one process)."""
        if self.trainer is not None and self.trainer.world_size > 1:
            return self.trainer.strategy.reduce(tensor, reduce_op="sum")
        return tensor

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        # Dropout regularises pretraining only (as in DEC's stacked autoencoder): the clustering
        # phase trains towards targets computed without it, so it runs without it too. Lightning
        # (and the whole-data passes of refresh) put the module back in train mode, hence here,
        # after refresh, at every step.
        if self.global_step % self.update_interval == 0 and self.refresh():
            self.stopped_early = True
            self.trainer.should_stop = True
            return -1  # ends the epoch now; should_stop ends the fit
        for module in self._dropouts:
            module.training = False
        return None

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, index = batch
        x_in = corrupt(x, self.noise, self.noise_level)
        if self.rec_weight > 0:
            z, x_hat = self.autoencoder(x_in)
            rec = reconstruction_loss(x_hat, x)
            self.accumulate("train/rec_loss", rec)
        else:
            z, rec = self.autoencoder.encode(x_in), None
        cluster = self.cluster_loss(z, index)
        loss = cluster if rec is None else cluster + self.rec_weight * rec
        self.accumulate("train/cluster_loss", cluster)
        self.accumulate("train/loss", loss)
        return loss

    def on_fit_end(self) -> None:
        self.autoencoder.decoder.requires_grad_(True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.parameters() if p.requires_grad]
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=0.9)
        return torch.optim.Adam(params, lr=self.lr)
