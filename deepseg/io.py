"""Crash-safe, shareable file writes: the one place deepseg puts bytes on disk.

Every file deepseg writes goes through :func:`atomic_write` (or its text / JSON / CSV / stream
variants): the bytes go to a hidden temporary file beside the target, are flushed and
``fsync``-ed, the temporary file replaces the target with ``os.replace`` and the directory is
``fsync``-ed, so after a crash the target holds either its old or its new contents, never a
part. Temporary files are created with mode ``0o666`` (directories ``0o777``) filtered by the
process umask, like any ``open(..., "w")``: with umask 022 a teammate or a service account can
read the results (``tempfile.mkstemp`` would give 0600).

A temporary name records the host and the process that wrote it
(``.<target>.<host>-<pid>.<random>.tmp``). A writer that is killed leaves its temporary file
behind; the next write to the same target removes it once its process is gone
(:func:`remove_stale_temps`). Directories are swapped in with :func:`atomic_directory`.

This module imports nothing from deepseg, so every layer can use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import logging
import math
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

TMP_SUFFIX = ".tmp"
# Temporary files of another host cannot be checked for a live process: removed after this age.
FOREIGN_TMP_MAX_AGE = 24 * 3600.0
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"


# -- strict JSON -------------------------------------------------------------------------------


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf) replaced by None, numpy scalars and
    arrays as plain Python, tuples as lists."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {(k if isinstance(k, str) else str(k)): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays, without importing numpy
    if callable(tolist):
        return _finite(tolist())
    return obj


def json_dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that any strict JSON reader accepts: NaN and infinities become ``null``.

    Args:
        obj: the value; numpy scalars and arrays are converted.
        **kwargs: passed to ``json.dumps`` (``indent``, ``sort_keys``, ``default``).
    """
    return json.dumps(_finite(obj), allow_nan=False, **kwargs)


# -- what is on disk -----------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files_of(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_file():  # an existing file is that file, glob characters in its name or not
        return [p]
    if p.is_dir():
        return sorted(
            f
            for f in p.rglob("*")
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
        )
    import glob

    return sorted(Path(f) for f in glob.glob(str(path)) if Path(f).is_file())


def content_fingerprint(path: str | Path | list[str | Path] | tuple[str | Path, ...]) -> dict:
    """What the file(s) behind a data path hold: per file the size, modification time and
    SHA-256 of the contents, and one SHA-256 over all of them.

    ``path`` is a file, a directory (every non-hidden file under it), a glob or a list of
    these. Only the contents enter ``sha256``: the same bytes under another modification time
    (a copy, a ``touch``) are the same data.

    Returns:
        ``{"sha256", "n_files", "bytes", "files": [{"path", "bytes", "mtime", "sha256"}]}``;
        ``n_files`` 0 when nothing exists at ``path`` (the loader then says what is missing).
    """
    import hashlib

    items = list(path) if isinstance(path, list | tuple) else [path]
    files = [f for item in items for f in _files_of(item)]
    entries = []
    total = hashlib.sha256()
    for f in files:
        st = f.stat()
        sha = _sha256_file(f)
        entries.append(
            {"path": str(f), "bytes": st.st_size, "mtime": st.st_mtime_ns / 1e9, "sha256": sha}
        )
        total.update(f"{st.st_size}:{sha}\n".encode())
    return {
        "sha256": total.hexdigest(),
        "n_files": len(entries),
        "bytes": sum(e["bytes"] for e in entries),
        "files": entries,
    }


# -- temporary files -----------------------------------------------------------------------------


