"""Acceptance (issue 13, point 2): ``deepseg-train model=dec`` killed with SIGKILL after its first
pretraining checkpoint, and again during the clustering phase, resumes mid-training each time
when the same command runs again, and ends with the assignments of an uninterrupted run."""

from __future__ import annotations

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


def start(tmp: Path, store: str, run: str) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    log = tmp / f"{run}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                *script_command("deepseg-train"), *COMMAND,
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
