"""End-to-end error handling of the ``deepseg-benchmark`` console script.

Every user mistake must end with exit code 2 and one ``deepseg-benchmark: error: <message>`` line
on stderr that names the problem, without a traceback and without writing ``results.csv``. Hydra's
own composition errors (an unknown config group option) end the same way. A
positive control checks that a valid table does run and write its results, and with
HYDRA_FULL_ERROR=1 a user error keeps its traceback.

Each run is the console script's entry point called in this process with its arguments
(:func:`tests.cli.scripts.run_in_process`: exit code, stdout and stderr as a subprocess would
give them, without paying an interpreter start per case); the exit code of a real process is
checked in ``tests/cli/test_idiom.py``. Every run has its own directory holding its input CSV,
its working directory and its Hydra run dir.
"""

from __future__ import annotations

import csv
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from deepseg.cli.common import config_dir
from tests.cli.scripts import run_in_process

CLI = "deepseg-benchmark"
ERROR_PREFIX = f"{CLI}: error: "

N_ROWS = 60
HEADER = ["spend", "visits", "region", "segment"]
# The overrides describing the valid table; the cases change one thing each.
TABLE_ROLES = [
    "data.label_column=segment",
    "data.numeric=[spend,visits]",
    "data.categorical=[region]",
    "data.n_clusters=3",
]


# --- inputs ---------------------------------------------------------------------------------


