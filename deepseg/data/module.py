"""In-memory batches for training: index slicing of one tensor, no per-sample collate.

Batches are ``(x, index)``: the rows and their positions in the full data, so that modules can
look up per-sample targets (DEC's target distribution) by index. Under data-parallel training each
process owns a fixed shard of the rows (reshuffled within the shard every epoch), so per-sample
statistics a process computes always cover the rows it trains on.

Two ways to the same batches: with one process and a matrix that is in memory (not memory-mapped)
and fits the training device, :class:`DeviceBatches` moves the matrix to the device once and
slices each batch there, in the order of the epoch's seeded permutation (moved once an epoch);
otherwise a ``DataLoader`` over :class:`IndexBatchSampler` slices it on the host. Both draw the
same permutation, so on the CPU they give the same batches, element for element.
"""

from __future__ import annotations

import logging
import mmap
from collections.abc import Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

logger = logging.getLogger(__name__)

#: A matrix is kept on a CUDA device when it takes at most this share of the device's free memory
#: (the rest is for the network, its activations and the whole-data passes).
DEVICE_MEMORY_SHARE = 0.5


class _RowsByIndex(Dataset):
    """``dataset[list_of_indices]`` returns the whole batch at once."""

    def __init__(self, X: torch.Tensor) -> None:
        self.X = X

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[index], index


class IndexBatchSampler(Sampler[torch.Tensor]):
    """Yields index tensors of whole batches from this process's shard of the rows.

    Args:
        n_samples: number of rows in the full data.
        batch_size: rows per batch.
        shuffle: reshuffle within the shard every epoch.
        seed: base seed; epoch ``e`` uses ``seed + e``.
        rank: this process's rank.
        world_size: number of processes; shard ``rank`` holds rows ``rank::world_size`` of a
            fixed seeded permutation, padded by wrapping around so that every shard has the
            same length (every process must run the same number of steps).
    """

    def __init__(
        self,
        n_samples: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0
        if world_size > 1:
            order = torch.from_numpy(np.random.default_rng(seed).permutation(n_samples))
            padded = -(-n_samples // world_size) * world_size
            order = torch.cat([order, order[: padded - n_samples]])
        else:
            order = torch.arange(n_samples)
        self.shard = order[rank::world_size].clone()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.shard) + self.batch_size - 1) // self.batch_size

    def epoch_order(self) -> torch.Tensor:
        """The shard's rows in this epoch's order (drawn on the CPU, so that every device gets
        the same order); advances to the next epoch."""
        idx = self.shard
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            idx = idx[torch.randperm(len(idx), generator=g)]
            self.epoch += 1  # also advances when nobody calls set_epoch
        return idx

    def __iter__(self) -> Iterator[torch.Tensor]:
        yield from torch.split(self.epoch_order(), self.batch_size)


class DeviceBatches:
    """The batches of an :class:`IndexBatchSampler`, sliced from a matrix already on the device.

    Each epoch's order is drawn on the CPU as the sampler draws it and moved to the device in
    one copy; every batch is then one indexing on the device: no DataLoader, no per-step host
    copy. Lightning finds the sampler as ``sampler`` and calls its ``set_epoch``, as it does for
    a DataLoader's, so a resumed fit continues with the same orders.

    Args:
        X: the matrix, on the training device, of shape (n_samples, n_features).
        sampler: the batch order.
    """

    def __init__(self, X: torch.Tensor, sampler: IndexBatchSampler) -> None:
        self.X = X
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # Nothing happens before the first batch is asked for: Lightning calls iter() once
        # more, to check that this is iterable, without drawing from it.
        # A DataLoader's iterator draws one int64 from torch's global generator (its workers'
        # base seed) when an epoch starts; drawing it too keeps the global stream, which dropout
        # masks and input noise draw from, where the DataLoader leaves it: the same labels
        torch.empty((), dtype=torch.int64).random_()
        order = self.sampler.epoch_order().to(self.X.device, non_blocking=True)
        for index in torch.split(order, self.sampler.batch_size):
            yield self.X[index], index


def is_memory_mapped(X: Any) -> bool:
    """Whether X (an array, or a view of one) lives in a memory-mapped file."""
    while X is not None:
        if isinstance(X, np.memmap | mmap.mmap):
            return True
        X = getattr(X, "base", None)
    return False


def fits_device(nbytes: int, device: torch.device) -> bool:
    """Whether a matrix of ``nbytes`` may live on ``device``: always on the CPU (it is in RAM
    already), within :data:`DEVICE_MEMORY_SHARE` of the free memory on a CUDA device."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_MEMORY_SHARE * free


class TensorDataModule(L.LightningDataModule):
    """A LightningDataModule over one float32 matrix.

    Under a Trainer with one process, a matrix that is not memory-mapped and fits the device
    (:func:`fits_device`) is trained on from the device (:class:`DeviceBatches`); otherwise (a
    memory-mapped matrix, data-parallel shards, no Trainer) batches come from a DataLoader.

    Args:
        X: array of shape (n_samples, n_features).
        batch_size: rows per batch.
        shuffle: shuffle the training batches.
        seed: shuffling seed.
        device_resident: allow the device-resident path (False: always the DataLoader).
    """

    def __init__(
        self,
        X: np.ndarray | torch.Tensor,
        batch_size: int = 256,
        shuffle: bool = True,
        seed: int = 0,
        device_resident: bool = True,
    ):
        super().__init__()
        self.memory_mapped = is_memory_mapped(X)
        self.X = torch.as_tensor(np.asarray(X, dtype=np.float32))
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.device_resident = bool(device_resident)
        self._on_device: torch.Tensor | None = None

    def on_device(self, device: torch.device) -> torch.Tensor:
        """X on ``device``, copied there once (the CPU tensor itself on the CPU)."""
        if self._on_device is None or self._on_device.device != device:
            self._on_device = self.X.to(device)
        return self._on_device

    def resident_device(self) -> torch.device | None:
        """The device to train from, when the device-resident path applies; else None."""
        trainer = getattr(self, "trainer", None)
        if trainer is None or not self.device_resident or self.memory_mapped:
            return None
        if int(trainer.world_size) > 1:  # every process trains on its own shard
            return None
        device = torch.device(trainer.strategy.root_device)
        if not fits_device(self.X.element_size() * self.X.nelement(), device):
            logger.info("Feature matrix does not fit %s: batches come from the host", device)
            return None
        return device

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        # The device-resident batches are there already: no per-step walk over the batch
        x, index = batch
        if x.device == device and index.device == device:
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def train_dataloader(self) -> DataLoader | DeviceBatches:
        rank, world = self._rank_world()
        sampler = IndexBatchSampler(
            len(self.X), self.batch_size, self.shuffle, self.seed, rank, world
        )
        device = self.resident_device()
        if device is not None:
            return DeviceBatches(self.on_device(device), sampler)
        # batch_size=None: the sampler's index tensor is the batch, fetched in one slice
        return DataLoader(_RowsByIndex(self.X), sampler=sampler, batch_size=None)

    def shard_indices(self) -> torch.Tensor:
        """The rows this process trains on."""
        rank, world = self._rank_world()
        return IndexBatchSampler(len(self.X), self.batch_size, False, self.seed, rank, world).shard
