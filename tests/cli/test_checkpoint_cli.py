"""Acceptance (issue 13, point 2): ``deepseg-train model=dec`` killed with SIGKILL after its first
pretraining checkpoint, and again during the clustering phase, resumes mid-training each time
when the same command runs again, and ends with the assignments of an uninterrupted run.

Issue 24, point 1: the same for ``deepseg-benchmark`` and ``deepseg-suite``, which keep their
jobs in the same store: killed during dec's clustering phase, the re-run takes the finished
kmeans job from the store, resumes dec from its checkpoint, and ends with the rows (and, through
the report of the dec job, the labels) of an uninterrupted run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.cli.scripts import script_command

TIMEOUT = 600
COMMAND = [
    "model=dec",
    "data.n_samples=1500",
    "model.tol=0",  # all 50 clustering epochs: time to kill it in the middle
    "seed=3",
    "checkpoint.every_n_epochs=5",
    "checkpoint.every_n_seconds=0",
    "trainer.enable_progress_bar=false",
    "logger=none",
]


def start(
    tmp: Path, store: str, run: str, command: str = "deepseg-train", args: list[str] = COMMAND
) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    log = tmp / f"{run}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                *script_command(command), *args,
                f"paths.output_dir={tmp / store}", f"hydra.run.dir={tmp / run}",
            ],
            cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    return proc, log


def kill_when(proc: subprocess.Popen, log: Path, pattern: str, where: Path) -> None:
    """SIGKILL ``proc`` as soon as a complete checkpoint matching ``pattern`` exists."""
    deadline = time.monotonic() + TIMEOUT
    while not list(where.glob(pattern)):
        assert proc.poll() is None, f"finished before {pattern} appeared:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {pattern} after {TIMEOUT}s"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL


def finish(proc: subprocess.Popen, log: Path) -> str:
    assert proc.wait(timeout=TIMEOUT) == 0, log.read_text()[-5000:]
    return log.read_text()


def resumed_epoch(text: str, phase: str) -> int:
    match = re.search(rf"Resumed from checkpoint \S+ \({phase} epoch (\d+) of \d+\)", text)
    assert match, f"no resume from a {phase} checkpoint in:\n{text[-5000:]}"
    return int(match[1])


@pytest.mark.slow
def test_a_killed_dec_training_resumes_mid_training_with_the_same_assignments(tmp_path):
    reference = start(tmp_path, "ref", "uninterrupted")  # its own store: runs concurrently
    checkpoints = tmp_path / "out" / "train" / "jobs"
    first = start(tmp_path, "out", "run1")
    kill_when(*first, "*/checkpoints/pretrain-*.ckpt", checkpoints)

    second = start(tmp_path, "out", "run2")
    kill_when(*second, "*/checkpoints/cluster-*.ckpt", checkpoints)
    text = second[1].read_text()
    assert resumed_epoch(text, "pretraining") >= 5, text  # not from epoch 0

    text = finish(*start(tmp_path, "out", "run3"))
    assert "pretraining epoch" in text and "the phase had ended" in text
    assert resumed_epoch(text, "clustering") >= 5, text
    ours = pd.read_csv(tmp_path / "run3" / "assignments.csv")
    finish(*reference)
    theirs = pd.read_csv(tmp_path / "uninterrupted" / "assignments.csv")
    pd.testing.assert_frame_equal(ours, theirs)
    # the finished job's record answers re-runs: its checkpoints are gone
    assert not list(checkpoints.glob("*/checkpoints"))
    assert len(list(checkpoints.glob("*.json"))) == 1


# kmeans, then dec (whose report fit is the one killed and resumed): one dataset, one seed
JOBS = [
    "methods=[kmeans,dec]",
    "seeds=[3]",
    "model.dec.tol=0",  # all 20 clustering epochs: time to kill it in the middle
    "model.dec.epochs=20",
    "autoencoder.hidden_dims=[64,64]",
    "pretrain.min_steps=300",
    "checkpoint.every_n_epochs=5",
    "checkpoint.every_n_seconds=0",
    "report=default",
    "report.method=dec",
    "report.map=pca",
    "trainer.enable_progress_bar=false",
]
BENCHMARK = ["data=digits", *JOBS]
SUITE = ["only=[digits]", *JOBS]
SCORES = ["method", "seed", "n_clusters_found", "acc", "nmi", "ari", "silhouette", "job_hash"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "args", "results", "segments"),
    [
        ("deepseg-benchmark", BENCHMARK, "results.csv", "segments.csv"),
        ("deepseg-suite", SUITE, "suite_results.csv", "digits/segments.csv"),
    ],
)
def test_a_killed_benchmark_or_suite_resumes_its_deep_fit(tmp_path, command, args, results,
                                                          segments):  # fmt: skip
    task = command.removeprefix("deepseg-")
    reference = start(tmp_path, "ref", "uninterrupted", command, args)
    store = tmp_path / "out" / task / "jobs"
    first = start(tmp_path, "out", "run1", command, args)
    kill_when(*first, "*/checkpoints/cluster-*.ckpt", store)
    assert len(list(store.glob("*.json"))) == 1  # kmeans finished and is stored

    text = finish(*start(tmp_path, "out", "run2", command, args))
    assert text.count("not run again") == 1 and "kmeans (seed 3): already done" in text
    assert resumed_epoch(text, "clustering") >= 5, text
    finish(*reference)
    ours = pd.read_csv(tmp_path / "run2" / results)
    theirs = pd.read_csv(tmp_path / "uninterrupted" / results)
    pd.testing.assert_frame_equal(ours[SCORES], theirs[SCORES])
    # the resumed dec fit's labels, bit for bit
    mine = pd.read_csv(tmp_path / "run2" / segments)
    pd.testing.assert_frame_equal(mine, pd.read_csv(tmp_path / "uninterrupted" / segments))
    assert not list(store.glob("*/checkpoints"))
    assert len(list(store.glob("*.json"))) == 2


# two seeds of choose-k in an autoencoder's latent space: seed 0 finishes, seed 1 is killed
# during its pretraining and resumed from its checkpoint
CHOOSE_K = [
    "space=latent",
    "data.n_samples=1500",
    "seeds=[0,1]",
    "k_selection.k_range=[2,4]",
    "k_selection.n_bootstrap=2",
    "autoencoder.hidden_dims=[64,64]",
    "pretrain.min_steps=600",
    "checkpoint.every_n_epochs=5",
    "checkpoint.every_n_seconds=0",
    "trainer.enable_progress_bar=false",
]


@pytest.mark.slow
def test_a_killed_choose_k_resumes_its_unfinished_seed(tmp_path):
    """Issue 34, point 2: deepseg-choose-k runs through the job loop too."""
    reference = start(tmp_path, "ref", "uninterrupted", "deepseg-choose-k", CHOOSE_K)
    store = tmp_path / "out" / "choose_k" / "jobs"
    proc, log = start(tmp_path, "out", "run1", "deepseg-choose-k", CHOOSE_K)
    deadline = time.monotonic() + TIMEOUT
    while True:  # a checkpoint of the seed after the one that finished
        done = {p.stem for p in store.glob("*.json")}
        running = {p.parts[-3] for p in store.glob("*/checkpoints/pretrain-*.ckpt")}
        if done and running - done:
            break
        assert proc.poll() is None, f"finished before seed 1 checkpointed:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no checkpoint of seed 1 after {TIMEOUT}s"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert len(done) == 1

    text = finish(*start(tmp_path, "out", "run2", "deepseg-choose-k", CHOOSE_K))
    assert text.count("not run again") == 1 and "choose-k (seed 0): already done" in text
    assert resumed_epoch(text, "pretraining") >= 5, text
    finish(*reference)
    ours = (tmp_path / "run2" / "choose_k.csv").read_text()
    assert ours == (tmp_path / "uninterrupted" / "choose_k.csv").read_text()
    # every value of the recommendation; its git_commit is the repository's at the time of
    # writing (the same in CI, but a commit made while the test runs would move it)
    ours, theirs = (json.loads((tmp_path / d / "recommendation.json").read_text())
                    for d in ("run2", "uninterrupted"))  # fmt: skip
    assert isinstance(ours.pop("git_commit"), str) and isinstance(theirs.pop("git_commit"), str)
    assert ours == theirs
    assert not list(store.glob("*/checkpoints")) and len(list(store.glob("*.json"))) == 2
