"""Every config in configs/ composes, and every method config instantiates."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from deepseg.cli.common import config_dir, group_options
from deepseg.tasks.common import to_container
from deepseg.tasks.run import make_estimator
from tests.conftest import PROJECT_ROOT

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
    on_disk |= set(group_options("model"))  # files and the generated deep methods
    assert set(methods) == on_disk  # every config is reachable from the benchmark
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
    # choose-k's latent space takes the deep methods' options from their groups: no own copy
    for group in ("autoencoder", "pretrain", "trainer"):
        assert cfg[group] == bench[group], group
    assert bench.get("report") is None  # the report is opt-in
    bench = _compose("report=default", "report.method=gmm", "n_clusters=auto")
    assert bench.report.method == "gmm" and bench.report.max_depth == 4
    assert bench.k_selection.n_init >= 1


# --- deepseg-train, experiments, searches, loggers, launchers ----------------------------------


def _compose_train(*overrides: str, hydra: bool = False):
    """The train config; with ``hydra`` the ``hydra`` node too (launcher, sweeper, callbacks)."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=hydra)


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


@pytest.mark.parametrize("name", _names("model"))
def test_every_model_choice_of_train_instantiates(name):
    # deepseg-train shows progress bars; otherwise the method config is the benchmark's
    cfg = _compose_train(f"model={name}", f"method={name}", "trainer.enable_progress_bar=false")
    estimator = make_estimator(to_container(cfg.model), n_clusters=3, seed=0)
    assert hasattr(estimator, "fit"), name
    if name in _names("baseline"):  # the alias is exactly the baseline's config
        assert to_container(cfg.model) == to_container(_compose().baseline[name])
    else:
        assert to_container(cfg.model) == to_container(_compose().model[name])


