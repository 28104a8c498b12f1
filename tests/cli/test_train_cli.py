"""``deepseg-train`` multiruns and ``deepseg-leaderboard`` (and its old name ``deepseg-report``)
end to end, as console scripts.

Each scenario is a short sequence of runs on small data (digits, kmeans/gmm) with its outputs
under its own tmp dir. The scenario whose subject is a process (joblib's worker processes) runs
the console scripts as subprocesses, started in the background when the module starts; the
others call the console script's entry point in this process
(:func:`tests.cli.scripts.run_in_process`: the same exit code, stdout and stderr, without an
interpreter start and a torch import per run) meanwhile. Each test then checks its own. That
a real process exits 2 with one line is tested for every command in ``tests/cli/test_idiom.py``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.cli.scripts import run_in_process, run_script

TIMEOUT = 300
Proc = subprocess.CompletedProcess


def run(tmp: Path, command: str, *args: str, process: bool = True) -> Proc:
    if process:
        return run_script(command, *args, cwd=tmp, timeout=TIMEOUT)
    return run_in_process(command, *args, cwd=tmp)


def train(tmp: Path, sweep: str, *overrides: str, process: bool = True) -> Proc:
    """A multirun with its outputs (sweep dir, job records) inside ``tmp``."""
    return run(
        tmp,
        "deepseg-train",
        "-m",
        *overrides,
        f"paths.output_dir={tmp / 'outputs'}",
        f"hydra.sweep.dir={tmp / sweep}",
        "trainer.enable_progress_bar=false",
        "data.n_samples=300",
        process=process,
    )


def describe(*procs: Proc) -> str:
    return "".join(
        f"\n$ {' '.join(map(str, p.args))}\nexit {p.returncode}\n--- stdout ---\n"
        f"{p.stdout[-3000:]}\n--- stderr ---\n{p.stderr[-3000:]}"
        for p in procs
    )


def rows(sweep: Path) -> pd.DataFrame:
    files = sorted(sweep.glob("*/results.csv"), key=lambda p: int(p.parent.name))
    return pd.concat([pd.read_csv(f).assign(job=int(f.parent.name)) for f in files])


# --- scenarios ------------------------------------------------------------------------------


def grid(tmp: Path) -> list[Proc]:
    """Acceptance 1: 2 methods x 2 datasets x 2 seeds, then the report."""
    first = train(
        tmp, "sweep", "model=kmeans,gmm", "data=digits,synthetic_customers", "seed=0,1",
        process=False,
    )  # fmt: skip
    return [first, run(tmp, "deepseg-leaderboard", f"dir={tmp / 'sweep'}", process=False)]


def _records(tmp: Path) -> dict[str, int]:
    """The job records (resume store) and their modification times."""
    jobs = tmp / "outputs" / "train" / "jobs"
    return {p.name: p.stat().st_mtime_ns for p in sorted(jobs.glob("*.json"))}


def resume(tmp: Path) -> tuple[list[Proc], dict[str, int]]:
    """Acceptance 2: a sweep that dies at its third job (seed=oops ends the process), then the
    whole sweep again."""
    crashed = train(
        tmp, "sweep1", "model=kmeans,gmm", "data=digits", "seed=0,1,oops", process=False
    )
    before = _records(tmp)
    again = train(tmp, "sweep2", "model=kmeans,gmm", "data=digits", "seed=0,1", process=False)
    return [crashed, again], before


def optuna(tmp: Path) -> list[Proc]:
    """Acceptance 3: a 4-trial label-free search, and a misspelt objective."""
    search = train(
        tmp,
        "search",
        "hparams_search=kmeans_k",
        "hydra.sweeper.n_trials=4",
        "objective.metric=davies_bouldin",
        "data=digits",
        process=False,
    )
    misspelt = train(
        tmp, "misspelt", "hparams_search=kmeans_k", "objective.metric=silhoutte", process=False
    )
    return [search, misspelt]


def parallel(tmp: Path) -> list[Proc]:
    """Acceptances 5 and 6: two jobs with joblib and one after the other; one job fails."""
    jobs = ["model=kmeans", "data=digits", "n_clusters=10,5000", "resume=false"]
    joblib = train(tmp, "joblib", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *jobs)
    basic = train(tmp, "basic", *jobs)
    return [joblib, basic, run(tmp, "deepseg-report", str(tmp / "joblib"))]


def errors(tmp: Path) -> list[Proc]:
    """Single-run and sweep-wide user errors."""
    unknown = train(tmp, "unknown", "model=kmeans,kmeanz", "data=digits", process=False)
    too_many = run(
        tmp,
        "deepseg-train",
        "model=kmeans",
        "data=digits",
        "n_clusters=5000",
        f"paths.output_dir={tmp / 'outputs'}",
        f"hydra.run.dir={tmp / 'single'}",
        process=False,
    )
    return [unknown, too_many]


SCENARIOS: dict[str, Callable[[Path], Any]] = {
    "errors": errors,
    "grid": grid,
    "resume": resume,
    "optuna": optuna,
    "parallel": parallel,
}
# The scenarios that start subprocesses: run in background threads
IN_SUBPROCESSES = ("parallel",)


@pytest.fixture(scope="module")
def scenarios(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[Path, Future[list[Proc]]]]]:
    names = [
        item.callspec.params["scenario"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    ]
    started: dict[str, tuple[Path, Future[Any]]] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        chosen = list(dict.fromkeys(names))
        for name in [n for n in chosen if n in IN_SUBPROCESSES]:
            tmp = tmp_path_factory.mktemp(name)
            started[name] = (tmp, pool.submit(SCENARIOS[name], tmp))
        for name in [n for n in chosen if n not in IN_SUBPROCESSES]:  # one at a time, here
            tmp = tmp_path_factory.mktemp(name)
            done: Future[Any] = Future()
            done.set_result(SCENARIOS[name](tmp))
            started[name] = (tmp, done)
        yield started


def result(scenarios, name: str) -> tuple[Path, Any]:
    tmp, future = scenarios[name]
    return tmp, future.result(timeout=2 * TIMEOUT)


# --- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["grid"])
def test_grid_multirun_then_report_has_mean_std_over_two_seeds(scenarios, scenario):
    tmp, (sweep, report) = result(scenarios, scenario)
    assert sweep.returncode == 0, describe(sweep)
    found = rows(tmp / "sweep")
    assert len(found) == 8 and (found["status"] == "ok").all(), describe(sweep)
    assert sorted(found["seed"].unique()) == [0, 1]
    # one status line per finished job
    assert sum(line.startswith("[job ") for line in sweep.stdout.splitlines()) == 8
    assert report.returncode == 0, describe(report)
    table = [line for line in report.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(table) == 4, describe(report)
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2] == "2", line  # seeds
        assert all("±" in c for c in cells[3:]), line  # every metric is mean ± std
    assert sum("**" in line for line in table) == 2  # the best of each dataset
    board = pd.read_csv(tmp / "sweep" / "aggregate" / "leaderboard.csv")
    digits_kmeans = found[(found["dataset"] == "digits") & (found["method"] == "kmeans")]
    assert board.set_index(["dataset", "method"]).loc[("digits", "kmeans"), "acc"] == (
        pytest.approx(digits_kmeans["acc"].mean())
    )
    assert (tmp / "sweep" / "aggregate" / "silhouette.png").exists()
    for job in (tmp / "sweep").glob("[0-9]*"):
        assert (job / ".hydra" / "config.yaml").exists() and (job / "config.yaml").exists()


@pytest.mark.parametrize("scenario", ["resume"])
def test_resume_runs_only_the_missing_jobs(scenarios, scenario):
    tmp, ((crashed, again), before) = result(scenarios, scenario)
    assert crashed.returncode == 2, describe(crashed)
    assert "'seed' parameter must be an int" in crashed.stderr, describe(crashed)
    done = rows(tmp / "sweep1")
    assert len(done) == 2 and (done["method"] == "kmeans").all()  # then the process ended
    assert len(before) == 2
    assert again.returncode == 0, describe(again)
    second = rows(tmp / "sweep2")
    assert len(second) == 4
    executed = second[second["resumed_from"].isna()]
    skipped = second[second["resumed_from"].notna()]
    assert sorted(executed["method"]) == ["gmm", "gmm"]  # only the missing jobs ran
    assert set(skipped["resumed_from"]) == {str(tmp / "sweep1" / "0"), str(tmp / "sweep1" / "1")}
    assert sum(": resumed," in line for line in again.stdout.splitlines()) == 2
    assert sum(": ok in " in line for line in again.stdout.splitlines()) == 2
    after = _records(tmp)
    assert len(after) == 4
    assert all(after[name] == t for name, t in before.items())  # not rewritten
    original = done.set_index("seed")["acc"]
    assert skipped.set_index("seed")["acc"].sort_index().tolist() == original.sort_index().tolist()


@pytest.mark.parametrize("scenario", ["optuna"])
def test_optuna_label_free_search_and_misspelt_objective(scenarios, scenario):
    tmp, (search, misspelt) = result(scenarios, scenario)
    assert search.returncode == 0, describe(search)
    trials = rows(tmp / "search")
    assert len(trials) == 4 and (trials["objective"] == "davies_bouldin").all()
    assert not trials["allow_label_objective"].any()
    best = (tmp / "search" / "optimization_results.yaml").read_text()
    # davies_bouldin is lower-is-better: the registry turned the study into a minimisation
    assert "Directions: ['minimize']" in search.stdout + search.stderr, describe(search)
    assert f"best_value: {trials['objective_value'].min()}" in best
    assert misspelt.returncode == 2, describe(misspelt)
    error = [
        line for line in misspelt.stderr.splitlines() if line.startswith("deepseg-train: error")
    ]
    assert len(error) == 1, describe(misspelt)
    assert "silhoutte" in error[0] and "silhouette, davies_bouldin, calinski_harabasz" in error[0]
    assert "float-castable" not in misspelt.stdout + misspelt.stderr
    assert "Launching" not in misspelt.stdout + misspelt.stderr  # no trial started
    assert not (tmp / "misspelt").exists()


@pytest.mark.parametrize("scenario", ["parallel"])
def test_joblib_gives_the_sequential_rows_and_a_failed_job_is_reported(scenarios, scenario):
    tmp, (joblib, basic, report) = result(scenarios, scenario)
    assert joblib.returncode == 0 and basic.returncode == 0, describe(joblib, basic)
    assert "Joblib.Parallel(n_jobs=2" in joblib.stdout + joblib.stderr, describe(joblib)
    columns = ["job", "method", "seed", "n_clusters", "status", "error", "acc", "nmi", "ari"]
    columns += ["silhouette", "davies_bouldin", "inertia", "job_hash", "config"]
    left, right = rows(tmp / "joblib")[columns], rows(tmp / "basic")[columns]
    pd.testing.assert_frame_equal(left.reset_index(drop=True), right.reset_index(drop=True))
    assert list(left["status"]) == ["ok", "failed"]
    assert report.returncode == 0, describe(report)
    assert "Failed jobs (1)" in report.stdout and "Got 5000" in report.stdout, describe(report)
    failed = pd.read_csv(tmp / "joblib" / "aggregate" / "failed.csv")
    assert len(failed) == 1 and "n_clusters" in failed.loc[0, "error"]


@pytest.mark.parametrize("scenario", ["errors"])
def test_user_errors_exit_2_before_any_job(scenarios, scenario):
    tmp, (unknown, too_many) = result(scenarios, scenario)
    assert unknown.returncode == 2, describe(unknown)
    line = unknown.stderr.strip().splitlines()[-1]
    assert line.startswith("deepseg-train: error: ") and "kmeanz" in line and "'kmeans'" in line
    assert "dec" in line and "Launching" not in unknown.stdout + unknown.stderr
    assert too_many.returncode == 2, describe(too_many)
    assert "Got 5000" in too_many.stderr and "Traceback" not in too_many.stderr
    assert not list(tmp.rglob("results.csv")) and not (tmp / "outputs" / "train" / "jobs").exists()


def test_leaderboard_bad_directory_exits_2(tmp_path):
    proc = run(tmp_path, "deepseg-leaderboard", f"dir={tmp_path / 'nope'}", process=False)
    assert proc.returncode == 2, describe(proc)
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("deepseg-leaderboard: error: ") and "nope" in line
    old = run(tmp_path, "deepseg-report", str(tmp_path / "nope"), process=False)
    assert old.returncode == 2, describe(old)
    notice, error = old.stderr.strip().splitlines()
    assert "deepseg-report is now deepseg-leaderboard" in notice
    assert error.startswith("deepseg-report: error: ") and "nope" in error
    assert "Traceback" not in proc.stderr + old.stderr
