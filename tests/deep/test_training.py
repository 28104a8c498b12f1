"""The pretraining phase of the skeleton: step budget, learning-rate schedule, epoch timing and
epoch-mean logging."""

import itertools

import numpy as np
import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from deepseg.deep.skeleton import (
    NARROW_DROPOUT,
    NARROW_MIN_STEPS,
    WIDE_MIN_STEPS,
    EpochTimer,
    build_autoencoder,
    is_wide,
    pretrain_autoencoder,
    pretrain_epochs,
    resolve_for_input,
)

AUTOENCODER = {"hidden_dims": [16], "latent_dim": 2}


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(100, 6)).astype(np.float32)


@pytest.fixture
def adam_lrs(monkeypatch):
    """The learning rate of every Adam step taken during the test."""
    seen = []
    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    return seen


@pytest.mark.parametrize(
    ("n_samples", "options", "expected"),
    [
        (1000, {"epochs": 5, "batch_size": 100, "min_steps": 0}, 5),  # no step budget
        (1000, {"epochs": 5, "batch_size": 100}, 60),  # the default budget: 600 steps
        (1000, {"epochs": 5, "batch_size": 100, "min_steps": 200}, 20),  # 10 steps an epoch
        (1001, {"epochs": 5, "batch_size": 100, "min_steps": 200}, 19),  # 11 steps an epoch
        (100_000, {"epochs": 5, "batch_size": 100, "min_steps": 200}, 5),  # budget already met
        (1000, {"epochs": 0, "min_steps": 200}, 0),  # epochs=0 still means no pretraining
        (200, {"epochs": 5}, 200),  # one batch an epoch: the raise stops at max_budget_epochs
        (200, {"epochs": 300}, 300),  # ... which never cuts the epochs asked for
        (200, {"epochs": 5, "max_budget_epochs": 0}, 5),
    ],
)
def test_min_steps_raises_the_epochs_of_small_data(n_samples, options, expected):
    assert pretrain_epochs(n_samples, options, n_features=6) == expected  # a narrow table


@pytest.mark.parametrize(
    ("input_dim", "hidden_dims", "wide"),
    [
        (66, [256, 256, 512], False),  # synthetic_customers' one-hot table
        (255, [256, 256, 512], False),
        (256, [256, 256, 512], True),  # as wide as the first hidden layer
        (784, [256, 256, 512], True),  # MNIST pixels
        (784, [1000], False),  # the rule follows the architecture, not a fixed width
        (3, [], True),  # no hidden layer widens anything
    ],
)
def test_an_input_is_wide_when_the_first_hidden_layer_does_not_widen_it(
    input_dim, hidden_dims, wide
):
    assert is_wide(input_dim, {"hidden_dims": hidden_dims}) is wide


def test_auto_dropout_and_min_steps_follow_the_width_and_explicit_values_are_kept():
    ae, pre = resolve_for_input(64, None, None)
    assert (ae["dropout"], pre["min_steps"]) == (NARROW_DROPOUT, NARROW_MIN_STEPS)
    ae, pre = resolve_for_input(384, None, {"epochs": 5})
    assert (ae["dropout"], pre["min_steps"], pre["epochs"]) == (0.0, WIDE_MIN_STEPS, 5)
    ae, pre = resolve_for_input(384, {"dropout": 0.3}, {"min_steps": 10})
    assert (ae["dropout"], pre["min_steps"]) == (0.3, 10)


def test_a_wide_input_pretrains_longer_and_without_dropout():
    # 10,000 rows at batch 256 are 40 steps an epoch: 600 steps = 15 epochs (30 asked),
    # 6,000 steps = 150 epochs
    assert pretrain_epochs(10_000, {}, n_features=64) == 30
    assert pretrain_epochs(10_000, {}, n_features=784) == 150
    assert pretrain_epochs(10_000, {"min_steps": 0}, n_features=784) == 30

    def dropouts(input_dim):
        ae_opts = resolve_for_input(input_dim, {"hidden_dims": [8]}, None)[0]
        ae = build_autoencoder(input_dim, ae_opts)
        return [m.p for m in ae.modules() if isinstance(m, torch.nn.Dropout)]

    assert dropouts(4) == [NARROW_DROPOUT, NARROW_DROPOUT]  # in the encoder and the decoder
    assert dropouts(8) == []


