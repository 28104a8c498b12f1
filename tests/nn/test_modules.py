import json

import numpy as np
import pytest
import torch
from torch import nn

from deepseg.nn.heads import StudentTAssignment
from deepseg.nn.modules import MLP, Autoencoder, corrupt


def _layer_types(module: nn.Module) -> list[type]:
    return [type(layer) for layer in module]


# -- MLP -----------------------------------------------------------------------------------------


def test_mlp_default_is_linear_relu_linear_without_output_activation():
    mlp = MLP([5, 8, 3])
    assert _layer_types(mlp) == [nn.Linear, nn.ReLU, nn.Linear]
    assert [(m.in_features, m.out_features) for m in mlp if isinstance(m, nn.Linear)] == [
        (5, 8),
        (8, 3),
    ]
    assert mlp(torch.randn(7, 5)).shape == (7, 3)


@pytest.mark.parametrize(
    ("norm", "norm_type"), [("none", None), ("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm)]
)
def test_mlp_norm_sits_between_each_hidden_linear_and_its_activation(norm, norm_type):
    mlp = MLP([5, 8, 6, 3], norm=norm)
    hidden = [nn.Linear, nn.ReLU] if norm_type is None else [nn.Linear, norm_type, nn.ReLU]
    assert _layer_types(mlp) == [*hidden, *hidden, nn.Linear]
    if norm_type is nn.BatchNorm1d:
        assert [m.num_features for m in mlp if isinstance(m, nn.BatchNorm1d)] == [8, 6]
    if norm_type is nn.LayerNorm:
        assert [m.normalized_shape for m in mlp if isinstance(m, nn.LayerNorm)] == [(8,), (6,)]


def test_mlp_dropout_follows_each_hidden_activation_with_the_given_rate():
    mlp = MLP([5, 8, 6, 3], dropout=0.25)
    assert _layer_types(mlp) == [
        nn.Linear,
        nn.ReLU,
        nn.Dropout,
        nn.Linear,
        nn.ReLU,
        nn.Dropout,
        nn.Linear,
    ]
    assert all(m.p == 0.25 for m in mlp if isinstance(m, nn.Dropout))
    assert not any(isinstance(m, nn.Dropout) for m in MLP([5, 8, 3], dropout=0.0))


def test_mlp_last_activation_adds_norm_and_activation_after_the_last_layer():
    mlp = MLP([5, 8, 3], norm="layer", last_activation=True)
    assert _layer_types(mlp) == [
        nn.Linear,
        nn.LayerNorm,
        nn.ReLU,
        nn.Linear,
        nn.LayerNorm,
        nn.ReLU,
    ]
    assert (mlp(torch.randn(4, 5)) >= 0).all()


@pytest.mark.parametrize(
    ("name", "cls"),
    [("relu", nn.ReLU), ("gelu", nn.GELU), ("elu", nn.ELU), ("silu", nn.SiLU), ("tanh", nn.Tanh)],
)
def test_mlp_activation_names(name, cls):
    mlp = MLP([4, 6, 6, 2], activation=name)
    acts = [m for m in mlp if not isinstance(m, nn.Linear)]
    assert len(acts) == 2
    assert all(type(m) is cls for m in acts)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"activation": "sigmoid"}, "'activation'"), ({"norm": "group"}, "'norm'")],
)
def test_mlp_bad_option_raises_value_error_naming_it(kwargs, named):
    bad_value = next(iter(kwargs.values()))
    with pytest.raises(ValueError, match=named) as info:
        MLP([4, 2], **kwargs)
    assert bad_value in str(info.value)


@pytest.mark.parametrize("dims", [[4], [], [4, 0, 2], [4, -1]])
def test_mlp_bad_dims_raise_value_error(dims):
    with pytest.raises(ValueError, match="dims"):
        MLP(dims)


# -- Autoencoder ---------------------------------------------------------------------------------


def test_autoencoder_shapes_and_mirrored_layers():
    ae = Autoencoder(10, hidden_dims=[32, 16], latent_dim=3)
    x = torch.randn(9, 10)
    z, x_hat = ae(x)
    assert z.shape == (9, 3)
    assert x_hat.shape == (9, 10)
    assert ae.encode(x).shape == (9, 3)
    assert torch.equal(ae.encode(x), z)
    assert ae.latent_dim == 3

    def widths(mlp):
        return [(m.in_features, m.out_features) for m in mlp if isinstance(m, nn.Linear)]

    assert widths(ae.encoder) == [(10, 32), (32, 16), (16, 3)]
    assert widths(ae.decoder) == [(3, 16), (16, 32), (32, 10)]
    # Neither the embedding nor the reconstruction is squashed by an activation
    assert isinstance(ae.encoder[-1], nn.Linear)
    assert isinstance(ae.decoder[-1], nn.Linear)


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_autoencoder_config_rebuilds_an_identical_architecture(norm):
    torch.manual_seed(0)
    ae = Autoencoder(
        12, hidden_dims=(20, 8), latent_dim=4, activation="gelu", norm=norm, dropout=0.1
    )
    ae.train()
    ae(torch.randn(32, 12) * 3 + 1)  # moves BatchNorm running statistics away from their init
    ae.eval()

    config = json.loads(json.dumps(ae.config))  # plain JSON, storable next to the weights
    torch.manual_seed(123)  # a different initialisation, overwritten by the state dict
    rebuilt = Autoencoder(**config)
    assert str(rebuilt) == str(ae)
    x = torch.randn(16, 12)
    assert not torch.equal(rebuilt.eval()(x)[1], ae(x)[1])
    rebuilt.load_state_dict(ae.state_dict())  # strict: the same parameter and buffer names
    rebuilt.eval()
    z0, x0 = ae(x)
    z1, x1 = rebuilt(x)
    assert torch.equal(z0, z1)
    assert torch.equal(x0, x1)


