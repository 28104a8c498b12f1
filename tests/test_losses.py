import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepseg.losses import (
    kl_clustering_loss,
    kmeans_loss,
    reconstruction_loss,
    target_distribution,
)


def _soft_assignments(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(k), size=n)


def _target_numpy(q: np.ndarray, f: np.ndarray | None = None) -> np.ndarray:
    f = q.sum(axis=0) if f is None else f
    w = q**2 / f
    return w / w.sum(axis=1, keepdims=True)


# -- target_distribution -------------------------------------------------------------------------


def test_target_distribution_matches_a_hand_computation():
    q = _soft_assignments(50, 4, seed=0)
    p = target_distribution(torch.from_numpy(q)).numpy()
    assert p.shape == q.shape
    np.testing.assert_allclose(p, _target_numpy(q), rtol=1e-10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)


def test_target_distribution_on_a_shard_with_global_frequencies_equals_slicing_the_whole():
    q = _soft_assignments(60, 3, seed=1)
    # A skewed split so that the shard's own frequencies differ from the global ones
    q[:20] = q[:20] ** 4 / (q[:20] ** 4).sum(axis=1, keepdims=True)
    q_t = torch.from_numpy(q)
    whole = target_distribution(q_t)
    frequencies = q_t[:20].sum(dim=0) + q_t[20:].sum(dim=0)  # summed over both "processes"
    for shard in (slice(0, 20), slice(20, 60), slice(7, 41)):
        p = target_distribution(q_t[shard], frequencies)
        torch.testing.assert_close(p, whole[shard], rtol=1e-12, atol=0)
        np.testing.assert_allclose(p.numpy(), _target_numpy(q, q.sum(axis=0))[shard])
    # The frequencies matter: the shard alone gives a different target
    assert not torch.allclose(target_distribution(q_t[:20]), whole[:20])


def test_target_distribution_float32():
    q = torch.from_numpy(_soft_assignments(10, 5, seed=2)).float()
    p = target_distribution(q)
    assert p.dtype == torch.float32
    np.testing.assert_allclose(p.numpy(), _target_numpy(q.double().numpy()), rtol=1e-5)


# -- kl_clustering_loss --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_kl_clustering_loss_is_zero_when_p_equals_q(seed):
    q = torch.from_numpy(_soft_assignments(40, 5, seed)).float()
    assert abs(float(kl_clustering_loss(q, q.clone()))) < 1e-6


@pytest.mark.parametrize("seed", range(3))
def test_kl_clustering_loss_is_positive_and_matches_torch_kl_div(seed):
    q = torch.from_numpy(_soft_assignments(40, 5, seed)).float()
    p = target_distribution(q)
    loss = kl_clustering_loss(q, p)
    assert float(loss) > 1e-3
    expected = F.kl_div(q.log(), p, reduction="batchmean")
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-7)
    # and against numpy: sum over clusters, mean over the batch
    q_np, p_np = q.double().numpy(), p.double().numpy()
    by_hand = (p_np * np.log(p_np / q_np)).sum(axis=1).mean()
    assert float(loss) == pytest.approx(by_hand, rel=1e-4)


def test_kl_clustering_loss_is_positive_for_any_different_pair():
    rng = np.random.default_rng(3)
    for _ in range(20):
        q = torch.from_numpy(rng.dirichlet(np.ones(3), size=8)).float()
        p = torch.from_numpy(rng.dirichlet(np.ones(3), size=8)).float()
        assert float(kl_clustering_loss(q, p)) > 0


def test_kl_clustering_loss_treats_zero_targets_as_zero_contributions():
    q = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    p = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    loss = kl_clustering_loss(q, p)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, F.kl_div(q.log(), p, reduction="batchmean"))


def test_kl_clustering_loss_gradient_reaches_q_only_through_q():
    q = torch.tensor([[0.6, 0.4], [0.3, 0.7]], requires_grad=True)
    p = target_distribution(q.detach())
    kl_clustering_loss(q, p).backward()
    # d/dq of -p log q averaged over 2 rows
    torch.testing.assert_close(q.grad, -p / q.detach() / 2)


# -- kmeans_loss ---------------------------------------------------------------------------------


def test_kmeans_loss_matches_a_hand_computation():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(25, 3))
    centers = rng.normal(size=(4, 3))
    labels = rng.integers(0, 4, size=25)
    by_hand = np.mean([np.sum((z[i] - centers[labels[i]]) ** 2) for i in range(25)])
    loss = kmeans_loss(
        torch.from_numpy(z).float(), torch.from_numpy(centers).float(), torch.from_numpy(labels)
    )
    assert float(loss) == pytest.approx(by_hand, rel=1e-5)


def test_kmeans_loss_is_zero_on_the_centres():
    centers = torch.randn(3, 2)
    labels = torch.tensor([2, 0, 1, 2])
    assert float(kmeans_loss(centers[labels], centers, labels)) == 0.0


# -- reconstruction_loss -------------------------------------------------------------------------


def test_reconstruction_loss_is_mean_squared_error():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(12, 7)).astype(np.float32)
    x_hat = rng.normal(size=(12, 7)).astype(np.float32)
    loss = reconstruction_loss(torch.from_numpy(x_hat), torch.from_numpy(x))
    torch.testing.assert_close(loss, F.mse_loss(torch.from_numpy(x_hat), torch.from_numpy(x)))
    assert float(loss) == pytest.approx(np.mean((x_hat - x) ** 2), rel=1e-6)
    assert float(reconstruction_loss(torch.from_numpy(x), torch.from_numpy(x))) == 0.0
