"""One source of defaults: the estimators and the packaged configs agree.

The ``DEFAULT_*`` dicts of :mod:`deepseg.deep.skeleton` are what an estimator uses for unset
grouped options; the configs ``autoencoder/default``, ``pretrain/default`` and
``trainer/default`` must hold the same values, and every method config the same values as its
estimator's own parameters. The end-to-end check: ``DEC().fit(X)`` and ``deepseg-train
model=dec`` on the same matrix and seed give the same labels.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import get_class

from deepseg.cli.common import config_dir
from deepseg.deep import DEC, skeleton
from deepseg.features.pipeline import FeaturePipeline
from deepseg.tasks.common import to_container
from deepseg.tasks.run import load_dataset
from tests.cli.scripts import console_script

DEEP_METHODS = ["ae_kmeans", "ae_gmm", "dec", "idec", "dcn", "vade", "n2d"]
# Trainer options that change how a run is shown, never its result
DISPLAY_ONLY = {"enable_progress_bar", "logger", "default_root_dir"}


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("benchmark", overrides=list(overrides))


def test_grouped_option_configs_equal_the_estimator_defaults():
    cfg = _compose()
    assert to_container(cfg.autoencoder) == skeleton.DEFAULT_AUTOENCODER
    assert to_container(cfg.pretrain) == skeleton.DEFAULT_PRETRAIN
    trainer = to_container(cfg.trainer)
    assert {k: trainer[k] for k in skeleton.DEFAULT_TRAINER} == skeleton.DEFAULT_TRAINER


@pytest.mark.parametrize("method", DEEP_METHODS)
def test_every_method_config_equals_its_estimator_defaults(method):
    node = to_container(_compose().model[method])
    cls = get_class(node.pop("_target_"))
    fields = {f.name: f.default for f in dataclasses.fields(cls)}
    # config keys are constructor argument names
    assert set(node) <= set(fields), sorted(set(node) - set(fields))
    for grouped in ("autoencoder", "pretrain", "trainer"):
        node.pop(grouped)  # interpolated from the groups checked above
    assert node == {k: fields[k] for k in node}


@pytest.mark.slow  # two full default fits (about a minute)
def test_estimator_and_train_command_build_the_same_model(tmp_path: Path):
    """``DEC(n_clusters=10, random_state=0).fit(X)`` with every default equals
    ``deepseg-train model=dec`` on the same digits rows, feature by feature and label by label."""
    overrides = ["data=digits", "data.n_samples=300"]
    cfg = _compose(*overrides)
    dataset = load_dataset(to_container(cfg.data))
    X = FeaturePipeline(**to_container(cfg.features)).fit_transform(dataset)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        labels = DEC(n_clusters=10, random_state=0).fit(X).labels_
    finally:
        torch.set_num_threads(threads)

    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        [console_script("deepseg-train"), "model=dec", "seed=0", *overrides, "logger=none",
         "resume=false", "trainer.enable_progress_bar=false", f"hydra.run.dir={out}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = pd.read_csv(out / "results.csv").iloc[0]
    assert int(row["n_features"]) == X.shape[1] and int(row["n_clusters"]) == 10
    train_labels = pd.read_csv(out / "assignments.csv")["segment"].to_numpy()
    np.testing.assert_array_equal(train_labels, labels)