def test_autoencoder_config_holds_every_constructor_argument():
    ae = Autoencoder(7, hidden_dims=[5], latent_dim=2, activation="elu", norm="layer", dropout=0.3)
    assert ae.config == {
        "input_dim": 7,
        "hidden_dims": [5],
        "latent_dim": 2,
        "activation": "elu",
        "norm": "layer",
        "dropout": 0.3,
    }


# -- corrupt -------------------------------------------------------------------------------------


@pytest.fixture
def batch():
    return torch.randn(400, 25, generator=torch.Generator().manual_seed(0)) + 5.0


def test_corrupt_none_or_zero_level_returns_the_same_tensor(batch):
    assert corrupt(batch, "none", 0.5) is batch
    for kind in ("gaussian", "mask", "swap"):
        assert corrupt(batch, kind, 0.0) is batch


def test_corrupt_bad_kind_raises_value_error_naming_it(batch):
    with pytest.raises(ValueError, match=r"'noise'.*'salt'"):
        corrupt(batch, "salt", 0.1)


def test_corrupt_gaussian_adds_noise_of_the_given_scale(batch):
    before = batch.clone()
    out = corrupt(batch, "gaussian", 0.3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(batch, before)  # a copy, not in place
    noise = (out - batch).numpy()
    assert (noise != 0).mean() > 0.99
    # 10,000 draws: the standard error of the std is ~0.002, of the mean ~0.003
    assert abs(noise.std() - 0.3) < 0.01
    assert abs(noise.mean()) < 0.015


@pytest.mark.parametrize("level", [0.1, 0.5])
def test_corrupt_mask_zeroes_about_level_of_the_entries(batch, level):
    out = corrupt(batch, "mask", level, generator=torch.Generator().manual_seed(2))
    zero = out == 0
    assert abs(zero.float().mean().item() - level) < 0.02  # standard error <= 0.005
    assert torch.equal(out[~zero], batch[~zero])  # untouched entries keep their values


def test_corrupt_swap_takes_values_from_the_same_column_of_other_rows():
    n, d, level = 200, 6, 0.4
    # Every entry is unique, so a value identifies the row and the column it came from
    x = torch.arange(n * d, dtype=torch.float32).reshape(n, d)
    out = corrupt(x, "swap", level, generator=torch.Generator().manual_seed(3))
    col_of = (out.long() % d).numpy()
    row_of = (out.long() // d).numpy()
    assert (col_of == np.arange(d)).all()
    assert ((row_of >= 0) & (row_of < n)).all()
    changed = (out != x).float().mean().item()
    # A hit entry keeps its value only when it draws its own row (chance 1/n)
    assert abs(changed - level * (1 - 1 / n)) < 0.04  # standard error ~0.014
    # The donors are spread over the batch, not one fixed row
    assert len(np.unique(row_of[out.numpy() != x.numpy()])) > n / 2


@pytest.mark.parametrize("kind", ["gaussian", "mask", "swap"])
def test_corrupt_is_reproducible_with_a_seeded_generator(batch, kind):
    a = corrupt(batch, kind, 0.3, generator=torch.Generator().manual_seed(7))
    b = corrupt(batch, kind, 0.3, generator=torch.Generator().manual_seed(7))
    c = corrupt(batch, kind, 0.3, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# -- StudentTAssignment --------------------------------------------------------------------------


def _student_t_numpy(z: np.ndarray, centers: np.ndarray, alpha: float) -> np.ndarray:
    sq = ((z[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    kernel = (1.0 + sq / alpha) ** (-(alpha + 1.0) / 2.0)
    return kernel / kernel.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_student_t_assignment_matches_the_formula(alpha):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(30, 4)).astype(np.float32)
    centers = rng.normal(scale=2.0, size=(5, 4)).astype(np.float32)
    head = StudentTAssignment(torch.from_numpy(centers), alpha=alpha)
    q = head(torch.from_numpy(z)).detach().numpy()
    assert q.shape == (30, 5)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(q, _student_t_numpy(z, centers, alpha), rtol=1e-4, atol=1e-6)
    # Every point is most strongly assigned to its nearest centre
    nearest = ((z[:, None] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)
    assert (q.argmax(axis=1) == nearest).all()


def test_student_t_assignment_centres_are_a_trainable_copy():
    centers = torch.zeros(3, 2)
    head = StudentTAssignment(centers)
    centers += 1.0
    assert torch.equal(head.centers.detach(), torch.zeros(3, 2))
    assert head.centers.requires_grad
    head(torch.randn(5, 2))[:, 0].sum().backward()
    assert head.centers.grad is not None and head.centers.grad.abs().sum() > 0
    # Equal centres: every cluster equally likely
    q = StudentTAssignment(torch.zeros(4, 2))(torch.randn(6, 2))
    np.testing.assert_allclose(q.detach().numpy(), 0.25, atol=1e-6)