def _rows(n: int = N_ROWS) -> list[list[str]]:
    """A small deterministic customer table: 2 numeric, 1 categorical and a label column."""
    return [
        [
            f"{10 + (i * 37 % 100) * 1.7:.2f}",
            str(1 + i * 7 % 19),
            ("north", "south", "east")[i % 3],
            "abc"[i * 3 // n],
        ]
        for i in range(n)
    ]


def _write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def missing_file(tmp: Path) -> Path:
    return tmp / "nope.csv"


def valid_csv(tmp: Path) -> Path:
    return _write_csv(tmp / "customers.csv", _rows())


def text_in_numeric_csv(tmp: Path) -> Path:
    rows = _rows()
    rows[17][0] = "abc"
    return _write_csv(tmp / "text_in_numeric.csv", rows)


def all_nan_csv(tmp: Path) -> Path:
    rows = _rows()
    for row in rows:
        row[1] = ""
    return _write_csv(tmp / "all_nan.csv", rows)


def header_only_csv(tmp: Path) -> Path:
    return _write_csv(tmp / "header_only.csv", [])


def zero_byte_csv(tmp: Path) -> Path:
    path = tmp / "empty.csv"
    path.write_bytes(b"")
    return path


def _valid_methods() -> list[str]:
    """The method names in ``configs/benchmark.yaml``: its ``baseline@baseline.<name>`` keys."""
    config = yaml.safe_load((Path(config_dir()) / "benchmark.yaml").read_text())
    names = [
        key.removeprefix("baseline@baseline.")
        for entry in config["defaults"]
        if isinstance(entry, dict)
        for key in entry
        if key.startswith("baseline@baseline.")
    ]
    assert names, "No baseline@baseline.<name> entries found in configs/benchmark.yaml"
    return names


# --- checks on the error line ---------------------------------------------------------------

Check = Callable[[str, Path], bool]


def _check(name: str, fn: Check) -> Check:
    fn.__name__ = name
    return fn


def has(*fragments: str) -> Check:
    return _check(f"contains {list(fragments)}", lambda line, _: all(f in line for f in fragments))


def any_of(*words: str) -> Check:
    return _check(
        f"contains one of {list(words)}", lambda line, _: any(w in line.lower() for w in words)
    )


def suggests(name: str) -> Check:
    pattern = re.compile(rf"did you mean '?{re.escape(name)}'?", re.IGNORECASE)
    return _check(f"suggests '{name}'", lambda line, _: pattern.search(line) is not None)


def names_path() -> Check:
    return _check("names the data path", lambda line, path: str(path) in line)


# --- the runs -------------------------------------------------------------------------------


@dataclass
class Case:
    """One run: the input file it writes, the overrides after ``data=table data.path=<file>``
    (or all overrides when ``table`` is False), and the checks on its error line."""

    build: Callable[[Path], Path] | None
    overrides: list[str]
    checks: list[Check] = field(default_factory=list)
    table: bool = True
    full_error: bool = False


USER_ERRORS = {
    "missing-file": Case(
        missing_file,
        [*TABLE_ROLES, "methods=[kmeans]"],
        [names_path(), any_of("not found", "does not exist", "no such file")],
    ),
    "misspelt-numeric-column": Case(
        valid_csv,
        [
            "data.label_column=segment",
            "data.numeric=[spnd,visits]",
            "data.categorical=[region]",
            "methods=[kmeans]",
        ],
        [has("spnd"), suggests("spend")],
    ),
    "misspelt-label-column": Case(
        valid_csv,
        [
            "data.label_column=segmnt",
            "data.numeric=[spend,visits]",
            "data.categorical=[region]",
            "methods=[kmeans]",
        ],
        [has("segmnt"), suggests("segment")],
    ),
    "text-in-numeric-column": Case(
        text_in_numeric_csv,
        [*TABLE_ROLES, "methods=[kmeans]"],
        [has("spend", "text", "abc")],
    ),
    "all-nan-numeric-column": Case(
        all_nan_csv,
        [*TABLE_ROLES, "methods=[kmeans]"],
        [has("visits"), any_of("missing", "no values", "empty", "nan")],
    ),
    "header-only-csv": Case(
        header_only_csv,
        [*TABLE_ROLES, "methods=[kmeans]"],
        [names_path(), has("empty")],
    ),
    "zero-byte-file": Case(
        zero_byte_csv,
        [*TABLE_ROLES, "methods=[kmeans]"],
        [names_path(), has("empty")],
    ),
    "n_clusters-1": Case(
        valid_csv,
        [*TABLE_ROLES, "methods=[kmeans]", "n_clusters=1"],
        [has("n_clusters", f"[2, n_samples={N_ROWS}]", "Got 1")],
    ),
    "n_clusters-above-rows": Case(
        valid_csv,
        [*TABLE_ROLES, "methods=[kmeans]", f"n_clusters={N_ROWS + 1}"],
        [has("n_clusters", f"[2, n_samples={N_ROWS}]", f"Got {N_ROWS + 1}")],
    ),
    "unknown-method": Case(
        valid_csv,
        [*TABLE_ROLES, "methods=[kmeanz]"],
        [has("kmeanz"), suggests("kmeans"), has(*_valid_methods())],
    ),
}
OTHER_RUNS = {
    "unknown-dataset": Case(None, ["data=nosuch", "methods=[kmeans]"], table=False),
    "full-error": Case(missing_file, [*TABLE_ROLES, "methods=[kmeans]"], full_error=True),
    "valid-table": Case(valid_csv, [*TABLE_ROLES, "methods=[kmeans]", "seeds=[0]"]),
}
RUNS = {**USER_ERRORS, **OTHER_RUNS}


@dataclass
class Run:
    tmp: Path
    path: Path
    overrides: list[str]
    full_error: bool
    done: subprocess.CompletedProcess[str] | None = None

    def result(self) -> subprocess.CompletedProcess[str]:
        """Run the console script once, in ``tmp``, with its Hydra run dir inside ``tmp``."""
        if self.done is None:
            env = {"HYDRA_FULL_ERROR": "1"} if self.full_error else None
            args = [*self.overrides, f"hydra.run.dir='{self.tmp / 'run'}'"]
            self.done = run_in_process(CLI, *args, cwd=self.tmp, env=env)
        return self.done


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every case's run, each made when its test first asks for it."""
    started: dict[str, Run] = {}
    for name, case in RUNS.items():
        tmp = tmp_path_factory.mktemp(name)
        path = case.build(tmp) if case.build is not None else tmp
        overrides = (
            ["data=table", f"data.path='{path}'", *case.overrides]
            if case.table
            else list(case.overrides)
        )
        started[name] = Run(tmp, path, overrides, case.full_error)
    return started


def _describe(proc: subprocess.CompletedProcess) -> str:
    return (
        f"\ncommand: {' '.join(proc.args)}\nexit code: {proc.returncode}"
        f"\n--- stderr ---\n{proc.stderr[-4000:]}\n--- stdout ---\n{proc.stdout[-2000:]}"
    )


def _results_files(tmp: Path) -> list[Path]:
    return sorted(tmp.rglob("results.csv"))


def _assert_no_traceback_no_results(proc: subprocess.CompletedProcess, tmp: Path) -> None:
    assert "Traceback" not in proc.stderr, "traceback on stderr" + _describe(proc)
    written = _results_files(tmp)
    assert not written, f"results.csv written despite the error: {written}" + _describe(proc)


# --- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(USER_ERRORS))
def test_user_error(runs: dict[str, Run], case: str) -> None:
    """Exit code 2, one error line naming the problem, no traceback, no results.csv."""
    run = runs[case]
    proc = run.result()
    assert proc.returncode == 2, "expected exit code 2" + _describe(proc)
    lines = [line for line in proc.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(lines) == 1, f"expected one '{ERROR_PREFIX}...' line on stderr" + _describe(proc)
    failed = [c.__name__ for c in USER_ERRORS[case].checks if not c(lines[0], run.path)]
    assert not failed, f"the error line fails {failed}: {lines[0]!r}" + _describe(proc)
    _assert_no_traceback_no_results(proc, run.tmp)


@pytest.mark.parametrize("case", ["unknown-dataset"])
def test_unknown_dataset_exits_2_with_one_line(runs: dict[str, Run], case: str) -> None:
    """``data=nosuch``: a Hydra composition error, as one line naming it and the datasets."""
    run = runs[case]
    proc = run.result()
    assert proc.returncode == 2, "expected exit code 2" + _describe(proc)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), _describe(proc)
    assert "'nosuch'" in lines[0] and "digits, mnist" in lines[0], _describe(proc)
    _assert_no_traceback_no_results(proc, run.tmp)


@pytest.mark.parametrize("case", ["full-error"])
def test_full_error_shows_traceback(runs: dict[str, Run], case: str) -> None:
    """With HYDRA_FULL_ERROR=1 a user error propagates with its traceback."""
    run = runs[case]
    proc = run.result()
    assert proc.returncode != 0, "expected a non-zero exit code" + _describe(proc)
    assert "Traceback" in proc.stderr, "no traceback with HYDRA_FULL_ERROR=1" + _describe(proc)
    assert "FileNotFoundError" in proc.stderr, _describe(proc)
    assert str(run.path) in proc.stderr, _describe(proc)
    assert not _results_files(run.tmp), _describe(proc)


@pytest.mark.parametrize("case", ["valid-table"])
def test_valid_table_writes_results(runs: dict[str, Run], case: str) -> None:
    """Positive control: a valid table exits 0 and writes one results row."""
    run = runs[case]
    proc = run.result()
    assert proc.returncode == 0, "expected exit code 0" + _describe(proc)
    assert "Traceback" not in proc.stderr, _describe(proc)
    assert ERROR_PREFIX not in proc.stderr, _describe(proc)
    written = _results_files(run.tmp)
    assert written == [run.tmp / "run" / "results.csv"], f"results files: {written}"
    with written[0].open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["dataset"] == "table"
    assert row["method"] == "kmeans"
    assert row["status"] == "ok"
    assert int(row["n_samples"]) == N_ROWS
    assert int(row["n_clusters"]) == 3
