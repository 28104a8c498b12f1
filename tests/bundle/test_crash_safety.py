"""Bundles are swapped whole: a reader loading while another process re-saves gets the old or
the new bundle, never an error or a mix; the files are readable by the group (umask 022)."""

from __future__ import annotations

import os
import stat
import threading

import numpy as np

from deepseg.bundle import load, save_bundle


def _save(trained, target, method: str) -> None:
    save_bundle(
        target, estimator=trained.estimators[method], pipeline=trained.pipeline,
        dataset=trained.dataset, X=trained.X, method=method, method_config={}, data_config={},
    )  # fmt: skip


def test_loading_while_the_bundle_is_replaced(trained, tmp_path):
    target = tmp_path / "bundle"
    _save(trained, target, "kmeans")
    expected = {m: trained.estimators[m].labels_ for m in ("kmeans", "gmm")}
    stop = threading.Event()
    loaded: list[str] = []
    errors: list[Exception] = []

    def read() -> None:
        while not stop.is_set():
            try:
                seg = load(target)
                np.testing.assert_array_equal(seg.predict(trained.frame), expected[seg.method])
                loaded.append(seg.method)
            except Exception as exc:  # any failure is the test's failure
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(30):
            _save(trained, target, ("gmm", "kmeans")[i % 2])
    finally:
        stop.set()
        reader.join()
    assert not errors, errors[:3]
    assert len(loaded) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_bundle_files_honour_the_umask(trained, tmp_path):
    old = os.umask(0o022)
    try:
        _save(trained, tmp_path / "b", "kmeans")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "b").iterdir()}
    assert set(modes.values()) == {0o644}, modes
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o755
