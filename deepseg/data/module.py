"""In-memory batches for training: index slicing of one tensor, no per-sample collate.

Batches are ``(x, index)``: the rows and their positions in the full data, so that modules can
look up per-sample targets (DEC's target distribution) by index. Under data-parallel training each
process owns a fixed shard of the rows (reshuffled within the shard every epoch), so per-sample
statistics a process computes always cover the rows it trains on.
"""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


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

    def __iter__(self) -> Iterator[torch.Tensor]:
        idx = self.shard
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            idx = idx[torch.randperm(len(idx), generator=g)]
            self.epoch += 1  # also advances when nobody calls set_epoch
        yield from torch.split(idx, self.batch_size)


class TensorDataModule(L.LightningDataModule):
    """A LightningDataModule over one in-memory float32 matrix.

    Args:
        X: array of shape (n_samples, n_features).
        batch_size: rows per batch.
        shuffle: shuffle the training batches.
        seed: shuffling seed.
    """

    def __init__(
        self,
        X: np.ndarray | torch.Tensor,
        batch_size: int = 256,
        shuffle: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        self.X = torch.as_tensor(np.asarray(X, dtype=np.float32))
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        sampler = IndexBatchSampler(
            len(self.X), self.batch_size, self.shuffle, self.seed, rank, world
        )
        # batch_size=None: the sampler's index tensor is the batch, fetched in one slice
        return DataLoader(_RowsByIndex(self.X), sampler=sampler, batch_size=None)

    def shard_indices(self) -> torch.Tensor:
        """The rows this process trains on."""
        rank, world = self._rank_world()
        return IndexBatchSampler(len(self.X), self.batch_size, False, self.seed, rank, world).shard
