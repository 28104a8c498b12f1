"""deepseg.io: atomic, fsync-ed writes with the umask's permissions, stale temporary files
removed, strict JSON, directories swapped whole."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from deepseg.io import (
    atomic_directory,
    atomic_open,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
    json_dumps,
    remove_stale_temps,
)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_and_directories_honour_the_umask(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_csv(tmp_path / "b.csv", pd.DataFrame({"a": [1]}))
    atomic_write_json(tmp_path / "c.json", {"a": 1})
    with atomic_directory(tmp_path / "bundle") as tmp:
        (tmp / "w.bin").write_bytes(b"1")
    assert [_mode(tmp_path / n) for n in ("a.txt", "b.csv", "c.json")] == [0o644] * 3
    assert _mode(tmp_path / "bundle") == 0o755
    old = os.umask(0o077)
    try:
        atomic_write_text(tmp_path / "private.txt", "x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "private.txt") == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half of the new")
        raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.csv"
    code = (
        "import os, sys\nfrom deepseg.io import atomic_open\n"
        "with atomic_open(sys.argv[1]) as fh:\n"
        "    fh.write('partial'); fh.flush(); os._exit(9)\n"  # dies inside the write
    )
    proc = subprocess.run([sys.executable, "-c", code, str(target)], timeout=60)
    assert proc.returncode == 9
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and left[0].name.startswith(".out.csv.")
    # a live writer's temporary file (this process) is left alone
    with atomic_open(target) as fh:
        fh.write("new\n")
        assert remove_stale_temps(target) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    assert target.read_text() == "new\n"


def test_json_is_strict():
    text = json_dumps({"a": float("nan"), "b": [np.float32(np.inf), np.int64(3)], "c": (1.5,)})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "a": None, "b": [None, 3], "c": [1.5]
    }  # fmt: skip


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads through /proc/self/fd")
def test_a_reader_sees_the_old_or_the_new_directory_never_a_mix(tmp_path):
    target = tmp_path / "bundle"

    def write(version: int) -> None:
        with atomic_directory(target) as tmp:
            for name in ("a", "b", "c"):
                (tmp / name).write_text(str(version))

    write(0)
    stop = threading.Event()
    seen: list[tuple[str, ...]] = []

    def read() -> None:
        while not stop.is_set():
            # a reader that resolves the directory once, as deepseg.load does per attempt
            fd = os.open(target, os.O_RDONLY)
            try:
                seen.append(tuple(open(f"/proc/self/fd/{fd}/{n}").read() for n in "abc"))
            except FileNotFoundError:
                seen.append(("gone",))  # the old directory was removed under the reader
            finally:
                os.close(fd)

    reader = threading.Thread(target=read)
    reader.start()
    for version in range(1, 60):
        write(version)
    stop.set()
    reader.join()
    assert seen and all(len(set(s)) == 1 for s in seen), [s for s in seen if len(set(s)) > 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_exclusive_lock_excludes_and_waits(tmp_path):
    from deepseg.io import exclusive_lock

    lock = tmp_path / "jobs" / "k.lock"
    order: list[str] = []
    waited = threading.Event()
    holding = threading.Event()

    def second() -> None:
        holding.wait()
        with exclusive_lock(lock, on_wait=waited.set):
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with exclusive_lock(lock):
        holding.set()
        assert waited.wait(timeout=30)  # the other one is blocked on our lock
        order.append("first")
    thread.join(timeout=30)
    assert order == ["first", "second"]
    # filelock keeps the file (waiters share its inode); nothing else is left beside it
    assert [p.name for p in (tmp_path / "jobs").iterdir()] == ["k.lock"]
