"""Helpers shared by the tasks: calling config targets, seeds, provenance, safe writes."""

from __future__ import annotations

import functools
import inspect
import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

import deepseg


def to_container(node: Any) -> Any:
    """A resolved plain-Python copy of a config node."""
    if isinstance(node, DictConfig) or OmegaConf.is_list(node):
        return OmegaConf.to_container(node, resolve=True)
    return node


def get_target(path: str) -> Any:
    """The object named by a dotted ``_target_`` path."""
    from hydra.utils import get_object

    try:
        return get_object(path)
    except Exception as exc:
        raise ValueError(f"Cannot import '{path}' named as _target_ in the config: {exc}") from exc


def call_target(node: Mapping[str, Any] | DictConfig, **extra: Any) -> Any:
    """Call a config node's ``_target_`` with its keys, plus ``extra``.

    Unlike ``hydra.utils.instantiate`` this lets the callee's own exception through unwrapped,
    so the command line can report it as one clear line.
    """
    kwargs = dict(to_container(node))
    target = kwargs.pop("_target_", None)
    if target is None:
        raise ValueError(f"Config node has no _target_: {sorted(kwargs)}")
    kwargs.update(extra)
    return get_target(target)(**kwargs)


def accepted_kwargs(target: str, candidates: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``candidates`` that ``target``'s constructor accepts."""
    obj = get_target(target)
    params = inspect.signature(obj).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(candidates)
    return {k: v for k, v in candidates.items() if k in params}


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (when something has imported it: no import cost otherwise)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds third-party code that uses it
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def torch_threads() -> int | None:
    """torch's intra-op thread count, on which float sums and so a deep method's labels for a
    seed depend; None when nothing has imported torch (classic methods only: no import cost)."""
    torch = sys.modules.get("torch")
    return None if torch is None else int(torch.get_num_threads())


@functools.cache
def git_commit() -> str:
    """The commit of the deepseg source tree ("+dirty" when it has uncommitted changes)."""
    root = Path(deepseg.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file, so a failure leaves no
    partial file."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, so a failure leaves no partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    atomic_write_text(path, frame.to_csv(index=False))


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