def _tmp_name(target: Path) -> Path:
    token = secrets.token_hex(4)
    return target.with_name(f".{target.name}.{_HOST}-{os.getpid()}.{token}{TMP_SUFFIX}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, but another user's
    return True


def remove_stale_temps(target: str | Path) -> list[Path]:
    """Remove the temporary files (or directories) left beside ``target`` by killed writers.

    A temporary file of this host is stale when the process that made it is gone; one of
    another host (a shared disk) or without a writer id (older deepseg) when it is older than
    :data:`FOREIGN_TMP_MAX_AGE`. Live writers' files are left alone.

    Returns:
        The removed paths.
    """
    target = Path(target)
    directory = target.parent
    if not directory.is_dir():
        return []
    prefix = f".{target.name}."
    pattern = re.compile(
        rf"^{re.escape(prefix)}(?:(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.)?[^.]+{TMP_SUFFIX}$"
    )
    removed = []
    now = time.time()
    for entry in directory.iterdir():
        match = pattern.match(entry.name)
        if match is None:
            continue
        if match["pid"] is not None and match["host"] == _HOST:
            stale = not _pid_alive(int(match["pid"]))
        else:
            try:
                stale = now - entry.lstat().st_mtime > FOREIGN_TMP_MAX_AGE
            except OSError:
                continue
        if not stale:
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.warning("Could not remove the stale temporary file %s: %s", entry, exc)
            continue
        logger.info("Removed %s, left by an interrupted write", entry)
        removed.append(entry)
    return removed


def fsync_directory(directory: str | Path) -> None:
    """``fsync`` a directory, so a rename in it survives a power cut (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # e.g. Windows, or file systems that do not sync directories
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path that replaces ``path`` when the ``with`` block ends without error.

    For writers that take a file name (ONNX, TorchScript). The temporary file exists, empty,
    with the umask's permissions; whatever the block writes there is ``fsync``-ed and moved
    onto ``path``. On an error it is removed and ``path`` keeps its earlier contents.

    Yields:
        The temporary file's path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = _tmp_name(target)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_directory(target.parent)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` when the ``with`` block ends without error.

    On an error the temporary file is removed and ``path`` keeps its earlier contents. Used for
    outputs written in pieces (chunked predictions).

    Args:
        path: the target file; its directory is created.
        mode: "w" (text) or "wb" (bytes).
        **kwargs: passed to ``open`` (``encoding``, ``newline``).

    Yields:
        The open temporary file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb'. Got {mode!r}.")
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "w", newline="") as fh:
        fh.write(text)


def atomic_write_json(path: str | Path, obj: Any, **kwargs: Any) -> None:
    """Write ``obj`` as strict JSON (:func:`json_dumps`, NaN as null) to ``path`` atomically."""
    kwargs.setdefault("indent", 1)
    atomic_write_text(path, json_dumps(obj, **kwargs) + "\n")


#: A text cell beginning with one of these is read as a formula by spreadsheets (CSV injection,
#: CWE-1236; OWASP's guidance): it is written with a leading apostrophe.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def spreadsheet_safe(frame: Any) -> Any:
    """A copy of a pandas frame whose text cells and column names cannot run as formulas.

    Every text cell (and column name) beginning with ``= + - @``, TAB or CR gets a leading
    apostrophe, which spreadsheets show as text. Numbers stay numbers: a numeric column is
    never touched, so ``-2.5`` in a numeric column is written as ``-2.5``.

    >>> import pandas as pd
    >>> spreadsheet_safe(pd.DataFrame({"name": ["=1+1", "ok"], "x": [-2.5, 1.0]})).to_dict("list")
    {'name': ["'=1+1", 'ok'], 'x': [-2.5, 1.0]}
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        kind = getattr(values.dtype, "kind", "O")
        if kind in "OSU" or str(values.dtype) in ("str", "string", "category"):
            out[column] = values.astype(object).map(_neutralise)
    out.columns = [_neutralise(c) for c in out.columns]
    return out


def atomic_write_csv(path: str | Path, frame: Any, *, safe: bool = True, **kwargs: Any) -> None:
    """Write a pandas frame as CSV (no index unless asked) to ``path`` atomically.

    With ``safe`` (the default) text cells and column names are made
    :func:`spreadsheet_safe` first: every CSV that deepseg writes may be opened by people in a
    spreadsheet.
    """
    kwargs.setdefault("index", False)
    with atomic_open(path, "w", newline="") as fh:
        (spreadsheet_safe(frame) if safe else frame).to_csv(fh, **kwargs)


# -- directories ---------------------------------------------------------------------------------

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system
    or the file system cannot."""
    name = ctypes.util.find_library("c")
    if not name or not hasattr(os, "fork"):
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    res = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return res == 0


def _sync_tree(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.is_file():
            _fsync_file(entry)
    fsync_directory(directory)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """A temporary directory that takes the place of ``path`` when the ``with`` block succeeds.

    The files written into the yielded directory are ``fsync``-ed and the directory replaces
    ``path`` in one atomic exchange (Linux ``renameat2``), so a reader opening ``path`` finds the
    old directory or the new one, never a mix nor nothing. Where the exchange is unsupported the
    old directory is moved aside and the new one renamed in (a reader may then briefly find
    nothing, never a mix). On an error the temporary directory is removed and ``path`` is left
    as it was.

    Yields:
        The temporary directory to fill.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = _tmp_name(target)
    os.mkdir(tmp, 0o777)  # the umask applies, as for any new directory
    try:
        yield tmp
        _sync_tree(tmp)
        if not target.exists():
            os.replace(tmp, target)
        elif _exchange(tmp, target):
            pass  # tmp now holds the old directory
        else:
            aside = _tmp_name(target)
            os.replace(target, aside)
            os.replace(tmp, target)
            tmp = aside
        fsync_directory(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# -- locks ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def exclusive_lock(path: str | Path, on_wait: Any = None) -> Iterator[None]:
    """Hold an exclusive OS lock on the file ``path`` for the ``with`` block (``filelock``).

    The lock dies with its process (``flock`` on POSIX), so a killed holder never blocks
    anyone. The lock file stays after the block: waiters must share one inode, and removing it
    while another process waits on it would let a third one lock a new file beside them.

    Args:
        path: the lock file; its directory is created.
        on_wait: called once, with no arguments, when another process holds the lock.
    """
    from filelock import FileLock, Timeout

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # thread_local=False: the lock object is ours alone, whichever thread releases it
    lock = FileLock(str(target), thread_local=False)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


# -- memory-mapped feature matrices ------------------------------------------------------------


def feature_storage(directory: str | Path, memmap_gb: float | None) -> Any:
    """An ``out`` for :meth:`deepseg.features.pipeline.FeaturePipeline.fit_transform`: a
    function of (rows, features) that returns a float32 matrix to fill.

    A matrix of more than ``memmap_gb`` GB (10^9 bytes) is a ``numpy.memmap`` on an anonymous
    file in ``directory``: the file is unlinked as soon as it is mapped, so the operating system
    pages the rows in and out as training reads them, the space returns when the process ends,
    and a killed run leaves nothing behind. For smaller matrices (or ``memmap_gb`` None) it
    returns None: the pipeline makes an ordinary array. 0 maps every matrix.

    Args:
        directory: where the file lives while mapped (the run directory).
        memmap_gb: the size above which the matrix is memory-mapped, or None for never.
    """
    import numpy as np

    if memmap_gb is not None and (isinstance(memmap_gb, bool) or float(memmap_gb) < 0):
        raise ValueError(f"'features_memmap_gb' must be a number >= 0 or null. Got {memmap_gb!r}.")

    def out(n_rows: int, n_features: int) -> Any:
        size = int(n_rows) * int(n_features) * 4
        if memmap_gb is None or (float(memmap_gb) > 0 and size <= float(memmap_gb) * 1e9):
            return None
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f".features.{_HOST}-{os.getpid()}.{secrets.token_hex(4)}.f32"
        matrix = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_rows, n_features))
        path.unlink()  # the mapping stays valid; nothing is left behind after the process
        logger.info(
            "Feature matrix (%d x %d, %.2f GB) memory-mapped on a file in %s",
            n_rows,
            n_features,
            size / 1e9,
            folder,
        )
        return matrix

    return out