def test_pretraining_a_wide_input_builds_it_without_dropout():
    X = np.random.default_rng(0).normal(size=(64, 20)).astype(np.float32)
    wide = pretrain_autoencoder(X, {"hidden_dims": [16], "latent_dim": 2}, {"epochs": 1,
                                "min_steps": 0, "batch_size": 32})  # fmt: skip
    narrow = pretrain_autoencoder(X, {"hidden_dims": [32], "latent_dim": 2}, {"epochs": 1,
                                  "min_steps": 0, "batch_size": 32})  # fmt: skip
    assert wide.config["dropout"] == 0.0
    assert narrow.config["dropout"] == NARROW_DROPOUT


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"min_steps": -1},
            "'min_steps' must be an int in the range \\[0, inf\\) or one of \\['auto'\\]. Got -1",
        ),
        ({"min_steps": "many"}, "'min_steps' must be an int .* or one of \\['auto'\\]. Got 'many"),
        ({"epochs": 2.5}, "'epochs' must be an int"),
        ({"batch_size": 0}, "'batch_size' must be an int in the range \\[1, inf\\)"),
        ({"lr_schedule": "linear"}, "'lr_schedule' must be one of \\['constant', 'cosine'\\]"),
        ({"epoch": 3}, "Unknown pretrain option\\(s\\) \\['epoch'\\]"),
    ],
)
def test_bad_pretrain_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        pretrain_epochs(100, options, n_features=6)


def test_timer_counts_the_epochs_the_step_budget_asks_for(X):
    timer = EpochTimer()
    pretrain_autoencoder(
        X, AUTOENCODER, {"epochs": 1, "batch_size": 50, "min_steps": 8}, timer=timer
    )
    assert len(timer.epoch_seconds) == 4  # 2 steps an epoch
    assert all(s > 0 for s in timer.epoch_seconds)


def test_cosine_schedule_decays_the_learning_rate_to_zero(X, adam_lrs):
    seen = adam_lrs
    pretrain_autoencoder(
        X,
        AUTOENCODER,
        {"epochs": 5, "min_steps": 0, "batch_size": 50, "lr": 0.01, "lr_schedule": "cosine"},
    )
    assert len(seen) == 10
    assert seen[0] == pytest.approx(0.01)
    assert all(a > b for a, b in itertools.pairwise(seen))
    assert seen[-1] < 0.001


def test_constant_schedule_keeps_the_learning_rate(X, adam_lrs):
    seen = adam_lrs
    pretrain_autoencoder(
        X, AUTOENCODER, {"epochs": 2, "min_steps": 0, "batch_size": 50, "lr": 0.01}
    )
    assert seen == [pytest.approx(0.01)] * 4


def test_epoch_means_are_logged_once_per_epoch(X, tmp_path):
    # The per-step losses are accumulated and logged as epoch means under train/{name}
    logger = CSVLogger(tmp_path, name="run", version=0)
    pretrain_autoencoder(
        X, AUTOENCODER, {"epochs": 3, "min_steps": 0, "batch_size": 50}, trainer={"logger": logger}
    )
    frame = pd.read_csv(tmp_path / "run" / "version_0" / "metrics.csv")
    rows = frame.dropna(subset=["train/loss"])
    assert list(rows["epoch"]) == [0, 1, 2]
    assert (rows["train/loss"] == rows["train/rec_loss"]).all()
    assert rows["train/loss"].iloc[-1] < rows["train/loss"].iloc[0]


