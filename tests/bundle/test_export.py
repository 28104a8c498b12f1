"""torch.export and ONNX exports reproduce the torch outputs within 1e-5."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepseg.bundle import load
from deepseg.export import export

METHODS = ("dec", "ae_gmm", "vade", "dcn", "pca_kmeans")


def _reference(seg, X):
    z, proba = seg.assign_features(X)
    return z, proba


@pytest.mark.parametrize("method", METHODS)
def test_torch_export_matches_torch(trained, tmp_path, method):
    seg = load(trained.bundle(method))
    out = export(seg, tmp_path / "m.pt2", format="torch_export")
    assert out["max_abs_diff"] <= 1e-5 and out["format"] == "torch_export"
    module = torch.export.load(str(tmp_path / "m.pt2")).module()
    z_ref, proba_ref = _reference(seg, trained.X)
    # any batch size: 300 rows (cdist's matrix-product branch in torch), and a single row
    for rows in (slice(None), slice(0, 1)):
        with torch.no_grad():
            z, proba = module(torch.from_numpy(trained.X[rows]))
        np.testing.assert_allclose(z.numpy(), z_ref[rows], atol=1e-5)
        np.testing.assert_allclose(proba.numpy(), proba_ref[rows], atol=1e-5)


def test_torchscript_is_refused_naming_torch_export(trained, tmp_path):
    with pytest.raises(ValueError, match="format=torch_export"):
        export(load(trained.bundle("dec")), tmp_path / "m.pt", format="torchscript")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("method", METHODS)
def test_onnx_matches_torch(trained, tmp_path, method):
    ort = pytest.importorskip("onnxruntime")
    seg = load(trained.bundle(method))
    out = export(seg, tmp_path / "m.onnx", format="onnx")
    assert out["outputs"] == ["z", "proba"]
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    z, proba = session.run(None, {"x": trained.X})
    z_ref, proba_ref = _reference(seg, trained.X)
    np.testing.assert_allclose(z, z_ref, atol=1e-5)
    np.testing.assert_allclose(proba, proba_ref, atol=1e-5)
    assert (proba.argmax(axis=1) == trained.estimators[method].labels_).mean() == 1.0


def test_a_failed_parity_check_writes_nothing(trained, tmp_path, monkeypatch):
    import deepseg.export as ex

    seg = load(trained.bundle("dec"))
    monkeypatch.setattr(ex, "_torch_export", lambda *a: [np.zeros((512, 4)), np.zeros((512, 4))])
    with pytest.raises(ValueError, match="differs from torch"):
        export(seg, tmp_path / "m.pt2", format="torch_export")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="format"):
        export(seg, tmp_path / "m.x", format="tflite")


def test_deepseg_export_command_line(trained, tmp_path, capsys):
    import json
    import shutil

    from deepseg.cli.export import run

    bundle = tmp_path / "dec"
    shutil.copytree(trained.bundle("dec"), bundle)
    run([f"bundle={bundle}", "format=torch_export"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["output"] == str(bundle / "model.pt2") and summary["max_abs_diff"] <= 1e-5
    assert (bundle / "model.pt2").is_file()
    assert load(bundle).method == "dec"  # the extra file leaves the bundle readable
    with pytest.raises(SystemExit) as info:
        run([f"bundle={bundle}", "format=pickle"])
    assert info.value.code == 2
    assert "deepseg-export: error: The export 'format' must be one of" in capsys.readouterr().err
