"""deepseg as a real package: a built wheel, installed into a fresh virtual environment, runs
its commands from a directory outside the clone (the configs ship inside the wheel).

Slow: it installs deepseg's dependencies into the new environment (several minutes).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

TORCH = "torch==2.13.0"  # the CPU build the README installs


def _run(args: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(bin directory of a fresh venv with the wheel installed, a directory outside the clone)."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(PROJECT_ROOT)],
         cwd=root)  # fmt: skip
    wheel = next(dist.glob("deepseg-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "deepseg/configs/benchmark.yaml" in names
    assert any(n.startswith("deepseg/configs/model/") for n in names)
    _run([sys.executable, "-m", "venv", str(root / "venv")], cwd=root)
    bin_dir = root / "venv" / "bin"
    _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", TORCH, str(wheel)], cwd=root,
         timeout=1800)  # fmt: skip
    work = root / "elsewhere"
    work.mkdir()
    return bin_dir, work


def test_wheel_commands_run_outside_the_clone(installed):
    bin_dir, work = installed
    # the installed package, not the clone, is what runs
    where = _run([str(bin_dir / "python"), "-c", "import deepseg; print(deepseg.__file__)"], work)
    assert str(PROJECT_ROOT) not in where.stdout

    help_text = _run([str(bin_dir / "deepseg-benchmark"), "--help"], work).stdout
    assert "data=" in help_text and "synthetic_customers" in help_text and "methods=" in help_text

    small = ["data=synthetic_customers", "data.n_samples=300"]
    _run([str(bin_dir / "deepseg-benchmark"), *small, "methods=[kmeans]", "seeds=[0]",
          "hydra.run.dir=bench"], work)  # fmt: skip
    assert len(pd.read_csv(work / "bench" / "results.csv")) == 1

    _run([str(bin_dir / "deepseg-train"), "model=kmeans", *small, "hydra.run.dir=train"], work)
    assert (work / "train" / "bundle" / "manifest.json").is_file()

    _run([str(bin_dir / "python"), "-c",
          "from deepseg.data.synthetic import make_synthetic_customers\n"
          "d = make_synthetic_customers(n_samples=300)\n"
          "d.frame.to_csv('new.csv', index=False)"], work)  # fmt: skip
    _run([str(bin_dir / "deepseg-predict"), "bundle=train/bundle", "input=new.csv",
          "output=assignments.csv"], work)  # fmt: skip
    predicted = pd.read_csv(work / "assignments.csv")
    trained = pd.read_csv(work / "train" / "assignments.csv")
    assert predicted["segment"].tolist() == trained["segment"].tolist()

    board = _run([str(bin_dir / "deepseg-leaderboard"), "dir=train"], work).stdout
    assert "kmeans" in board
