"""Damaged or foreign bundles are refused with an error naming the file and the problem."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deepseg.bundle import MANIFEST, WEIGHTS, BundleError, _sha256, load, manifest_digest


class _Payload:
    """Unpickling this creates ``path``: the file proves whether anything unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def bundle(trained, tmp_path) -> Path:
    copy = tmp_path / "dec"
    shutil.copytree(trained.bundle("dec"), copy)
    return copy


def _edit_manifest(bundle: Path, edit, reseal: bool = True) -> None:
    """Edit the manifest; ``reseal``: as a forger would, also recompute its own checksum (so
    the checks behind the manifest checksum are exercised)."""
    path = bundle / MANIFEST
    manifest = json.loads(path.read_text())
    edit(manifest)
    if reseal:
        manifest["manifest_sha256"] = manifest_digest(manifest)
    path.write_text(json.dumps(manifest))


def test_the_payload_really_creates_its_file_when_unpickled(tmp_path):
    # the positive control: the payload is live, so the tests below can fail
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(marker))).close()
    assert marker.exists()


@pytest.mark.parametrize("update_checksum", [False, True])
def test_pickled_weights_are_refused_and_never_unpickled(bundle, tmp_path, update_checksum):
    marker = tmp_path / "pwned"
    (bundle / WEIGHTS).write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    if update_checksum:  # a forger who also fixed the manifest still gets nothing run
        _edit_manifest(bundle, lambda m: m["files"].update({WEIGHTS: _sha256(bundle / WEIGHTS)}))
    with pytest.raises(BundleError, match=WEIGHTS) as info:
        load(bundle)
    message = str(info.value)
    assert "checksum mismatch" in message if not update_checksum else "not a valid" in message
    assert not marker.exists()


def test_pickled_weights_in_a_fresh_process_create_no_file(bundle, tmp_path):
    marker = tmp_path / "pwned_fresh"
    payload = f"""
import pickle
class P:
    def __reduce__(self):
        return (open, ({str(marker)!r}, "w"))
"""
    ns: dict = {}
    exec(payload, ns)
    (bundle / WEIGHTS).write_bytes(pickle.dumps(ns["P"]()))
    _edit_manifest(bundle, lambda m: m["files"].update({WEIGHTS: _sha256(bundle / WEIGHTS)}))
    code = (
        f"import deepseg\ntry:\n    deepseg.load({str(bundle)!r})\n"
        "except ValueError as e:\n    print(e)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "not a valid safetensors" in out.stdout, out.stderr[-2000:]
    assert not marker.exists()


def test_truncated_weights(bundle):
    data = (bundle / WEIGHTS).read_bytes()
    (bundle / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=rf"{WEIGHTS}: checksum mismatch"):
        load(bundle)
    # and with a matching checksum, safetensors itself refuses the short file
    _edit_manifest(bundle, lambda m: m["files"].update({WEIGHTS: _sha256(bundle / WEIGHTS)}))
    with pytest.raises(BundleError, match=rf"{WEIGHTS}: not a valid safetensors"):
        load(bundle)


def test_missing_weights_file(bundle):
    os.remove(bundle / WEIGHTS)
    with pytest.raises(BundleError, match=rf"{WEIGHTS}: missing"):
        load(bundle)


@pytest.mark.parametrize("field", ["pipeline", "model", "deepseg_version", "fingerprint"])
def test_missing_manifest_field(bundle, field):
    _edit_manifest(bundle, lambda m: m.pop(field))
    with pytest.raises(
        BundleError, match=rf"{MANIFEST}: missing manifest field\(s\) \['{field}'\]"
    ):
        load(bundle)


def test_incompatible_versions(bundle):
    _edit_manifest(bundle, lambda m: m.update(format_version=99))
    with pytest.raises(BundleError, match=r"format version 99 is not supported"):
        load(bundle)
    _edit_manifest(bundle, lambda m: m.update(format_version=1, deepseg_version="7.0.0"))
    with pytest.raises(BundleError, match=r"written by deepseg 7.0.0, which is incompatible"):
        load(bundle)


@pytest.mark.parametrize(
    ("written", "accepted"),
    [("0.1.0rc1", True), ("0.0.9", True), ("0.1.1", False), ("0.1.1rc1", False),
     ("0.1.0.post1", False), ("1.0.0", False)],
)  # fmt: skip
def test_bundle_versions_are_compared_as_versions(bundle, monkeypatch, written, accepted):
    import deepseg

    # read by a 0.1.0 whatever deepseg is now: a release candidate is older than its release
    # (a digit-picking parser read 0.1.0rc1 as 0.1.1, newer, and refused it)
    monkeypatch.setattr(deepseg, "__version__", "0.1.0")
    _edit_manifest(bundle, lambda m: m.update(deepseg_version=written))
    if accepted:
        assert load(bundle).manifest["deepseg_version"] == written
    else:
        with pytest.raises(BundleError, match=rf"written by deepseg {written}, which is incomp"):
            load(bundle)


def test_an_unreadable_version_is_refused(bundle):
    _edit_manifest(bundle, lambda m: m.update(deepseg_version="zero.one"))
    with pytest.raises(BundleError, match=r"deepseg_version 'zero.one' is not a version number"):
        load(bundle)


def test_corrupt_manifest_and_weights_that_do_not_fit(bundle):
    _edit_manifest(bundle, lambda m: m["model"]["encoder"]["config"].update(latent_dim=5))
    with pytest.raises(BundleError, match=rf"{WEIGHTS}: the weights do not fit"):
        load(bundle)
    (bundle / MANIFEST).write_text('{"format": "deepseg-bundle", ')
    with pytest.raises(BundleError, match=rf"{MANIFEST}: not valid JSON"):
        load(bundle)


def test_not_a_bundle(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load(tmp_path / "nothing")
    with pytest.raises(BundleError, match=f"{MANIFEST}: missing"):
        load(tmp_path)


def _set_alpha(m, value):
    m["model"]["head"]["alpha"] = value


@pytest.mark.parametrize("reseal", [False, True])
def test_an_edited_alpha_or_n_clusters_is_refused(bundle, reseal):
    # the case: alpha 1 -> 5 moved every confidence (mean 0.78 -> 0.99) unnoticed
    assert load(bundle).manifest["model"]["head"]["alpha"] == 1.0
    expected = "manifest checksum mismatch" if not reseal else "does not match the weights"
    _edit_manifest(bundle, lambda m: _set_alpha(m, 5.0), reseal=reseal)
    with pytest.raises(BundleError, match=expected):
        load(bundle)
    _edit_manifest(bundle, lambda m: _set_alpha(m, 1.0), reseal=True)
    load(bundle)  # restored: accepted again
    _edit_manifest(bundle, lambda m: m["model"].update(n_clusters=3), reseal=reseal)
    with pytest.raises(BundleError, match=expected):
        load(bundle)
    _edit_manifest(
        bundle, lambda m: (m["model"].update(n_clusters=4), m["params"].update(n_clusters=5))
    )
    with pytest.raises(BundleError, match=r"params.n_clusters=5 does not match the weights"):
        load(bundle)


def test_a_manifest_without_its_checksum_is_refused(bundle):
    _edit_manifest(bundle, lambda m: m.pop("manifest_sha256"), reseal=False)
    with pytest.raises(BundleError, match="no manifest checksum"):
        load(bundle)
