"""Checkpoints of the deep fits (deepseg.deep.checkpoint): a fit stopped after some epochs and
fitted again from its checkpoints gives the labels (and centres) of an uninterrupted one; a
damaged newest checkpoint falls back to the previous one; a kill during a checkpoint write
leaves the previous one usable."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from deepseg.cli.common import config_dir
from deepseg.deep import DCN, DEC, IDEC, VaDE
from deepseg.deep.checkpoint import DEFAULT_CHECKPOINT, checkpoint_options
from deepseg.tasks.common import to_container
from tests.conftest import PROJECT_ROOT

X = np.random.default_rng(0).normal(size=(240, 6)).astype(np.float32)
X[:80] += 3.0
X[80:160] -= 3.0
SMALL = {
    "autoencoder": {"hidden_dims": [16], "latent_dim": 3},
    "pretrain": {"epochs": 8, "min_steps": 0, "batch_size": 64},
    "trainer": {"enable_progress_bar": False},
    "n_clusters": 3,
    "random_state": 0,
    "epochs": 9,
    "batch_size": 64,
}


class Killed(RuntimeError):
    """Stands for a kill: ends the fit at the start of an epoch, after that epoch's
    predecessor wrote its checkpoint."""


class KillAt(L.Callback):
    def __init__(self, phase: str, epoch: int) -> None:
        self.phase, self.epoch = phase, epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        phase = "cluster" if hasattr(pl_module, "refresh") else "pretrain"
        if phase == self.phase and trainer.current_epoch == self.epoch:
            raise Killed(f"{phase} epoch {self.epoch}")


def fit(cls, checkpoint=None, kill=None, **extra):
    params = {**SMALL, **extra}
    if kill is not None:
        params["trainer"] = {**params["trainer"], "callbacks": [KillAt(*kill)]}
    return cls(**params, checkpoint=checkpoint).fit(X)


def head_state(est) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in est.module_.state_dict().items()}


@pytest.mark.parametrize(
    ("cls", "extra"),
    [
        (DEC, {"update_interval": 2, "tol": 0.0}),  # refreshes mid-epoch: p, labels in the state
        (IDEC, {"update_interval": 3, "tol": 0.0}),
        (DCN, {}),
        # an epoch-interval LR schedule (a decay after epoch 10) and a decoder variance set at
        # the start
        (VaDE, {"epochs": 13}),
    ],
)
def test_a_fit_resumed_from_its_checkpoints_equals_an_uninterrupted_one(
    tmp_path, caplog, cls, extra
):
    reference = fit(cls, **extra)
    # checkpoints alone change nothing
    every = {"dir": str(tmp_path / "ckpt"), "every_n_epochs": 2, "every_n_seconds": 0}
    assert np.array_equal(fit(cls, every, **extra).labels_, reference.labels_)
    for kill in (("pretrain", 5), ("cluster", 5)):
        directory = tmp_path / f"{kill[0]}-killed"
        opts = {**every, "dir": str(directory)}
        with pytest.raises(Killed):
            fit(cls, opts, kill=kill, **extra)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="deepseg.deep.checkpoint"):
            resumed = fit(cls, opts, **extra)
        phase = "pretraining" if kill[0] == "pretrain" else "clustering"
        assert f"({phase} epoch 4 of " in caplog.text, caplog.text  # the newest before the kill
        assert np.array_equal(resumed.labels_, reference.labels_), kill
        ours, theirs = head_state(resumed), head_state(reference)
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), kill  # bit for bit
        assert resumed.n_epochs_ == reference.n_epochs_
        assert resumed.n_steps_ == reference.n_steps_
    # both phases ended: a fit on the same directory only loads them
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deepseg.deep.checkpoint"):
        again = fit(cls, opts, **extra)
    assert caplog.text.count("the phase had ended") == 2
    assert np.array_equal(again.labels_, reference.labels_)


def test_dec_tolerance_stop_survives_a_resume(tmp_path):
    extra = {"update_interval": 4, "tol": 0.001, "epochs": 40}
    reference = fit(DEC, **extra)
    assert reference.stopped_early_ and reference.n_epochs_ < 40
    opts = {"dir": str(tmp_path), "every_n_epochs": 1, "every_n_seconds": 0}
    with pytest.raises(Killed):
        fit(DEC, opts, kill=("cluster", 2), **extra)
    resumed = fit(DEC, opts, **extra)
    assert resumed.stopped_early_ and resumed.n_epochs_ == reference.n_epochs_
    assert np.array_equal(resumed.labels_, reference.labels_)
    done = fit(DEC, opts, **extra)  # from the final checkpoint, without training
    assert done.stopped_early_ and done.n_steps_ == reference.n_steps_


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    reference = fit(DEC, update_interval=2, tol=0.0)
    opts = {"dir": str(tmp_path), "every_n_epochs": 2, "every_n_seconds": 0}
    with pytest.raises(Killed):
        fit(DEC, opts, kill=("cluster", 7), update_interval=2, tol=0.0)
    newest, previous = sorted(tmp_path.glob("cluster-*.ckpt"), reverse=True)
    assert newest.name.endswith("e00006.ckpt") and previous.name.endswith("e00004.ckpt")
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a torn file
    with caplog.at_level(logging.INFO, logger="deepseg.deep.checkpoint"):
        resumed = fit(DEC, opts, update_interval=2, tol=0.0)
    assert f"Skipping the checkpoint {newest}" in caplog.text
    assert f"Resumed from checkpoint {previous} (clustering epoch 4 of 9)" in caplog.text
    assert np.array_equal(resumed.labels_, reference.labels_)


KILL_DURING_WRITE = """
import os, signal, sys
import numpy as np, torch
import deepseg.deep.checkpoint as ckpt
from tests.deep.test_checkpoint import SMALL, X
from deepseg.deep import DEC

