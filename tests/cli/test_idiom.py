"""One idiom for every console script of ``[project.scripts]``: ``--help`` lists the options and
config groups of the script's own config, and a misspelt option exits 2 with one stderr line
naming it and the closest valid key. ``deepseg-report`` is the old name of
``deepseg-leaderboard``: it takes its old form, says what replaced it, and runs it."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from deepseg.cli.common import UNDECLARED, _shown
from deepseg.options import GROUPS
from tests.cli.scripts import project_scripts, run_in_process, run_script, script_command

SCRIPTS = sorted(project_scripts())
TIMEOUT = 120

# One misspelt option per script, and the key the error line must suggest
MISSPELT = {
    "deepseg-benchmark": ("methds=[kmeans]", "methods"),
    "deepseg-choose-k": ("spac=latent", "space"),
    "deepseg-embed": ("inptu=x.csv", "input"),
    "deepseg-export": ("fromat=onnx", "format"),
    "deepseg-leaderboard": ("dri=x", "dir"),
    "deepseg-predict": ("bundel=x", "bundle"),
    "deepseg-report": ("dri=x", "dir"),
    "deepseg-suite": ("onyl=[wine]", "only"),
    "deepseg-train": ("modle=dec", "model"),
}


def run(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The console script's entry point in this process: what these tests check is the
    command's behaviour; the process boundary is checked by the tests that use run_script."""
    return run_in_process(name, *args, cwd=cwd)


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return (
        f"\nexit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def config_of(name: str) -> tuple[list[str], list[str], dict]:
    """The top-level options, the config groups and the composed values (a dict) of a script's
    primary config."""
    module = importlib.import_module(project_scripts()[name].partition(":")[0])
    with initialize_config_module("deepseg.configs", version_base="1.3"):
        cfg = compose(module.CONFIG_NAME, return_hydra_config=True)
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    assert isinstance(choices, dict)
    groups = [g for g in choices if not g.startswith("hydra") and "@" not in g]
    options = [str(k) for k in cfg if k != "hydra" and k not in groups]
    values = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(values, dict)
    return options, groups, values


def test_every_script_has_a_misspelling_case():
    assert sorted(MISSPELT) == SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_lists_options_and_groups(name, tmp_path):
    proc = run(name, "--help", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    text = proc.stdout
    assert "== Options ==" in text and "== Config groups ==" in text, describe(proc)
    options_part, groups_part = text.split("== Options ==")[1].split("== Config groups ==")
    option_lines = [line.strip() for line in options_part.splitlines() if line.strip()]
    group_lines = [line.strip() for line in groups_part.splitlines() if line.startswith("  ")]
    options, groups, values = config_of(name)
    for option in options:
        assert any(line.startswith((f"{option}=", f"{option}.")) for line in option_lines), (
            f"--help of {name} does not list the option '{option}'" + describe(proc)
        )
    for group in groups:
        assert any(line.startswith(f"{group}=") for line in group_lines), (
            f"--help of {name} does not list the config group '{group}'" + describe(proc)
        )
    # one line per option: a name, then its description
    assert all(len(line.split(maxsplit=1)) == 2 for line in option_lines), describe(proc)
    assert not any(UNDECLARED in line for line in option_lines), describe(proc)
    # every option of a declared group the command has, with its composed value: the declared
    # default unless the command's config changes it (deepseg-train's trainer.enable_progress_bar)
    for group in GROUPS:
        if group.name in groups:
            for option in group:
                value = values[group.name][option.name]
                shown = f"{group.name}.{option.name}={_shown(value)} "
                assert any(line.startswith(shown) for line in option_lines), (
                    f"--help of {name} does not list {shown}" + describe(proc)
                )
    assert list(tmp_path.iterdir()) == [], "--help wrote files"


def test_help_shows_the_composed_value_of_an_option(tmp_path):
    proc = run("deepseg-benchmark", "pretrain.epochs=5", "n_clusters=3", "--help", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    lines = [line.strip() for line in proc.stdout.splitlines()]
    assert any(line.startswith("pretrain.epochs=5 ") for line in lines), describe(proc)
    assert any(line.startswith("n_clusters=3 ") for line in lines), describe(proc)


@pytest.mark.parametrize("name", SCRIPTS)
def test_misspelt_option_exits_2_with_one_line(name, tmp_path):
    override, expected = MISSPELT[name]
    proc = run(name, override, cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, describe(proc)
    key = override.partition("=")[0]
    assert lines[0].startswith(f"{name}: error: Unknown option '{key}'"), describe(proc)
    assert f"did you mean '{expected}'?" in lines[0], describe(proc)
    assert list(tmp_path.iterdir()) == [], "a refused command wrote files"


@pytest.mark.parametrize("name", ["deepseg-benchmark", "deepseg-report"])
def test_a_real_process_exits_2_with_one_line(name, tmp_path):
    override = MISSPELT[name][0] if name != "deepseg-report" else "--outt"
    args = [override] if name != "deepseg-report" else [str(tmp_path), override, "x"]
    proc = run_script(name, *args, cwd=tmp_path, timeout=TIMEOUT)
    assert proc.returncode == 2, describe(proc)
    assert len(proc.stderr.splitlines()) == 1, describe(proc)
    assert proc.stderr.startswith(f"{name}: error: Unknown option"), describe(proc)


def _results(directory: Path) -> Path:
    directory.mkdir(parents=True)
    rows = [
        {"dataset": "digits", "method": m, "seed": s, "status": "ok", "acc": a, "silhouette": a}
        for m, a in (("kmeans", 0.5), ("gmm", 0.6))
        for s in (0, 1)
    ]
    pd.DataFrame(rows).to_csv(directory / "results.csv", index=False)
    return directory.parent


def test_report_alias_takes_its_old_form_and_names_its_successor(tmp_path):
    runs = _results(tmp_path / "runs" / "0")
    new = run("deepseg-leaderboard", f"dir={runs}", f"out={tmp_path / 'new'}", cwd=tmp_path)
    old = run("deepseg-report", str(runs), "--out", str(tmp_path / "old"), cwd=tmp_path)
    assert new.returncode == 0 and old.returncode == 0, describe(new) + describe(old)
    assert old.stdout.replace("old", "new") == new.stdout  # the same leaderboard
    notice = [line for line in old.stderr.splitlines() if "deepseg-leaderboard" in line]
    assert len(notice) == 1 and "deepseg-report is now deepseg-leaderboard" in notice[0]
    assert "deepseg-report" not in new.stderr
    for out in ("new", "old"):
        assert (tmp_path / out / "leaderboard.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "old", "runs"]  # no run dir


def test_report_alias_refuses_a_misspelt_flag(tmp_path):
    proc = run("deepseg-report", str(tmp_path), "--outt", "x", cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    assert proc.stderr.splitlines() == [
        "deepseg-report: error: Unknown option '--outt' (did you mean '--out'?). "
        "Usage: deepseg-report DIR [--out X]."
    ]


def test_benchmark_seed_is_shorthand_for_seeds(tmp_path):
    proc = run(
        "deepseg-benchmark",
        "data=digits",
        "methods=[kmeans]",
        "seed=3",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, describe(proc)
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    assert results["seed"].tolist() == [3]


def test_full_error_keeps_the_traceback_of_a_composition_error(tmp_path):
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run(
        [*script_command("deepseg-predict"), "bundel=x"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode != 0, describe(proc)
    assert "Traceback" in proc.stderr and "ConfigCompositionException" in proc.stderr
    assert "deepseg-predict: error:" not in proc.stderr, describe(proc)


def _train_config(task: list[str]):
    with initialize_config_module("deepseg.configs", version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    OmegaConf.set_struct(cfg, False)
    cfg.hydra.overrides.task = task
    return cfg


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (["modle=dec,gmm"], "Unknown option 'modle' (did you mean 'model'?)"),
        (["model.n_inti=1,2"], "Unknown option 'model.n_inti' (did you mean 'model.n_init'?)"),
        (["model=kmeans,dec", "model.lr=0.1,0.01"], None),  # keys of each job's own model
        (["model.n_init=1,2", "+extra=1,2", "seed=0,1"], None),
    ],
)
def test_swept_keys_are_checked_before_any_job(task, message):
    from deepseg.cli.common import check_sweep_keys

    cfg = _train_config(task)
    if message is None:
        check_sweep_keys(cfg)
    else:
        with pytest.raises(ValueError, match=re.escape(message)):
            check_sweep_keys(cfg)


def test_a_misspelt_swept_key_exits_2_before_the_sweep(tmp_path):
    proc = run(
        "deepseg-train", "-m", "modle=dec,gmm", f"hydra.sweep.dir={tmp_path / 'sw'}", cwd=tmp_path
    )
    assert proc.returncode == 2, describe(proc)
    (line,) = proc.stderr.splitlines()
    assert line.startswith("deepseg-train: error: Unknown option 'modle' (did you mean 'model'?)")
    assert list(tmp_path.iterdir()) == []
