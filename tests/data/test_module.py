from types import SimpleNamespace

import numpy as np
import pytest
import torch

from deepseg.data.module import IndexBatchSampler, TensorDataModule


def _epoch(sampler: IndexBatchSampler) -> list[torch.Tensor]:
    return list(iter(sampler))


def _order(batches: list[torch.Tensor]) -> np.ndarray:
    return torch.cat(batches).numpy()


# -- IndexBatchSampler ---------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [True, False])
def test_sampler_covers_every_row_exactly_once_per_epoch(shuffle):
    sampler = IndexBatchSampler(103, batch_size=10, shuffle=shuffle, seed=0)
    for _ in range(3):
        batches = _epoch(sampler)
        assert len(batches) == len(sampler) == 11
        assert [len(b) for b in batches] == [10] * 10 + [3]
        assert all(b.dtype == torch.int64 for b in batches)
        np.testing.assert_array_equal(np.sort(_order(batches)), np.arange(103))


def test_sampler_without_shuffle_keeps_the_row_order():
    sampler = IndexBatchSampler(25, batch_size=7, shuffle=False)
    np.testing.assert_array_equal(_order(_epoch(sampler)), np.arange(25))
    np.testing.assert_array_equal(_order(_epoch(sampler)), np.arange(25))


def test_sampler_reshuffles_every_epoch():
    sampler = IndexBatchSampler(100, batch_size=16, shuffle=True, seed=0)
    orders = [_order(_epoch(sampler)) for _ in range(3)]
    assert not np.array_equal(orders[0], np.arange(100))
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[1], orders[2])


def test_sampler_same_seed_same_orders_different_seed_different_orders():
    a, b = (IndexBatchSampler(100, 16, shuffle=True, seed=5) for _ in range(2))
    c = IndexBatchSampler(100, 16, shuffle=True, seed=6)
    for _ in range(3):
        order_a, order_b, order_c = (_order(_epoch(s)) for s in (a, b, c))
        np.testing.assert_array_equal(order_a, order_b)
        assert not np.array_equal(order_a, order_c)


def test_sampler_set_epoch_selects_that_epochs_order():
    walked = IndexBatchSampler(50, 8, shuffle=True, seed=1)
    orders = [_order(_epoch(walked)) for _ in range(4)]
    jumped = IndexBatchSampler(50, 8, shuffle=True, seed=1)
    jumped.set_epoch(3)
    np.testing.assert_array_equal(_order(_epoch(jumped)), orders[3])


@pytest.mark.parametrize("n", [100, 101])
def test_sampler_shards_are_disjoint_and_cover_every_row(n):
    ranks = [IndexBatchSampler(n, 16, shuffle=True, seed=3, rank=r, world_size=2) for r in (0, 1)]
    shard0, shard1 = (set(s.shard.tolist()) for s in ranks)
    # disjoint but for the wrap-around padding that evens out the shard lengths
    assert len(shard0 & shard1) == (-n) % 2
    assert shard0 | shard1 == set(range(n))
    assert len(ranks[0].shard) == len(ranks[1].shard)
    # Shards are a seeded random split, not the first and second half
    assert shard0 != set(range(len(shard0)))
    for sampler, shard in zip(ranks, (shard0, shard1)):
        for _ in range(2):  # each epoch covers exactly this process's shard, once
            order = _order(_epoch(sampler))
            assert len(order) == len(shard)
            assert set(order.tolist()) == shard
    # Every process computes the same split from the same seed
    again = IndexBatchSampler(n, 16, shuffle=False, seed=3, rank=0, world_size=2)
    assert set(again.shard.tolist()) == shard0


# -- TensorDataModule ----------------------------------------------------------------------------


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(70, 5))  # float64 on purpose


def test_datamodule_batches_are_rows_and_their_indices(X):
    dm = TensorDataModule(X, batch_size=16, seed=0)
    assert dm.X.dtype == torch.float32
    loader = dm.train_dataloader()
    # No per-sample fetching and collating: the sampler's index tensor is the batch
    assert loader.batch_size is None
    assert isinstance(loader.sampler, IndexBatchSampler)
    batches = list(loader)
    assert len(batches) == 5
    seen = []
    for batch in batches:
        assert len(batch) == 2
        x, index = batch
        assert x.dtype == torch.float32
        assert index.dtype == torch.int64
        assert x.shape == (len(index), 5)
        assert torch.equal(x, torch.from_numpy(X[index.numpy()].astype(np.float32)))
        seen.extend(index.tolist())
    assert sorted(seen) == list(range(70))
    assert seen != list(range(70))  # shuffled by default


