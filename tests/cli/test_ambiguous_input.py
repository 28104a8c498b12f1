"""Ambiguous input is refused the same way by every command: duplicate ids and infinities end
in exit 2 and one line naming the count and examples / the column and row, with nothing
written; ``data.duplicate_ids=first`` keeps one row per id and says so in the row's config.

The console scripts run in this process (:func:`tests.cli.scripts.run_in_process`: their exit
code, stdout and stderr as a subprocess gives them, without an interpreter start each), all of
them when the module starts; each test checks its own.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepseg.data.synthetic import make_synthetic_customers
from tests.cli.scripts import run_in_process

N_ROWS = 80


def customers(n: int = N_ROWS) -> pd.DataFrame:
    ds = make_synthetic_customers(n_samples=n, random_state=0)
    frame = ds.frame[["age", "total_spend", "tenure_months", "channel"]].copy()
    frame.insert(0, "customer_id", [f"C{i:04d}" for i in range(n)])
    return frame


def duplicated(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.loc[[5, 9], "customer_id"] = out.loc[[4, 8], "customer_id"].to_numpy()
    return out


def infinite(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["total_spend"] = out["total_spend"].astype(float)
    out.loc[[7, 20], "total_spend"] = [np.inf, -np.inf]
    return out


def _table_args(path: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "data=table", f"data.path={path}", "data.id_column=customer_id", "n_clusters=3",
        f"hydra.run.dir={run_dir}", f"paths.output_dir={run_dir.parent / 'outputs'}", *extra,
    ]  # fmt: skip


def _run(command: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_in_process(command, *args, cwd=cwd)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case's run; {case: (completed process, run dir or output)}."""
    root = tmp_path_factory.mktemp("ambiguous")
    inputs = {"dup": duplicated(customers()), "inf": infinite(customers())}
    for name, frame in inputs.items():
        frame.to_csv(root / f"{name}.csv", index=False)
    # a bundle for predict, trained in-process on the clean table
    customers().to_csv(root / "clean.csv", index=False)
    from deepseg.tasks.train import train
    from tests.tasks.test_train import compose_train

    cfg = compose_train(
        "kmeans", "data=table", f"data.path={root / 'clean.csv'}", "data.id_column=customer_id",
        "n_clusters=3", "resume=false",
    )  # fmt: skip
    train(cfg, root / "trained")
    bundle = root / "trained" / "bundle"
    cases: dict[str, tuple[str, list[str], Path]] = {}
    for name in inputs:
        for command in ("deepseg-benchmark", "deepseg-train"):
            run_dir = root / f"{command}_{name}"
            extra = ["methods=[kmeans]"] if command == "deepseg-benchmark" else ["model=kmeans"]
            cases[f"{command}:{name}"] = (
                command,
                _table_args(root / f"{name}.csv", run_dir, *extra),
                run_dir,
            )
        out = root / f"predict_{name}" / "out.csv"
        cases[f"deepseg-predict:{name}"] = (
            "deepseg-predict",
            [f"bundle={bundle}", f"input={root / f'{name}.csv'}", f"output={out}"],
            out,
        )
    run_dir = root / "train_first"
    cases["deepseg-train:first"] = (
        "deepseg-train",
        _table_args(root / "dup.csv", run_dir, "model=kmeans", "data.duplicate_ids=first"),
        run_dir,
    )
    return {
        case: (_run(command, args, root), target)
        for case, (command, args, target) in cases.items()
    }


def _one_error_line(proc, command: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in lines if line.startswith(f"{command}: error: ")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


def _nothing_written(target: Path) -> None:
    if target.suffix == ".csv":
        assert not target.exists() and not list(target.parent.glob(".*tmp"))
    else:
        assert not list(target.glob("*.csv")) and not (target / "bundle").exists()


@pytest.mark.parametrize("command", ["deepseg-benchmark", "deepseg-train", "deepseg-predict"])
def test_duplicate_ids_are_one_line_naming_count_and_examples(runs, command):
    proc, target = runs[f"{command}:dup"]
    line = _one_error_line(proc, command)
    assert "customer_id" in line and "C0004" in line and "C0008" in line, line
    assert ("2 duplicate id(s)" in line) or ("in 2 row(s)" in line), line
    _nothing_written(target)


@pytest.mark.parametrize("command", ["deepseg-benchmark", "deepseg-train", "deepseg-predict"])
def test_infinities_are_one_line_naming_column_and_row(runs, command):
    proc, target = runs[f"{command}:inf"]
    line = _one_error_line(proc, command)
    assert "'total_spend'" in line and "2 infinite value(s)" in line and "row 7" in line, line
    assert "inf.csv" in line, line  # and the file
    _nothing_written(target)


def test_duplicate_ids_first_keeps_one_row_per_id_and_records_it(runs):
    proc, run_dir = runs["deepseg-train:first"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = pd.read_csv(run_dir / "results.csv").iloc[0]
    assert row["n_samples"] == N_ROWS - 2
    assert json.loads(row["config"])["data"]["duplicate_ids"] == "first"
    segments = pd.read_csv(run_dir / "assignments.csv")
    assert segments["id"].is_unique and len(segments) == N_ROWS - 2
