"""What every command-line entry point shares: where the configs are, and clean error exits."""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Errors a user can act on: reported as one line, without a traceback.
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, ImportError, KeyError)


def config_dir() -> str:
    """The configs directory on disk: $DEEPSEG_CONFIG_DIR, else the package's own
    ``deepseg/configs`` (shipped in the wheel)."""
    env = os.environ.get("DEEPSEG_CONFIG_DIR")
    if env:
        return str(Path(env).resolve())
    return str(Path(__file__).resolve().parents[1] / "configs")


def config_path() -> str:
    """What the Hydra apps load their primary config from: ``pkg://deepseg.configs`` (works from
    any directory and any install), or $DEEPSEG_CONFIG_DIR when it is set. A user's own config
    directory extends the packaged one with ``--config-dir DIR`` or
    ``hydra.searchpath=[file://DIR]``."""
    env = os.environ.get("DEEPSEG_CONFIG_DIR")
    return str(Path(env).resolve()) if env else "pkg://deepseg.configs"


def setup_entry_point() -> None:
    """Process-wide settings that belong to the command line, not to the library.

    lightning 2.6 on torch 2.13 warns about its own use of a torch internal at every fit, and
    announces the hardware at every Trainer construction: nothing a user can act on, so the
    command line keeps them out of the terminal. Importing deepseg changes neither.
    """
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)


def report_errors(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn user errors into ``<command>: error: <message>`` on stderr and exit code 2.

    With HYDRA_FULL_ERROR=1 the exception propagates with its traceback.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            setup_entry_point()
            try:
                return fn(*args, **kwargs)
            except USER_ERRORS as exc:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                print(f"{command}: error: {message}", file=sys.stderr)
                sys.exit(2)

        return wrapper

    return decorate
