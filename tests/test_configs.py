"""Every config in configs/ composes, and every method config instantiates."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from deepseg.cli.common import config_dir
from deepseg.tasks.benchmark import make_estimator
from deepseg.tasks.common import to_container

CONFIGS = Path(config_dir())


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="benchmark", overrides=list(overrides))


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIGS / "data").glob("*.yaml")))
def test_every_data_config_composes(name):
    cfg = _compose(f"data={name}")
    assert cfg.data._target_.startswith("deepseg.data.")
    assert cfg.data.name


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIGS / "trainer").glob("*.yaml")))
def test_every_trainer_config_composes(name):
    cfg = _compose(f"trainer={name}")
    assert cfg.trainer.accelerator in ("auto", "cpu", "gpu")
    assert cfg.model.dec.trainer == cfg.trainer  # deep methods follow the chosen trainer


def test_every_method_config_instantiates():
    cfg = _compose()
    methods = {**to_container(cfg.baseline), **to_container(cfg.model)}
    on_disk = {p.stem for p in (CONFIGS / "baseline").glob("*.yaml")}
    on_disk |= {p.stem for p in (CONFIGS / "model").glob("*.yaml")}
    assert set(methods) == on_disk  # every config file is reachable from the benchmark
    for name, method_cfg in methods.items():
        estimator = make_estimator(method_cfg, n_clusters=3, seed=0)
        assert hasattr(estimator, "fit"), name
        params = estimator.get_params()
        if "n_clusters" in params:
            assert params["n_clusters"] == 3


def test_choose_k_and_report_configs_compose():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="choose_k", overrides=["data=online_retail"])
        assert cfg.k_selection.k_range == [2, 10] and cfg.space == "features"
        assert cfg.data.name == "online_retail"
    bench = _compose()
    assert bench.get("report") is None  # the report is opt-in
    bench = _compose("report=default", "report.method=gmm", "n_clusters=auto")
    assert bench.report.method == "gmm" and bench.report.max_depth == 4
    assert bench.k_selection.n_init >= 1
