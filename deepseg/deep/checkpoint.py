"""Checkpoints of the deep fits: a killed fit resumes from its last complete epoch.

Each training phase (``pretrain``: the autoencoder; ``cluster``: the method's clustering phase)
gets a :class:`PhaseCheckpoint` callback when the estimator's ``checkpoint`` option names a
directory. At the end of an epoch it writes a Lightning checkpoint (weights, optimiser and
scheduler states, epoch and step counters, the callbacks' states) with, in addition, the
method's clustering state (:meth:`deepseg.deep.skeleton.ClusteringModule.checkpoint_state`: e.g.
DEC's target distribution and label history) and the torch, numpy and Python RNG states. It
writes one every ``every_n_epochs`` epochs, or once ``every_n_seconds`` have passed since the
previous one, and always at the end of the phase. The batch order needs nothing more: the data
module derives epoch ``e``'s permutation from ``seed + e``.

Files are ``<dir>/<phase>-<fingerprint>-e<epochs done>.ckpt``. The fingerprint hashes what the
phase's result depends on (the data, the options, the seed, the weights it starts from), so a
directory shared by several fits never resumes one from another's checkpoint. A checkpoint is
written to a temporary file, ``fsync``-ed and renamed (:func:`deepseg.io.atomic_open`): a kill
during the write leaves the previous checkpoint whole. The newest ``keep`` checkpoints of a
phase are kept; one that fails to load is skipped, with a log line, for the one before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins import TorchCheckpointIO

from deepseg.deep import params as P
from deepseg.io import atomic_open

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CHECKPOINT",
    "AtomicCheckpointIO",
    "PhaseCheckpoint",
    "Resume",
    "fingerprint",
    "phase_checkpoint",
]

DEFAULT_CHECKPOINT: dict[str, Any] = {
    # No directory, no checkpoints: DEC().fit(X) writes nothing unless asked
    "dir": None,
    # 0: not by count. Small tables run hundreds of sub-second epochs, where a checkpoint per
    # epoch would cost more than the training; time bounds the work a kill loses
    "every_n_epochs": 0,
    "every_n_seconds": 60.0,
    # Two, so that a damaged newest checkpoint falls back to the one before
    "keep": 2,
}
CHECKPOINT_CONSTRAINTS: dict[str, Any] = {
    "dir": P.AnyOf((P.InstanceOf((str, Path), "a directory (str)"), P.NONE)),
    "every_n_epochs": P.NON_NEGATIVE_INT,
    "every_n_seconds": P.NON_NEGATIVE_FLOAT,
    "keep": P.POSITIVE_INT,
}
PHASES = {"pretrain": "pretraining", "cluster": "clustering"}
_NAME = re.compile(r"^(?P<phase>[a-z]+)-(?P<fp>[0-9a-f]+)-e(?P<epochs>\d+)\.ckpt$")
# Trainer options that change how a fit is shown, not what it computes
_COSMETIC = ("logger", "callbacks", "enable_progress_bar", "default_root_dir", "plugins")


def checkpoint_options(checkpoint: Mapping[str, Any] | None) -> dict[str, Any]:
    """The checkpoint options merged over :data:`DEFAULT_CHECKPOINT`, checked.

    Raises:
        ValueError: an unknown option (naming the valid ones) or a bad value.
    """
    opts = dict(DEFAULT_CHECKPOINT)
    unknown = sorted(set(checkpoint or {}) - set(opts))
    if unknown:
        raise ValueError(f"Unknown checkpoint option(s) {unknown}; valid options: {sorted(opts)}")
    opts.update(checkpoint or {})
    for name, constraint in CHECKPOINT_CONSTRAINTS.items():
        P.check_value("checkpoint", name, opts[name], constraint)
    return opts


def fingerprint(**parts: Any) -> str:
    """A short hash of ``parts``: arrays and tensors by their bytes, the rest as JSON."""
    digest = hashlib.sha256()
    for name in sorted(parts):
        value = parts[name]
        digest.update(name.encode())
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if (
            isinstance(value, Mapping)
            and value
            and all(isinstance(v, torch.Tensor) for v in value.values())
        ):  # a state_dict
            for key, tensor in value.items():
                digest.update(key.encode())
                digest.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).data)
        elif isinstance(value, np.ndarray):
            digest.update(str((value.shape, value.dtype.str)).encode())
            digest.update(np.ascontiguousarray(value).data)
        else:
            digest.update(json.dumps(value, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:12]


def trainer_key(trainer: Mapping[str, Any] | None) -> dict[str, Any]:
    """The trainer options that can change a result (for :func:`fingerprint`); an unset
    ``capture_step`` (the default, False) is left out, so checkpoints written before the option
    existed still resume."""
    return {
        k: v
        for k, v in (trainer or {}).items()
        if k not in _COSMETIC and not (k == "capture_step" and v is False)
    }


# -- RNG states ------------------------------------------------------------------------------


def rng_states() -> dict[str, Any]:
    """The torch, numpy and Python RNG states, in types ``torch.load(weights_only=True)``
    reads."""
    # numpy's legacy global generator: what np.random.* draws from, seeded by seed_all
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, gauss],
        "python": [version, list(py_state), py_gauss],
    }


def set_rng_states(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_states` returned."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))  # noqa: NPY002
    version, py_state, py_gauss = state["python"]
    random.setstate((version, tuple(py_state), py_gauss))


# -- files -----------------------------------------------------------------------------------


def load_checkpoint(path: str | Path, map_location: Any = None) -> dict[str, Any]:
    """A checkpoint's contents; plain data and tensors only (``weights_only``: no pickle)."""
    return torch.load(path, map_location=map_location, weights_only=True)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, writing through a temporary file that is ``fsync``-ed and
    renamed over the target (:func:`deepseg.io.atomic_open`), and reading without pickle."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        with atomic_open(path, "wb") as fh:
            torch.save(checkpoint, fh)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint(path, map_location)


