"""Helpers shared by the tasks: calling config targets, seeds, provenance, safe writes."""

from __future__ import annotations

import functools
import inspect
import random
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

import deepseg
from deepseg.io import (  # noqa: F401 - re-exported: the tasks' writers live in deepseg.io
    atomic_open,
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
    json_dumps,
)
from deepseg.jobs import JobStore


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


def dumps(obj: Any) -> str:
    """Sorted, strict JSON (NaN and infinities as null) for config strings, hashes and files."""
    return json_dumps(obj, sort_keys=True, default=str)


def job_store(cfg: Any) -> JobStore:
    """The job store of a train, benchmark, suite or choose-k config (``resume_dir``,
    ``resume``, ``checkpoint``: the ``job_store`` config group)."""
    return JobStore(
        cfg.get("resume_dir"),
        resume=bool(cfg.get("resume", False)),
        checkpoint=to_container(cfg.get("checkpoint")),
    )