torch.set_num_threads(1)
real_save = torch.save

def save_half_then_die(obj, fh, *args, **kwargs):
    if getattr(fh, "name", "").find("cluster-") >= 0 and "e00006" in fh.name:
        import io
        buffer = io.BytesIO()
        real_save(obj, buffer)
        fh.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # halfway through the write
    real_save(obj, fh, *args, **kwargs)

ckpt.torch.save = save_half_then_die
DEC(**SMALL, update_interval=2, tol=0.0, checkpoint=eval(sys.argv[1])).fit(X)
"""


def test_a_kill_during_a_checkpoint_write_resumes_from_the_previous(tmp_path, caplog):
    opts = {"dir": str(tmp_path / "ckpt"), "every_n_epochs": 2, "every_n_seconds": 0}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILL_DURING_WRITE), repr(opts)],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr[-3000:]
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    # the torn write is a temporary file beside the previous checkpoint, which is whole
    assert any(n.startswith(".cluster-") and "e00006" in n and n.endswith(".tmp") for n in files)
    assert not any(n.startswith("cluster-") and "e00006" in n for n in files), files
    with caplog.at_level(logging.INFO):
        resumed = fit(DEC, opts, update_interval=2, tol=0.0)
    assert "(clustering epoch 4 of 9)" in caplog.text
    assert "left by an interrupted write" in caplog.text  # the torn file is cleaned up
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "ckpt").iterdir())
    assert np.array_equal(resumed.labels_, fit(DEC, update_interval=2, tol=0.0).labels_)


def test_no_directory_no_files_and_the_options_are_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit(DEC, epochs=1)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"Unknown checkpoint option\(s\) \['every'\]"):
        fit(DEC, {"dir": "x", "every": 1})
    with pytest.raises(ValueError, match="'keep' parameter of checkpoint must be an int"):
        checkpoint_options({"keep": 0})


def test_the_train_config_holds_the_checkpoint_defaults():
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train")
    node = to_container(cfg.checkpoint)
    assert node.pop("enabled") is True
    assert node == {k: v for k, v in DEFAULT_CHECKPOINT.items() if k != "dir"}
