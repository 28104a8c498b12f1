"""The training skeleton shared by every deep method: one step, one Trainer, one embed loop.

Phase 1, pretraining, is :class:`AutoencoderModule` run by :func:`pretrain_autoencoder`. The
clustering phase is a subclass of :class:`ClusteringModule`, which owns the step: it corrupts the
input when asked, encodes, adds the reconstruction term with weight ``rec_weight``, and calls the
method's ``cluster_loss``. Whole-data statistics (targets, frequencies, centres) are refreshed by
the method's ``refresh`` every ``update_interval`` steps, from batched ``no_grad`` passes over
this process's shard, reduced across processes with :meth:`ClusteringModule.all_reduce_sum`. A
method stops training by returning True from ``refresh`` (e.g. DEC's label-change tolerance).
:func:`make_trainer` builds the Trainer of every phase and :func:`embed` is the one batched
embedding loop.

The autoencoder, pretraining and trainer options are declared, with their defaults and
constraints, in :mod:`deepseg.options` (``AUTOENCODER``, ``PRETRAIN``, ``TRAINER``), which the
configs' groups of the same names are generated from.

Modules never see ground-truth labels: batches are ``(x, index)``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import lightning as L
import numpy as np
import torch

from deepseg.data.module import TensorDataModule
from deepseg.deep.checkpoint import (
    AtomicCheckpointIO,
    PhaseCheckpoint,
    Resume,
    checkpoint_options,
    phase_checkpoint,
    trainer_key,
)
from deepseg.losses import reconstruction_loss
from deepseg.nn.modules import Autoencoder, corrupt, embed
from deepseg.options import AUTO, AUTOENCODER, PRETRAIN, TRAINER, Checked

__all__ = [
    "AutoencoderModule",
    "ClusteringModule",
    "EpochTimer",
    "embed",
    "is_wide",
    "make_trainer",
    "pretrain_autoencoder",
    "pretrain_epochs",
    "resolve_for_input",
    "seed_all",
]

logger = logging.getLogger(__name__)


#: What ``dropout="auto"`` and ``min_steps="auto"`` become (:func:`resolve_for_input`). Narrow
#: inputs (customer tables: tens of columns, widened by the first hidden layer) pretrain with
#: dropout, which keeps the 10-d embedding from spending itself on noise columns
#: (synthetic_customers: dec 0.99 with it, 0.56-0.67 without), for at least 600 steps. Wide
#: inputs (pixels, sentence embeddings: hundreds of columns, not widened) pretrain without
#: dropout and for at least 6,000 steps: on the 10,000 MNIST test images (seed 0) ae_kmeans /
#: n2d reach 0.708 / 0.945, against 0.484 / 0.816 with dropout and 1,200 steps, and 0.377 /
#: 0.735 with dropout and 6,000 steps (docs/benchmarks.md, "Pretraining by the input's width").
NARROW_DROPOUT = 0.2
WIDE_DROPOUT = 0.0
NARROW_MIN_STEPS = 600
WIDE_MIN_STEPS = 6000

#: Options of the trainer group that deepseg reads itself; make_trainer does not pass them on.
#: ``capture_step``: capture each training step on CUDA, see EpochMeanLogger (off by default:
#: not yet measured on a GPU).
OWN_TRAINER_OPTIONS = ("capture_step",)


def trainer_options(trainer: Mapping[str, Any] | None) -> dict[str, Any]:
    """The declared trainer defaults (:data:`deepseg.options.TRAINER`) updated with ``trainer``
    (any key: they pass through to lightning.Trainer)."""
    return TRAINER.merged(trainer)


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
    checkpoint: PhaseCheckpoint | None = None,
    **extra: Any,
) -> L.Trainer:
    """A Lightning Trainer for one phase: no logger unless configured, no checkpoints unless
    given a :class:`~deepseg.deep.checkpoint.PhaseCheckpoint`.

    Args:
        max_epochs: epochs of the phase.
        trainer: lightning.Trainer options (:data:`deepseg.options.TRAINER`). ``logger`` may
            be a Logger, a bool, or a callable making a Logger: then each phase gets its own (a
            new version).
        timer: an :class:`EpochTimer` to add to the callbacks, to read per-epoch wall times.
        checkpoint: the phase's checkpoint callback; its files are written atomically
            (:class:`~deepseg.deep.checkpoint.AtomicCheckpointIO`).
        **extra: further lightning.Trainer options.
    """
    opts = trainer_options(trainer)
    opts.update(extra)
    for name in OWN_TRAINER_OPTIONS:
        opts.pop(name, None)
    if timer is not None:
        opts["callbacks"] = [*list(opts.get("callbacks") or []), timer]
    if checkpoint is not None:
        opts["callbacks"] = [*list(opts.get("callbacks") or []), checkpoint]
        opts["plugins"] = [*list(opts.get("plugins") or []), AtomicCheckpointIO()]
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
        enable_checkpointing=False,  # Lightning's own ModelCheckpoint; ours is PhaseCheckpoint
        enable_model_summary=False,
        use_distributed_sampler=False,  # TensorDataModule shards the rows itself
        num_sanity_val_steps=0,
        **opts,
    )


#: the loggers of Lightning's banners ("GPU available", tips, "`Trainer.fit` stopped")
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")


_QUIET_LOCK = threading.Lock()
_quiet_depth = 0
_quiet_saved: tuple[list[int], list[Any]] | None = None


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's banners and tips follow deepseg's logging level: shown when the
    ``deepseg`` logger is enabled for INFO (the commands, or ``logging.basicConfig(
    level=logging.INFO)``), kept out of the terminal otherwise (a fit from Python prints
    nothing). Lightning's own warnings about a torch internal are never shown: nothing a
    user can act on. Warnings and errors still pass.

    Fits may overlap (threads): the first to enter saves the loggers' levels and the warning
    filters, the last to leave puts them back.
    """
    global _quiet_depth, _quiet_saved
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    with _QUIET_LOCK:
        if _quiet_depth == 0:
            _quiet_saved = ([lg.level for lg in loggers], list(warnings.filters))
            if not logging.getLogger("deepseg").isEnabledFor(logging.INFO):
                for lg in loggers:
                    lg.setLevel(logging.WARNING)
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
        _quiet_depth += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _quiet_saved is not None:
                levels, filters = _quiet_saved
                for lg, level in zip(loggers, levels, strict=True):
                    lg.setLevel(level)
                warnings.filters[:] = filters
                mutated = getattr(warnings, "_filters_mutated", None)  # CPython's cache reset
                if callable(mutated):
                    mutated()
                _quiet_saved = None


