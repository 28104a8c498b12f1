"""What every command-line entry point shares: where the configs are, and clean error exits."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# lightning 2.6 on torch 2.13 warns about its own use of a torch internal at every fit; nothing a
# user can act on, so the command line keeps it out of their terminal
warnings.filterwarnings("ignore", message=r".*LeafSpec.*")

# Errors a user can act on: reported as one line, without a traceback.
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, ImportError, KeyError)


def config_dir() -> str:
    """The ``configs/`` directory: $DEEPSEG_CONFIG_DIR, else the one beside the package source."""
    env = os.environ.get("DEEPSEG_CONFIG_DIR")
    if env:
        return str(Path(env).resolve())
    return str(Path(__file__).resolve().parents[2] / "configs")


def report_errors(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn user errors into ``<command>: error: <message>`` on stderr and exit code 2.

    With HYDRA_FULL_ERROR=1 the exception propagates with its traceback.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
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