@dataclass
class Resume:
    """A loaded checkpoint to resume a phase from.

    Attributes:
        path: its file.
        checkpoint: its contents.
        epochs_done: epochs of the phase completed when it was written.
        done: whether the phase had ended (its last epoch, or the method's own stop).
    """

    path: Path
    checkpoint: dict[str, Any]
    epochs_done: int
    done: bool


class PhaseCheckpoint(L.Callback):
    """Writes the checkpoints of one training phase and finds the one to resume from.

    Args:
        directory: where the checkpoints go (created when the first is written).
        phase: "pretrain" or "cluster".
        key: the phase's :func:`fingerprint`.
        every_n_epochs: write after this many epochs since the previous one (0: not by count).
        every_n_seconds: ... or once this many seconds have passed (0: not by time).
        keep: the newest checkpoints of the phase kept on disk.
    """

    def __init__(
        self,
        directory: str | Path,
        phase: str,
        key: str,
        every_n_epochs: int = 0,
        every_n_seconds: float = 60.0,
        keep: int = 2,
    ) -> None:
        if phase not in PHASES:
            raise ValueError(f"The checkpoint phase must be one of {list(PHASES)}. Got {phase!r}.")
        self.directory = Path(directory)
        self.phase = phase
        self.key = key
        self.every_n_epochs = int(every_n_epochs)
        self.every_n_seconds = float(every_n_seconds)
        self.keep = int(keep)
        self._last_epoch = 0
        self._last_time = 0.0
        self._meta: dict[str, Any] = {}

    @property
    def state_key(self) -> str:
        return f"PhaseCheckpoint[{self.phase}]"

    # -- finding -------------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """This phase's checkpoints (of this fingerprint), newest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = _NAME.match(path.name)
            if match and match["phase"] == self.phase and match["fp"] == self.key:
                found.append((int(match["epochs"]), path))
        return [path for _, path in sorted(found, reverse=True)]

    def resume(self, max_epochs: int) -> Resume | None:
        """The newest checkpoint of the phase that loads, or None; logs which one it took.

        Args:
            max_epochs: the phase's epochs, for the log line.
        """
        for path in self.files():
            try:
                checkpoint = load_checkpoint(path, map_location="cpu")
                meta = checkpoint["deepseg"]
                epochs_done, done = int(meta["epochs_done"]), bool(meta["done"])
            except Exception as exc:  # a damaged file: any error torch.load raises
                logger.warning(
                    "Skipping the checkpoint %s, which does not load (%s: %s); trying the one "
                    "before it.", path, type(exc).__name__, exc,
                )  # fmt: skip
                continue
            logger.info(
                "Resumed from checkpoint %s (%s epoch %d of %d%s)",
                path, PHASES[self.phase], epochs_done, max_epochs,
                ", the phase had ended" if done else "",
            )  # fmt: skip
            return Resume(path, checkpoint, epochs_done, done)
        return None

    # -- writing -------------------------------------------------------------------------------

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_epoch = int(trainer.current_epoch)
        self._last_time = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The loop has not counted this epoch as completed yet
        epochs_done = int(trainer.current_epoch) + 1
        done = bool(trainer.should_stop) or (
            trainer.max_epochs is not None and epochs_done >= trainer.max_epochs
        )
        by_count = (
            self.every_n_epochs > 0 and epochs_done - self._last_epoch >= self.every_n_epochs
        )
        by_time = (
            self.every_n_seconds > 0 and time.monotonic() - self._last_time >= self.every_n_seconds
        )
        if done or by_count or by_time:
            self.save(trainer, epochs_done, done)

    def save(self, trainer: L.Trainer, epochs_done: int, done: bool) -> Path:
        """Write the checkpoint after ``epochs_done`` epochs; prune the older ones."""
        path = self.directory / f"{self.phase}-{self.key}-e{epochs_done:05d}.ckpt"
        self._meta = {
            "phase": self.phase,
            "fingerprint": self.key,
            "epochs_done": epochs_done,
            "global_step": int(trainer.global_step),
            "done": done,
        }
        start = time.perf_counter()
        trainer.save_checkpoint(path, weights_only=False)  # with the callbacks: RNG states
        logger.debug("Wrote %s in %.3fs", path, time.perf_counter() - start)
        self._last_epoch, self._last_time = epochs_done, time.monotonic()
        if trainer.is_global_zero:
            for old in self.files()[self.keep :]:
                old.unlink(missing_ok=True)
        return path

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["deepseg"] = dict(self._meta)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Restored before the fit loop makes its first data-loader iterator, which draws from
        # torch's RNG as the uninterrupted fit's next epoch did
        set_rng_states(state_dict["rng"])


def phase_checkpoint(
    checkpoint: Mapping[str, Any] | None, phase: str, **key_parts: Any
) -> PhaseCheckpoint | None:
    """The callback of ``phase`` for the ``checkpoint`` options, None when they name no
    directory; ``key_parts`` make its :func:`fingerprint`."""
    opts = checkpoint_options(checkpoint)
    if opts["dir"] is None:
        return None
    return PhaseCheckpoint(
        opts["dir"],
        phase,
        fingerprint(phase=phase, **key_parts),
        every_n_epochs=opts["every_n_epochs"],
        every_n_seconds=opts["every_n_seconds"],
        keep=opts["keep"],
    )