def capture_step(trainer: Mapping[str, Any] | None) -> bool:
    """The trainer group's ``capture_step`` option (False when unset)."""
    return bool(trainer_options(trainer)["capture_step"])


def seed_all(seed: int) -> None:
    """Seed torch, numpy and Python for one fit."""
    L.seed_everything(seed, workers=False, verbose=False)


def build_autoencoder(input_dim: int, autoencoder: Mapping[str, Any] | None) -> Autoencoder:
    """The network of these architecture options (checked, unless given checked)."""
    return Autoencoder(input_dim, **AUTOENCODER.check(autoencoder))


def is_wide(input_dim: int, autoencoder: Mapping[str, Any] | None) -> bool:
    """Whether an input of ``input_dim`` columns is "wide" for this autoencoder: at least as wide
    as its first hidden layer (the encoder does not widen it; no hidden layer: always wide)."""
    hidden = list(AUTOENCODER.check(autoencoder)["hidden_dims"])
    return not hidden or int(input_dim) >= int(hidden[0])


def resolve_for_input(
    input_dim: int, autoencoder: Mapping[str, Any] | None, pretrain: Mapping[str, Any] | None
) -> tuple[Checked, Checked]:
    """The autoencoder and pretraining options, checked (unless given checked), with every
    ``"auto"`` replaced for this input.

    A data-width rule, the same for every dataset: ``dropout="auto"`` is
    :data:`NARROW_DROPOUT` for a narrow input and :data:`WIDE_DROPOUT` for a wide one
    (:func:`is_wide`), ``min_steps="auto"`` :data:`NARROW_MIN_STEPS` or :data:`WIDE_MIN_STEPS`.
    Values that are not ``"auto"`` are kept as given.

    >>> ae, pre = resolve_for_input(784, {"hidden_dims": [256, 256, 512]}, {})
    >>> ae["dropout"], pre["min_steps"]
    (0.0, 6000)
    >>> ae, pre = resolve_for_input(66, None, {"min_steps": 100})
    >>> ae["dropout"], pre["min_steps"]
    (0.2, 100)
    """
    ae = Checked(AUTOENCODER.name, AUTOENCODER.check(autoencoder))
    pre = Checked(PRETRAIN.name, PRETRAIN.check(pretrain))
    wide = is_wide(input_dim, ae)
    if ae["dropout"] == AUTO:
        ae["dropout"] = WIDE_DROPOUT if wide else NARROW_DROPOUT
    if pre["min_steps"] == AUTO:
        pre["min_steps"] = WIDE_MIN_STEPS if wide else NARROW_MIN_STEPS
    return ae, pre


