"""Every shared option is declared once (:mod:`deepseg.options`) and checked by one validator."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from deepseg import options
from deepseg.options import N_CLUSTERS, PRETRAIN, SEED, Group, check_n_clusters

PACKAGE = Path(__file__).resolve().parents[1] / "deepseg"


def _modules_with(pattern: str) -> list[str]:
    found = re.compile(pattern, re.MULTILINE)
    return sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if found.search(path.read_text())
    )


def test_n_clusters_has_one_validator():
    # the message, the bound against the data and the range are written in one module
    assert _modules_with(r"'n_clusters' parameter") == ["options.py"]
    assert _modules_with(r"n_clusters\W{0,8}(>|<=)\W{0,8}n_samples") == []
    assert _modules_with(r"^N_CLUSTERS = ") == ["options.py", "validation.py"]
    assert "_N_CLUSTERS.constraint" in (PACKAGE / "validation.py").read_text()  # derived


def test_seed_has_one_declaration():
    assert _modules_with(r"'seed' (option|parameter)") == []
    assert _modules_with(r"^(SEED|RANDOM_STATE) = ") == ["options.py", "validation.py"]
    assert _modules_with(r"Interval\(int, 0, None\), NONE") == ["options.py"]


def test_the_pretrain_group_has_one_declaration():
    # its defaults: no dict, no config file (the group's config is generated)
    assert _modules_with(r"\"max_budget_epochs\":|Option\(\"max_budget_epochs\"") == ["options.py"]
    assert not (PACKAGE / "configs" / "pretrain").exists()
    assert _modules_with(r"pretrain option") == ["options.py"]  # "The pretrain option 'lr' must"


def test_the_estimators_take_the_declared_constraints():
    from deepseg.baselines import GMMClusterer
    from deepseg.deep import DEC
    from deepseg.validation import N_CLUSTERS as SKLEARN_N_CLUSTERS

    fields = {f.name: f for f in DEC.__dataclass_fields__.values()}
    assert fields["n_clusters"].metadata["constraint"] is N_CLUSTERS.constraint
    assert fields["random_state"].metadata["constraint"] is SEED.constraint
    assert GMMClusterer._parameter_constraints["n_clusters"] is SKLEARN_N_CLUSTERS


@pytest.mark.parametrize(
    ("k", "kwargs", "message"),
    [
        (0, {"owner": "DEC"}, "The 'n_clusters' parameter of DEC must be an int in the range "
                              "[1, inf). Got 0 instead."),
        (6, {"n_samples": 5, "owner": "DEC"}, "[1, n_samples=5]. Got 6 instead."),
        (1, {"n_samples": 300, "at_least": 2, "or_auto": True},
         "The 'n_clusters' parameter must be an int in the range [2, n_samples=300] or 'auto'. "
         "Got 1 instead."),
        ("4", {}, "Got '4' instead."),
        (True, {}, "Got True instead."),
        (2.0, {}, "Got 2.0 instead."),
    ],
)  # fmt: skip
def test_check_n_clusters_names_the_option_and_the_value(k, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_n_clusters(k, **kwargs)


def test_check_n_clusters_takes_numpy_ints():
    assert check_n_clusters(np.int64(3), 3) == 3


def test_seed_check_names_the_option():
    SEED.check(None)
    SEED.check(3)
    message = "The 'seed' parameter must be an int in the range [0, inf) or None. Got 'x' instead."
    with pytest.raises(ValueError, match=re.escape(message)):
        SEED.check("x")


def test_a_group_checks_each_option_and_refuses_unknown_keys():
    message = "The pretrain option 'lr' must be a float in the range (0, inf). Got 0 instead."
    with pytest.raises(ValueError, match=re.escape(message)):
        PRETRAIN.check({"lr": 0})
    with pytest.raises(ValueError, match=re.escape("Unknown pretrain option(s) ['epoch']")):
        PRETRAIN.check({"epoch": 3})
    checked = PRETRAIN.check({"epochs": 3})
    assert checked["epochs"] == 3 and PRETRAIN.check(checked) is checked  # checked once


SMALL_AUTOENCODER = {"hidden_dims": [8], "latent_dim": 2}
SHORT_PRETRAIN = {"epochs": 1, "min_steps": 0}


@pytest.fixture
def group_checks(monkeypatch) -> list[str]:
    """The name of the group of every check (each merges the options with the defaults)."""
    calls: list[str] = []
    merged = Group.merged

    def counted(self, given):
        calls.append(self.name)
        return merged(self, given)

    monkeypatch.setattr(Group, "merged", counted)
    return calls


def test_a_deep_fit_checks_the_pretrain_group_once(group_checks):
    from deepseg.deep import AEKMeans

    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    AEKMeans(n_clusters=2, autoencoder=SMALL_AUTOENCODER, pretrain=SHORT_PRETRAIN,
             random_state=0).fit(X)  # fmt: skip
    assert group_checks.count("pretrain") == 1
    assert group_checks.count("autoencoder") == 1


def test_a_benchmark_job_checks_the_pretrain_group_once(group_checks):
    # run_one checks before the shared pretraining; the pretraining and the fit take the
    # checked options and do not check them again
    from deepseg.data.base import Dataset
    from deepseg.tasks.run import run_one

    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    dataset = Dataset(name="gauss", ids=np.arange(40), X=X)
    cfg = {"_target_": "deepseg.deep.AEKMeans", "autoencoder": dict(SMALL_AUTOENCODER),
           "pretrain": dict(SHORT_PRETRAIN)}  # fmt: skip
    cache: dict = {}
    row = run_one(X, dataset, "ae_kmeans", cfg, 2, 0, "singletons", cache)
    assert row.get("status", "ok") == "ok", row.get("error")
    assert len(cache) == 1 and row["pretrain_seconds"] >= 0  # the shared pretraining ran
    assert group_checks.count("pretrain") == 1
    assert group_checks.count("autoencoder") == 1


def test_every_declaration_has_a_one_line_help():
    declared = [*options.COMMAND_OPTIONS, *(o for g in options.GROUPS for o in g)]
    for option in declared:
        assert option.help and "\n" not in option.help, option.name
    names = [o.name for o in options.COMMAND_OPTIONS]
    assert len(names) == len(set(names))