@pytest.mark.parametrize("name", _names("experiment"))
def test_every_experiment_composes_and_instantiates(name):
    text = (CONFIGS / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_"), name
    command = "deepseg-benchmark" if f"deepseg-benchmark experiment={name}" in text else None
    command = command or ("deepseg-train" if f"deepseg-train experiment={name}" in text else None)
    assert command, f"{name}.yaml does not give its command"
    docs = (PROJECT_ROOT / "docs" / "benchmarks.md").read_text()
    assert f"{command} experiment={name}" in docs, f"docs/benchmarks.md lacks the {name} command"
    if command == "deepseg-benchmark":
        cfg = _compose(f"experiment={name}")
        available = {**to_container(cfg.baseline), **to_container(cfg.model)}
        assert cfg.methods and set(cfg.methods) <= set(available)
        methods = {m: available[m] for m in cfg.methods}
    else:
        cfg = _compose_train(f"experiment={name}", hydra=True)
        methods = {cfg.hydra.runtime.choices.model: to_container(cfg.model)}
    assert cfg.data._target_.startswith("deepseg.data.")
    for method, method_cfg in methods.items():
        if method == "n2d":
            pytest.importorskip("umap")
        assert hasattr(make_estimator(method_cfg, n_clusters=10, seed=0), "fit"), method


@pytest.mark.parametrize("name", _names("hparams_search"))
def test_every_search_composes_with_a_registry_direction(name):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    import deepseg.cli.train  # noqa: F401 - registers the metric_direction resolver
    from deepseg.metrics import METRICS

    cfg = _compose_train(f"hparams_search={name}", hydra=True)
    sweeper = cfg.hydra.sweeper
    assert "optuna" in sweeper._target_.lower()
    assert cfg.hydra.mode.name == "MULTIRUN"
    metric = cfg.objective.metric
    assert not METRICS[metric].needs_labels  # the default objective is label-free
    assert sweeper.direction == ("maximize" if METRICS[metric].higher_is_better else "minimize")
    flipped = _compose_train(
        f"hparams_search={name}", "objective.metric=davies_bouldin", hydra=True
    )
    assert flipped.hydra.sweeper.direction == "minimize"
    assert sweeper.params


@pytest.mark.parametrize("name", _names("logger"))
def test_every_logger_config_composes_and_instantiates(name, tmp_path):
    from hydra.utils import instantiate

    cfg = _compose_train(f"logger={name}", f"paths.output_dir={tmp_path}")
    if name == "none":
        assert not cfg.logger
        return
    module = {"tensorboard": "tensorboard", "mlflow": "mlflow"}.get(name)
    if module is not None:
        pytest.importorskip(module)
    extra = {} if "save_dir" in cfg.logger else {"save_dir": str(tmp_path)}
    factory = instantiate(cfg.logger, **extra)
    from lightning.pytorch.loggers import Logger

    assert isinstance(factory(), Logger)


def test_launcher_configs_compose_and_instantiate(tmp_path):
    from hydra.utils import instantiate

    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cfg = _compose_train("hydra/launcher=slurm", "hydra.launcher.partition=cpu", hydra=True)
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    assert launcher.params["partition"] == "cpu" and launcher.params["timeout_min"] == 120
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    cfg = _compose_train("hydra/launcher=joblib", "hydra.launcher.n_jobs=2", hydra=True)
    assert type(instantiate(cfg.hydra.launcher)).__name__ == "JoblibLauncher"
    assert cfg.hydra.launcher.n_jobs == 2


def test_benchmark_and_train_share_the_deep_defaults():
    bench = _compose()
    train = _compose_train("model=dec", "method=dec", "trainer.enable_progress_bar=false")
    assert bench.model.dec == train.model
    assert bench.autoencoder == train.autoencoder and bench.pretrain == train.pretrain
    paper = _compose("autoencoder=paper")
    assert paper.model.dec.autoencoder.hidden_dims == [500, 500, 2000]


# The commands docs/benchmarks.md gives for its tables, and the experiment that replaces each
DOCUMENTED = {
    "digits_benchmark": [
        "data=digits",
        "methods=[kmeans,gmm,agglomerative,ae_kmeans,dec,idec,dcn,n2d]",
        "seeds=[0,1,2]",
    ],
    "digits_umap_init": [
        "data=digits",
        "methods=[ae_kmeans,dec,idec,dcn,n2d]",
        "seeds=[0,1,2]",
        "autoencoder.dropout=0.0",
        "pretrain.min_steps=3000",
        "pretrain.batch_size=64",
        "pretrain.lr_schedule=cosine",
        "model.dec.init=umap",
        "model.idec.init=umap",
        "model.dcn.init=umap",
    ],
    "mnist_test_umap_init": [
        "experiment=mnist_test",
        "seeds=[0,1,2]",
        "methods=[n2d,dec,idec,ae_kmeans]",
        "model.dec.init=umap",
        "model.idec.init=umap",
    ],
    "mnist_all_umap_init": ["experiment=mnist_all", "model.dec.init=umap", "model.idec.init=umap"],
    "synthetic_customers_benchmark": [
        "methods=[kmeans,minibatch_kmeans,gmm,agglomerative,pca_kmeans,dbscan,hdbscan,spectral,"
        "ae_kmeans,dec,idec]",
        "seeds=[0,1,2]",
    ],
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_experiment_equals_the_documented_command(name):
    docs = (PROJECT_ROOT / "docs" / "benchmarks.md").read_text()
    command = " ".join(f"'{o}'" if "[" in o else o for o in DOCUMENTED[name])
    assert f"deepseg-benchmark {command}" in docs
    assert _compose(f"experiment={name}") == _compose(*DOCUMENTED[name])


def test_mnist_experiments_match_the_script_settings():
    # scripts/bench_mnist.py: the papers' autoencoder, batch 256, cosine, 150 (test) / 50 (all)
    for name, split, epochs in (("mnist_test", "test", 150), ("mnist_all", "all", 50)):
        cfg = _compose(f"experiment={name}")
        assert cfg.data.split == split and list(cfg.seeds) == [0]
        dec = cfg.model.dec
        assert dec.autoencoder.hidden_dims == [500, 500, 2000] and dec.autoencoder.dropout == 0
        assert dec.pretrain.epochs == epochs and dec.pretrain.lr_schedule == "cosine"
        assert dec.pretrain.batch_size == 256 and dec.pretrain.min_steps == 1000


@pytest.mark.parametrize("suite", _names("suite"))
def test_every_suite_composes_with_loadable_datasets(suite):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="suite", overrides=[f"suite={suite}"])
    assert "data" not in cfg  # the datasets are the suite's own
    assert list(cfg.seeds) == [0, 1, 2]
    available = {**to_container(cfg.baseline), **to_container(cfg.model)}
    assert set(cfg.methods) <= set(available)
    for key, entry in cfg.datasets.items():
        assert entry.data._target_.startswith("deepseg.data."), key
        assert entry.data.name == key  # the name in results.csv is the suite's key
    docs = (PROJECT_ROOT / "docs" / "benchmarks.md").read_text()
    readme = (PROJECT_ROOT / "README.md").read_text()
    command = "deepseg-suite" if suite == "small" else f"deepseg-suite suite={suite}"
    assert command in docs and command in readme


def test_the_small_suite_is_the_issue_list():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="suite")
    uci = ["ecoli", "glass", "ionosphere", "sonar", "statlog", "wdbc", "wine", "yeast"]
    assert list(cfg.datasets) == [*uci, "digits", "synthetic_customers"]
    for name in uci:
        data = cfg.datasets[name].data
        assert data.battery == "uci" and data.labels == 0 and data.name == name
    assert list(cfg.methods) == [
        "kmeans", "gmm", "agglomerative", "spectral", "hdbscan", "ae_kmeans", "dec", "idec",
        "n2d", "auto",
    ]  # fmt: skip
