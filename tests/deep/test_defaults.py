"""One source of defaults: the estimators and the packaged configs agree.

The ``autoencoder``, ``pretrain`` and ``trainer`` groups are declared once (:mod:`deepseg.options`)
and their configs generated from the declarations, so nothing is left to compare there; these
tests check that the generated groups behave as the files did (an override applies, an unknown
key is refused, ``trainer/cpu``, ``gpu`` and ``ddp`` extend ``trainer/default``). The deep
methods' configs (``model/dec``) are generated from their estimators' declarations
(:mod:`deepseg.configs.methods`): a test checks that what it reads from the source is what the
dataclass declares. The end-to-end check: ``DEC().fit(X)`` and ``deepseg-train model=dec`` on the
same matrix and seed give the same labels.
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
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class

from deepseg.cli.common import config_dir
from deepseg.configs import methods
from deepseg.deep import DEC, skeleton
from deepseg.features.pipeline import FeaturePipeline
from deepseg.options import GROUPS, TRAINER
from deepseg.tasks.common import to_container
from deepseg.tasks.run import load_dataset
from tests.cli.scripts import console_script

DEEP_METHODS = ["ae_kmeans", "ae_gmm", "dec", "idec", "dcn", "vade", "n2d"]
assert sorted(DEEP_METHODS) == sorted(methods.DEEP_METHODS)
# Trainer options that change how a run is shown, never its result
DISPLAY_ONLY = {"enable_progress_bar", "logger", "default_root_dir"}


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("benchmark", overrides=list(overrides))


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_a_generated_group_takes_an_override_and_refuses_an_unknown_key(group):
    first = group.options[0]
    value = 7 if isinstance(first.default, int) else [7]
    cfg = _compose(f"{group.name}.{first.name}={value}")
    assert cfg[group.name][first.name] == value
    assert {k: v for k, v in to_container(cfg[group.name]).items() if k != first.name} == {
        o.name: o.default for o in group.options[1:]
    }
    with pytest.raises(ConfigCompositionException) as info:
        _compose(f"{group.name}.{first.name}_typo=1")
    assert "not in struct" in str(info.value.__cause__)


@pytest.mark.parametrize(
    ("choice", "changed"),
    [
        ("cpu", {"accelerator": "cpu"}),
        ("gpu", {"accelerator": "gpu", "devices": 1}),
        ("ddp", {"strategy": "ddp_spawn", "devices": 2}),
    ],
)
def test_a_trainer_choice_extends_the_generated_default(choice, changed):
    assert to_container(_compose(f"trainer={choice}").trainer) == {
        **TRAINER.defaults(),
        **changed,
    }


def test_the_trainer_group_passes_other_lightning_options_through():
    cfg = _compose("+trainer.gradient_clip_val=1.0")
    assert cfg.trainer.gradient_clip_val == 1.0
    opts = skeleton.trainer_options({"gradient_clip_val": 1.0, "devices": 2})
    assert opts == {**TRAINER.defaults(), "devices": 2, "gradient_clip_val": 1.0}


def test_every_declared_default_passes_its_own_check():
    for group in GROUPS:
        assert group.check(None) == group.defaults()


@pytest.mark.parametrize("method", DEEP_METHODS)
def test_a_method_config_is_generated_from_its_estimator(method):
    # deepseg.configs.methods reads the declarations from the source (no torch import): what
    # it reads is what the imported dataclass declares
    node = to_container(_compose().model[method])
    target = node.pop("_target_")
    assert target == methods.DEEP_METHODS[method]
    declared = {f.name: f.default for f in dataclasses.fields(get_class(target))}
    read = {name: default for name, default, _ in methods.declared_fields(target)}
    assert read == declared
    for grouped in methods.GROUPED:
        assert node.pop(grouped) == to_container(_compose()[grouped])  # interpolated
    left_out = (*methods.GROUPED, *methods.JOB_PARAMS)
    assert node == {k: v for k, v in declared.items() if k not in left_out}
    assert not (Path(config_dir()) / "model" / f"{method}.yaml").exists()  # no copy


def test_a_generated_method_config_takes_an_override_and_refuses_an_unknown_key():
    assert _compose("model.dec.lr=0.001").model.dec.lr == 0.001
    with pytest.raises(ConfigCompositionException) as info:
        _compose("model.dec.lrr=0.001")
    assert "not in struct" in str(info.value.__cause__)


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