def test_datamodule_fetches_each_batch_in_one_slice(X, monkeypatch):
    dm = TensorDataModule(X, batch_size=16)
    loader = dm.train_dataloader()
    calls = []
    getitem = type(loader.dataset).__getitem__

    def spy(self, index):
        calls.append(index)
        return getitem(self, index)

    monkeypatch.setattr(type(loader.dataset), "__getitem__", spy)
    list(loader)
    assert len(calls) == 5
    assert all(isinstance(c, torch.Tensor) and c.ndim == 1 for c in calls)


def test_datamodule_same_seed_same_batches(X):
    def orders(seed):
        loader = TensorDataModule(X, batch_size=16, seed=seed).train_dataloader()
        return [index.tolist() for _, index in loader]

    assert orders(4) == orders(4)
    assert orders(4) != orders(5)


def test_datamodule_shards_rows_by_the_trainers_rank(X):
    shards = []
    for rank in (0, 1):
        dm = TensorDataModule(X, batch_size=16, seed=2)
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        shard = set(dm.shard_indices().tolist())
        loaded = [i for _, index in dm.train_dataloader() for i in index.tolist()]
        assert sorted(loaded) == sorted(shard)
        shards.append(shard)
    assert not shards[0] & shards[1]
    assert shards[0] | shards[1] == set(range(70))


def test_datamodule_without_trainer_owns_every_row(X):
    dm = TensorDataModule(X, batch_size=16)
    np.testing.assert_array_equal(dm.shard_indices().numpy(), np.arange(70))


def test_shards_are_padded_to_equal_length():
    # every process must run the same number of steps under data-parallel training
    from deepseg.data.module import IndexBatchSampler

    samplers = [IndexBatchSampler(97, 16, rank=r, world_size=2) for r in (0, 1)]
    assert [len(s) for s in samplers] == [4, 4]
    assert len(samplers[0].shard) == len(samplers[1].shard) == 49
    assert set(samplers[0].shard.tolist()) | set(samplers[1].shard.tolist()) == set(range(97))


# -- the device-resident path --------------------------------------------------------------------


def _trainer(world_size: int = 1) -> SimpleNamespace:
    strategy = SimpleNamespace(root_device=torch.device("cpu"))
    return SimpleNamespace(global_rank=0, world_size=world_size, strategy=strategy)


def test_device_batches_equal_the_dataloaders_epoch_after_epoch(X):
    from deepseg.data.module import DeviceBatches

    loader = TensorDataModule(X, batch_size=16, seed=3).train_dataloader()
    dm = TensorDataModule(X, batch_size=16, seed=3)
    dm.trainer = _trainer()
    resident = dm.train_dataloader()
    assert isinstance(resident, DeviceBatches)
    assert len(resident) == len(loader) == 5
    for epoch in range(3):
        # Lightning calls set_epoch on either path's sampler
        loader.sampler.set_epoch(epoch)
        resident.sampler.set_epoch(epoch)
        torch.manual_seed(epoch)
        theirs = list(loader)
        after_theirs = torch.rand(3)
        torch.manual_seed(epoch)
        ours = list(resident)
        # the global generator (dropout, noise) is left where the DataLoader leaves it
        assert torch.equal(torch.rand(3), after_theirs)
        assert len(theirs) == len(ours)
        for (x_a, i_a), (x_b, i_b) in zip(theirs, ours, strict=True):
            assert torch.equal(i_a, i_b)
            assert torch.equal(x_a, x_b)


def test_device_batches_slice_the_matrix_moved_once(X):
    dm = TensorDataModule(X, batch_size=16)
    dm.trainer = _trainer()
    device_X = dm.on_device(torch.device("cpu"))
    assert device_X is dm.X  # on the CPU, the matrix itself: no copy
    assert dm.train_dataloader().X is device_X


def test_memory_mapped_matrices_and_shards_keep_the_dataloader(X, tmp_path):
    from torch.utils.data import DataLoader

    from deepseg.data.module import is_memory_mapped

    mapped = np.memmap(tmp_path / "X.f32", dtype=np.float32, mode="w+", shape=X.shape)
    mapped[:] = X
    assert is_memory_mapped(mapped) and is_memory_mapped(np.asarray(mapped)[5:])
    assert not is_memory_mapped(np.asarray(X))
    dm = TensorDataModule(mapped, batch_size=16)
    dm.trainer = _trainer()
    assert isinstance(dm.train_dataloader(), DataLoader)
    dm = TensorDataModule(X, batch_size=16)
    dm.trainer = _trainer(world_size=2)
    assert isinstance(dm.train_dataloader(), DataLoader)
    dm = TensorDataModule(X, batch_size=16, device_resident=False)
    dm.trainer = _trainer()
    assert isinstance(dm.train_dataloader(), DataLoader)