def check_options(
    autoencoder: Mapping[str, Any] | None,
    pretrain: Mapping[str, Any] | None,
    trainer: Mapping[str, Any] | None,
    checkpoint: Mapping[str, Any] | None = None,
) -> tuple[Checked, Checked]:
    """Check the grouped options of a deep estimator before any work.

    Returns:
        The autoencoder and pretraining options, merged with their defaults and checked (the
        fit passes them on: they are not checked again).

    Raises:
        ValueError: an unknown option (naming the valid ones) or a bad value.
    """
    checked = AUTOENCODER.check(autoencoder), PRETRAIN.check(pretrain)
    checkpoint_options(checkpoint)
    TRAINER.check(trainer)
    reserved = sorted(set(trainer or {}) & set(_RESERVED_TRAINER_OPTIONS))
    if reserved:
        raise ValueError(
            f"Trainer option(s) {reserved} are set by deepseg itself (epochs come from the "
            "method's own options, e.g. pretrain.epochs or epochs); remove them from trainer."
        )
    return checked


#: The clustering phase's whole-data passes (DEC's target distribution) run at most this many
#: times an epoch: ``update_interval`` counts steps, and on large data a pass every 140 steps
#: would make the phase quadratic in the rows (1M rows: 28 passes over all rows an epoch). Up to
#: 143,360 rows at batch 256 the interval is unchanged.
MAX_REFRESHES_PER_EPOCH = 4


