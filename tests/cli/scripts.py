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


def run_in_process(
    name: str, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the console script ``name`` with ``args`` in this process: its entry point (from
    pyproject.toml) with ``sys.argv`` set, in ``cwd``, stdout and stderr captured, the exit code
    taken from ``SystemExit`` (an uncaught exception gives 1 and its traceback on stderr, as the
    interpreter would). For tests whose subject is the command's behaviour rather than the
    process boundary: no interpreter start and no torch import per call.

    ``env`` replaces the named environment variables for the run (HYDRA_FULL_ERROR is unset
    unless given, as in :func:`run_script`). Logging, the working directory, ``sys.argv`` and
    the environment are restored afterwards.
    """
    import contextlib
    import importlib
    import io
    import logging
    import traceback

    module, _, function = project_scripts()[name].partition(":")
    entry = getattr(importlib.import_module(module), function)
    overrides = {"HYDRA_FULL_ERROR": None, **(env or {})}
    saved_env = {key: os.environ.get(key) for key in overrides}
    loggers = [logging.getLogger(), *[
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]]  # fmt: skip
    saved_logging = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in loggers]
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    try:
        for key, value in overrides.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.chdir(cwd)
        sys.argv = [name, *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                entry()
            except SystemExit as exc:
                code = exc.code
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for lg, handlers, level, propagate, disabled in saved_logging:
            for added in [h for h in lg.handlers if h not in handlers]:
                added.close()  # e.g. Hydra's log file handler
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, exit status 1
        err.write(f"{code}\n")
        code = 1
    return subprocess.CompletedProcess([name, *args], code, out.getvalue(), err.getvalue())
