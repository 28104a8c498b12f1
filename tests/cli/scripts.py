"""Finding the console scripts that the command-line tests run."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def project_scripts() -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml: name -> ``module:function``."""
    return tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]


def console_script(name: str) -> str:
    """The installed console script ``name``, preferably beside the running interpreter."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    assert found, f"The console script '{name}' is not installed (pip install -e .)."
    return found


def script_command(name: str) -> list[str]:
    """How to run the console script ``name``: the installed script, or, for a script declared
    in pyproject.toml but not installed yet (the editable install predates it), its entry point
    run by this interpreter."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found:
        return [found]
    module, _, function = project_scripts()[name].partition(":")
    code = f"import sys; from {module} import {function}; sys.exit({function}())"
    return [sys.executable, "-c", code]


def run_script(
    name: str, *args: str, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the console script ``name`` with ``args`` in ``cwd`` (one OpenMP / MKL thread, no
    HYDRA_FULL_ERROR so that errors are the one-line kind a user sees); never raises on a
    non-zero exit."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [*script_command(name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