def refresh_interval(update_interval: int, n_samples: int, batch_size: int) -> int:
    """Steps between whole-data refreshes: ``update_interval``, raised so that at most
    :data:`MAX_REFRESHES_PER_EPOCH` refreshes run in an epoch of ``n_samples`` rows."""
    steps_per_epoch = -(-int(n_samples) // int(batch_size))
    return max(int(update_interval), -(-steps_per_epoch // MAX_REFRESHES_PER_EPOCH))


def pretrain_epochs(
    n_samples: int,
    pretrain: Mapping[str, Any] | None,
    n_features: int,
    autoencoder: Mapping[str, Any] | None = None,
) -> int:
    """Epochs of pretraining: ``epochs``, raised so that at least ``min_steps`` steps run, but
    by the raise to no more than ``max_budget_epochs`` epochs (``epochs`` itself is never cut).

    Args:
        n_samples: rows of the training data.
        pretrain: pretraining options (:data:`deepseg.options.PRETRAIN`); checked here,
            unless given checked.
        n_features: columns of the training data (``min_steps="auto"``: see
            :func:`resolve_for_input`).
        autoencoder: the architecture options, for the same rule.
    """
    opts = resolve_for_input(n_features, autoencoder, pretrain)[1]
    epochs = int(opts["epochs"])
    if epochs == 0:
        return 0
    steps_per_epoch = -(-n_samples // int(opts["batch_size"]))
    budget = min(-(-int(opts["min_steps"]) // steps_per_epoch), int(opts["max_budget_epochs"]))
    return capped_epochs(
        max(epochs, budget), n_samples, int(opts["batch_size"]), opts["max_steps"]
    )


def capped_epochs(epochs: int, n_samples: int, batch_size: int, max_steps: int) -> int:
    """``epochs``, cut to the fewest whole epochs that reach ``max_steps`` steps (0: no cap).

    A data-size rule: the step budget of DEC's and IDEC's reference implementations (20,000
    iterations of 256 rows), so that the time of a phase stops growing with the rows once an
    epoch is long. Tables of up to ``max_steps * batch_size / epochs`` rows are unchanged.
    """
    if int(max_steps) <= 0 or int(epochs) <= 0:
        return int(epochs)
    steps_per_epoch = -(-int(n_samples) // int(batch_size))
    return min(int(epochs), max(1, -(-int(max_steps) // steps_per_epoch)))


def pretrain_autoencoder(
    X: np.ndarray,
    autoencoder: Mapping[str, Any] | None = None,
    pretrain: Mapping[str, Any] | None = None,
    trainer: Mapping[str, Any] | None = None,
    random_state: int = 0,
    timer: EpochTimer | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> Autoencoder:
    """Phase 1 of the skeleton: build and train an autoencoder on X by reconstruction.

    Args:
        X: array of shape (n_samples, n_features).
        autoencoder: architecture options (:data:`deepseg.options.AUTOENCODER`).
        pretrain: training options (:data:`deepseg.options.PRETRAIN`); both are checked here,
            unless given checked (:class:`deepseg.options.Checked`).
        trainer: lightning.Trainer options.
        random_state: seed of the initialisation and the batch order.
        timer: an :class:`EpochTimer` that records the wall time of each pretraining epoch.
        checkpoint: checkpoint options (see :mod:`deepseg.deep.checkpoint`); with a ``dir``,
            pretraining writes checkpoints there and resumes from the newest one of the same
            data, options and seed.

    Returns:
        The trained autoencoder, on the CPU, in eval mode.
    """
    ae_opts, opts = resolve_for_input(X.shape[1], autoencoder, pretrain)
    seed_all(random_state)
    ae = build_autoencoder(X.shape[1], ae_opts)
    epochs = pretrain_epochs(X.shape[0], opts, X.shape[1], ae_opts)
    if epochs > 0:
        module = AutoencoderModule(
            ae,
            lr=opts["lr"],
            weight_decay=opts["weight_decay"],
            noise=opts["noise"],
            noise_level=opts["noise_level"],
            lr_schedule=opts["lr_schedule"],
            capture_step=capture_step(trainer),
        )
        dm = TensorDataModule(X, batch_size=opts["batch_size"], seed=random_state)
        saver = phase_checkpoint(
            checkpoint,
            "pretrain",
            X=X,
            autoencoder=ae_opts,
            pretrain=opts,
            epochs=epochs,
            seed=random_state,
            trainer=trainer_key(trainer),
        )
        resume = saver.resume(epochs) if saver is not None else None
        if resume is not None and resume.done:
            restore_finished(module, resume, timer)
        else:
            with quiet_lightning():
                make_trainer(epochs, trainer, timer, saver).fit(
                    module,
                    datamodule=dm,
                    ckpt_path=None if resume is None else resume.path,
                    weights_only=True,
                )
    return ae.cpu().eval()


def restore_finished(
    module: L.LightningModule, resume: Resume, timer: EpochTimer | None = None
) -> None:
    """Load a phase that had ended from its last checkpoint, without a Trainer: the weights,
    the module's own state (``on_load_checkpoint``) and the epoch times."""
    checkpoint = resume.checkpoint
    module.load_state_dict(checkpoint["state_dict"])
    module.on_load_checkpoint(checkpoint)
    if timer is not None:
        timer.load_state_dict(checkpoint.get("callbacks", {}).get(timer.state_key, {}))


class EpochTimer(L.Callback):
    """Wall time of every training epoch, without the Trainer's set-up and tear-down.

    ``epoch_seconds`` lists one entry per finished epoch. An epoch that a method ends early
    (e.g. DEC's tolerance stop) is still counted, up to the point where it ended.
    """

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self._start: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._start is not None:
            self.epoch_seconds.append(time.perf_counter() - self._start)
            self._start = None

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_seconds": list(self.epoch_seconds)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # A resumed fit reports the epochs of the run it resumed too
        self.epoch_seconds = [float(s) for s in state_dict.get("epoch_seconds", [])]


class EpochMeanLogger(L.LightningModule):
    """What every training phase shares: the network, its input corruption, the epoch means of
    per-step losses, and the step capture on CUDA.

    ``self.log`` on every step costs more than a small clustering step's own arithmetic on a
    CPU, and reading a loss with ``.item()`` makes the host wait for a GPU: :meth:`accumulate`
    only keeps the detached loss tensors (no arithmetic, no sync), and ``on_train_epoch_end``
    logs their means (``sync_dist``) under the same keys.

    With ``capture_step`` on a CUDA device, the autoencoder's forward and backward passes run as
    CUDA graphs (``torch.compile(mode="reduce-overhead")``, one graph for each batch shape:
    full batches and an epoch's last one) and the optimiser is the fused one: the dozens of
    small kernel launches of a step become a few graph replays. On other devices it changes
    nothing (the step runs eagerly, as without it). The compiled network is held outside the
    module's registered children, so ``state_dict`` keys and checkpoints are unchanged.

    Args:
        autoencoder: the network the phase trains.
        lr: learning rate.
        noise: input corruption kind (see :func:`deepseg.nn.corrupt`).
        noise_level: corruption strength.
        capture_step: capture the step on CUDA (see above).
    """

    def __init__(
        self,
        autoencoder: Autoencoder,
        lr: float,
        noise: str = "none",
        noise_level: float = 0.0,
        capture_step: bool = False,
    ) -> None:
        super().__init__()
        # what every phase trains, and how its input is corrupted
        self.autoencoder = autoencoder
        self.lr = lr
        self.noise = noise
        self.noise_level = noise_level
        self.capture_step = bool(capture_step)
        self._steps: dict[str, list[torch.Tensor]] = {}
        self._captured: dict[str, Any] = {}

    def capturing(self) -> bool:
        """Whether this fit captures its steps (``capture_step`` and a CUDA device)."""
        return self.capture_step and self.device.type == "cuda"

    def on_fit_start(self) -> None:
        self._captured = {}
        if self.capture_step and not self.capturing():
            logger.info(
                "capture_step applies on CUDA only: the steps on %s run eagerly", self.device
            )
        elif self.capturing():
            compile_ = torch.compile
            self._captured = {
                "forward": compile_(self.autoencoder, mode="reduce-overhead", dynamic=False),
                "encode": compile_(
                    self.autoencoder.encoder, mode="reduce-overhead", dynamic=False
                ),
            }

    def on_fit_end(self) -> None:
        self._captured = {}  # the graphs hold device memory; the fitted module keeps none

    def autoencode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, x_hat)`` of the training step (captured when :meth:`capturing`)."""
        if self._captured:
            torch.compiler.cudagraph_mark_step_begin()
            return self._captured["forward"](x)
        return self.autoencoder(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``z`` of the training step (captured when :meth:`capturing`)."""
        if self._captured:
            torch.compiler.cudagraph_mark_step_begin()
            return self._captured["encode"](x)
        return self.autoencoder.encode(x)

    def make_optimizer(self, name: str, params: Any, **kwargs: Any) -> torch.optim.Optimizer:
        """Adam or SGD (momentum 0.9); the fused implementation when :meth:`capturing`."""
        if self.capturing():
            kwargs["fused"] = True
        if name == "sgd":
            return torch.optim.SGD(params, momentum=0.9, **kwargs)
        return torch.optim.Adam(params, **kwargs)

    def accumulate(self, name: str, value: torch.Tensor) -> None:
        steps = self._steps.get(name)
        if steps is None:
            steps = self._steps[name] = []
        steps.append(value.detach())

    def metrics_are_read(self) -> bool:
        """Whether anything reads what ``self.log`` records: a logger, or a callback that is not
        deepseg's own (a progress bar, a user's early stopping). Lightning's logging costs
        about as much as a whole training step on a small table (its per-epoch result
        objects), so with nobody to read them the epoch means are not logged."""
        trainer = self.trainer
        if trainer.loggers:
            return True
        callbacks: list[L.Callback] = getattr(trainer, "callbacks", [])
        return any(not isinstance(cb, EpochTimer | PhaseCheckpoint) for cb in callbacks)

    def on_train_epoch_end(self) -> None:
        if self._steps and self.metrics_are_read():
            for name, values in self._steps.items():
                mean = torch.stack(values).float().mean()
                self.log(name, mean, prog_bar=name == "train/loss", sync_dist=True)
        self._steps = {}


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
        capture_step: capture the step on CUDA (see :class:`EpochMeanLogger`).
    """

    def __init__(
        self,
        autoencoder: Autoencoder,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        noise: str = "none",
        noise_level: float = 0.0,
        lr_schedule: str = "constant",
        capture_step: bool = False,
    ) -> None:
        super().__init__(autoencoder, lr, noise, noise_level, capture_step)
        # checked with the pretrain group (deepseg.options.PRETRAIN) by pretrain_autoencoder
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, _ = batch
        _, x_hat = self.autoencode(corrupt(x, self.noise, self.noise_level))
        loss = reconstruction_loss(x_hat, x)
        self.accumulate("train/rec_loss", loss)
        self.accumulate("train/loss", loss)
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = self.make_optimizer(
            "adam", self.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
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
        capture_step: capture the step on CUDA (see :class:`EpochMeanLogger`).
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
        capture_step: bool = False,
    ) -> None:
        super().__init__(autoencoder, lr, noise, noise_level, capture_step)
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"The 'optimizer' must be 'adam' or 'sgd'. Got {optimizer!r}.")
        if update_interval < 1:
            raise ValueError(f"The 'update_interval' must be >= 1. Got {update_interval!r}.")
        self.X = X
        self.shard = torch.arange(X.shape[0]) if shard is None else shard
        self.optimizer = optimizer
        self.rec_weight = rec_weight
        self.update_interval = update_interval
        self.eval_batch_size = eval_batch_size
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

    def checkpoint_state(self) -> dict[str, Any]:
        """What a checkpoint must hold beyond the ``state_dict`` for a resumed fit to go on as
        the uninterrupted one: whole-data statistics ``refresh`` keeps in non-persistent buffers
        or attributes. Subclasses extend it and :meth:`load_checkpoint_state`."""
        return {"stopped_early": self.stopped_early}

    def load_checkpoint_state(self, state: Mapping[str, Any]) -> None:
        self.stopped_early = bool(state.get("stopped_early", False))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["clustering_state"] = self.checkpoint_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.load_checkpoint_state(checkpoint.get("clustering_state", {}))

    # -- the shared skeleton -------------------------------------------------------------------

    def on_fit_start(self) -> None:
        super().on_fit_start()
        datamodule = getattr(self.trainer, "datamodule", None)
        shard_indices = getattr(datamodule, "shard_indices", None)
        if shard_indices is not None:
            self.shard = shard_indices()
        # Moved once, so that nothing crosses devices inside the loop; the datamodule's copy
        # when it holds this matrix (the device-resident batches slice the same tensor)
        if isinstance(datamodule, TensorDataModule) and datamodule.X is self.X:
            self.X = datamodule.on_device(self.device)
        else:
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
            z, x_hat = self.autoencode(x_in)
            rec = reconstruction_loss(x_hat, x)
            self.accumulate("train/rec_loss", rec)
        else:
            z, rec = self.encode(x_in), None
        cluster = self.cluster_loss(z, index)
        loss = cluster if rec is None else cluster + self.rec_weight * rec
        self.accumulate("train/cluster_loss", cluster)
        self.accumulate("train/loss", loss)
        return loss

    def on_fit_end(self) -> None:
        super().on_fit_end()
        self.autoencoder.decoder.requires_grad_(True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.parameters() if p.requires_grad]
        return self.make_optimizer(self.optimizer, params, lr=self.lr)
