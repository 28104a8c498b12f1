"""Lightning callbacks used by every phase of the training skeleton."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


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