def test_clustering_phase_runs_without_dropout(X, monkeypatch):
    from deepseg.deep import DEC
    from deepseg.deep.dec import DECModule

    seen = []
    original = DECModule.training_step

    def spy(self, batch, batch_idx):
        dropouts = [m for m in self.autoencoder.modules() if isinstance(m, torch.nn.Dropout)]
        seen.append((self.training, [m.training for m in dropouts]))
        return original(self, batch, batch_idx)

    monkeypatch.setattr(DECModule, "training_step", spy)
    DEC(
        3,
        autoencoder={**AUTOENCODER, "dropout": 0.5},
        pretrain={"epochs": 1, "min_steps": 0, "batch_size": 50},
        epochs=2,
        batch_size=50,
        random_state=0,
    ).fit(X)
    assert len(seen) == 4
    for module_training, dropout_training in seen:
        assert module_training  # the rest of the network is in train mode
        assert dropout_training == [False, False]  # one dropout in the encoder, one in the decoder


# -- the device-resident path --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["DEC", "DCN", "VaDE"])
def test_device_resident_batches_give_the_dataloaders_result(X, monkeypatch, method):
    """The same seed and threads give the same network and labels on both batch paths: the same
    permutation, and the same draws from the global generator (dropout masks, VaDE's samples)."""
    import deepseg.deep as deep
    from deepseg.data.module import DeviceBatches, TensorDataModule

    def fit():
        paths.clear()
        model = getattr(deep, method)(
            3,
            autoencoder={**AUTOENCODER, "dropout": 0.2},
            pretrain={"epochs": 3, "min_steps": 0, "batch_size": 32},
            epochs=3,
            batch_size=32,
            random_state=0,
        ).fit(X)
        return model, set(paths)

    paths: list[str] = []
    original = TensorDataModule.train_dataloader

    def spy(self):
        loader = original(self)
        paths.append("device" if isinstance(loader, DeviceBatches) else "dataloader")
        return loader

    monkeypatch.setattr(TensorDataModule, "train_dataloader", spy)
    resident, resident_paths = fit()
    monkeypatch.setattr(TensorDataModule, "resident_device", lambda self: None)
    loaded, loaded_paths = fit()
    assert resident_paths == {"device"} and loaded_paths == {"dataloader"}
    assert np.array_equal(resident.labels_, loaded.labels_)
    ours, theirs = resident.autoencoder_.state_dict(), loaded.autoencoder_.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_nothing_reads_the_epoch_means_so_none_are_logged(X, monkeypatch):
    import lightning as L

    from deepseg.deep.skeleton import AutoencoderModule

    logged = []
    monkeypatch.setattr(AutoencoderModule, "log", lambda self, name, *a, **k: logged.append(name))
    pretrain_autoencoder(X, AUTOENCODER, {"epochs": 2, "min_steps": 0, "batch_size": 50})
    assert logged == []
    pretrain_autoencoder(
        X, AUTOENCODER, {"epochs": 2, "min_steps": 0, "batch_size": 50},
        trainer={"callbacks": [EpochTimer(), L.Callback()]},  # a callback of the user's
    )  # fmt: skip
    assert logged == ["train/rec_loss", "train/loss"] * 2


def test_capture_step_is_checked_and_changes_nothing_on_the_cpu(X):
    from deepseg.deep import DEC

    with pytest.raises(ValueError, match="'capture_step' must be a bool"):
        DEC(3, trainer={"capture_step": "yes"}).fit(X)
    common = {
        "autoencoder": AUTOENCODER,
        "pretrain": {"epochs": 2, "min_steps": 0, "batch_size": 50},
        "epochs": 2,
        "batch_size": 50,
        "random_state": 0,
    }
    eager = DEC(3, **common).fit(X)
    asked = DEC(3, trainer={"capture_step": True}, **common).fit(X)
    assert np.array_equal(eager.labels_, asked.labels_)
