"""Running the training skeleton: Trainer construction, pretraining and batched embedding."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
import torch

from deepseg.data.module import TensorDataModule
from deepseg.models.base import AutoencoderModule
from deepseg.models.callbacks import EpochTimer
from deepseg.nn.modules import Autoencoder

logger = logging.getLogger(__name__)

DEFAULT_AUTOENCODER: dict[str, Any] = {
    "hidden_dims": [500, 500, 2000],
    "latent_dim": 10,
    "activation": "relu",
    "norm": "none",
    "dropout": 0.0,
}
DEFAULT_PRETRAIN: dict[str, Any] = {
    "epochs": 50,
    # Small tables give few steps per epoch: pretraining runs at least this many steps, so that
    # 1,800 rows get as many updates as 20,000 (more epochs, never a smaller batch)
    "min_steps": 1000,
    "batch_size": 256,
    "lr": 1e-3,
    "lr_schedule": "constant",  # constant | cosine (decays to 0 over the run)
    "weight_decay": 0.0,
    "noise": "none",
    "noise_level": 0.0,
}
LR_SCHEDULES = ("constant", "cosine")
DEFAULT_TRAINER: dict[str, Any] = {
    "accelerator": "auto",
    "devices": 1,
    "strategy": "auto",
    "precision": "32-true",
    "enable_progress_bar": False,
}

# Lightning announces the hardware at every Trainer construction; keep that out of the logs
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def merged(
    defaults: Mapping[str, Any], given: Mapping[str, Any] | None, what: str
) -> dict[str, Any]:
    """``defaults`` updated with ``given``; unknown keys are an error naming the valid ones."""
    out = dict(defaults)
    if given:
        unknown = sorted(set(given) - set(defaults))
        if unknown and what != "trainer":  # trainer options pass through to lightning.Trainer
            raise ValueError(
                f"Unknown {what} option(s) {unknown}; valid options: {sorted(defaults)}"
            )
        out.update(given)
    return out


_RESERVED_TRAINER_OPTIONS = (
    "max_epochs",
    "enable_checkpointing",
    "enable_model_summary",
    "use_distributed_sampler",
    "num_sanity_val_steps",
)


def make_trainer(
    max_epochs: int,
    trainer: Mapping[str, Any] | None = None,
    timer: EpochTimer | None = None,
    **extra: Any,
) -> L.Trainer:
    """A Lightning Trainer for one phase: no checkpoints, no logger unless configured.

    Args:
        max_epochs: epochs of the phase.
        trainer: lightning.Trainer options (see DEFAULT_TRAINER). ``logger`` may be a Logger, a
            bool, or a callable making a Logger: then each phase gets its own (a new version).
        timer: an :class:`EpochTimer` to add to the callbacks, to read per-epoch wall times.
        **extra: further lightning.Trainer options.
    """
    opts = merged(DEFAULT_TRAINER, trainer, "trainer")
    opts.update(extra)
    if timer is not None:
        opts["callbacks"] = [*list(opts.get("callbacks") or []), timer]
    reserved = sorted(set(opts) & set(_RESERVED_TRAINER_OPTIONS))
    if reserved:
        raise ValueError(
            f"Trainer option(s) {reserved} are set by deepseg itself (epochs come from the "
            "method's own options, e.g. pretrain.epochs or epochs); remove them from trainer."
        )
    opts.setdefault("logger", False)
    if callable(opts["logger"]):  # a factory, e.g. partial(CSVLogger, ...): one per phase
        opts["logger"] = opts["logger"]()
    return L.Trainer(
        max_epochs=max_epochs,
        enable_checkpointing=False,
        enable_model_summary=False,
        use_distributed_sampler=False,  # TensorDataModule shards the rows itself
        num_sanity_val_steps=0,
        **opts,
    )


def seed_all(seed: int) -> None:
    """Seed torch, numpy and Python for one fit."""
    L.seed_everything(seed, workers=False, verbose=False)


def build_autoencoder(input_dim: int, autoencoder: Mapping[str, Any] | None) -> Autoencoder:
    return Autoencoder(input_dim, **merged(DEFAULT_AUTOENCODER, autoencoder, "autoencoder"))


def pretrain_epochs(n_samples: int, pretrain: Mapping[str, Any]) -> int:
    """Epochs of pretraining: ``epochs``, raised so that at least ``min_steps`` steps run.

    Args:
        n_samples: rows of the training data.
        pretrain: pretraining options (see DEFAULT_PRETRAIN).
    """
    opts = merged(DEFAULT_PRETRAIN, pretrain, "pretrain")
    for name in ("epochs", "min_steps", "batch_size"):
        value = opts[name]
        low = 1 if name == "batch_size" else 0
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(
                f"The pretrain option '{name}' must be an int in the range [{low}, inf). "
                f"Got {value!r} instead."
            )
    if opts["lr_schedule"] not in LR_SCHEDULES:
        raise ValueError(
            f"The pretrain option 'lr_schedule' must be one of {list(LR_SCHEDULES)}. "
            f"Got {opts['lr_schedule']!r} instead."
        )
    epochs = int(opts["epochs"])
    if epochs == 0:
        return 0
    steps_per_epoch = -(-n_samples // int(opts["batch_size"]))
    return max(epochs, -(-int(opts["min_steps"]) // steps_per_epoch))


def pretrain_autoencoder(
    X: np.ndarray,
    autoencoder: Mapping[str, Any] | None = None,
    pretrain: Mapping[str, Any] | None = None,
    trainer: Mapping[str, Any] | None = None,
    random_state: int = 0,
    timer: EpochTimer | None = None,
) -> Autoencoder:
    """Phase 1 of the skeleton: build and train an autoencoder on X by reconstruction.

    Args:
        X: array of shape (n_samples, n_features).
        autoencoder: architecture options (see DEFAULT_AUTOENCODER).
        pretrain: training options (see DEFAULT_PRETRAIN).
        trainer: lightning.Trainer options.
        random_state: seed of the initialisation and the batch order.
        timer: an :class:`EpochTimer` that records the wall time of each pretraining epoch.

    Returns:
        The trained autoencoder, on the CPU, in eval mode.
    """
    opts = merged(DEFAULT_PRETRAIN, pretrain, "pretrain")
    seed_all(random_state)
    ae = build_autoencoder(X.shape[1], autoencoder)
    epochs = pretrain_epochs(X.shape[0], opts)
    if epochs > 0:
        module = AutoencoderModule(
            ae,
            lr=opts["lr"],
            weight_decay=opts["weight_decay"],
            noise=opts["noise"],
            noise_level=opts["noise_level"],
            lr_schedule=opts["lr_schedule"],
        )
        dm = TensorDataModule(X, batch_size=opts["batch_size"], seed=random_state)
        make_trainer(epochs, trainer, timer).fit(module, datamodule=dm)
    return ae.cpu().eval()


@torch.no_grad()
def embed(
    model: torch.nn.Module, X: np.ndarray | torch.Tensor, batch_size: int = 4096
) -> np.ndarray:
    """Encoder outputs for X, batched, without gradients, as float32 of shape (n, latent)."""
    encode = getattr(model, "encode", model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    X_t = torch.as_tensor(np.asarray(X, dtype=np.float32))
    out = [encode(chunk.to(device)).float().cpu() for chunk in torch.split(X_t, batch_size)]
    model.train(was_training)
    return torch.cat(out).numpy()
