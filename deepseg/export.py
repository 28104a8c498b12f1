"""Export a bundle's encoder plus assignment head to TorchScript or ONNX, with a parity check.

The exported graph takes the feature matrix (the pipeline's output, float32 of shape
(batch, n_features)) and returns ``(z, proba)``: the embedding and the soft assignments (one-hot
for hard-assignment methods). Bundles that cannot predict (n2d) export the encoder alone,
returning ``z``. The raw-table feature pipeline is not part of the graph: apply it with
:meth:`deepseg.bundle.Segmenter.prepare` (or reimplement its stored, plain-JSON state).

ONNX needs the optional ``export`` extra (onnx, onnxruntime, onnxscript).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepseg.bundle import Segmenter, load
from deepseg.io import atomic_path

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
PARITY_ATOL = 1e-5


class _EncoderOnly(nn.Module):
    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


def _module(seg: Segmenter) -> tuple[nn.Module, list[str]]:
    if seg.net is not None:
        return seg.net.eval(), ["z", "proba"]
    return _EncoderOnly(seg.encoder).eval(), ["z"]


def parity_sample(seg: Segmenter, n: int = 512, seed: int = 0) -> np.ndarray:
    """Feature rows to compare exported and torch outputs on: standard normal draws, the scale
    of the pipeline's standardised output."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, len(seg.feature_names))).astype(np.float32)


def _torch_outputs(module: nn.Module, X: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(torch.from_numpy(X))
    outs = out if isinstance(out, tuple) else (out,)
    return [o.float().numpy() for o in outs]


def export(
    bundle: str | Path | Segmenter,
    output: str | Path | None = None,
    *,
    format: str = "onnx",
    X: np.ndarray | None = None,
    atol: float = PARITY_ATOL,
) -> dict[str, Any]:
    """Export a bundle and check the exported outputs against torch.

    Args:
        bundle: a bundle directory or a loaded :class:`Segmenter`.
        output: the file to write; default ``<bundle>/model.onnx`` or ``<bundle>/model.pt``.
        format: "onnx" or "torchscript".
        X: feature rows for the parity check (default: :func:`parity_sample`).
        atol: the largest absolute difference accepted.

    Returns:
        ``{"output", "format", "outputs", "max_abs_diff"}``.

    Raises:
        ValueError: unknown format, or exported outputs differ from torch by more than ``atol``
            (nothing is written then).
        ImportError: ONNX without the ``export`` extra.
    """
    if format not in FORMATS:
        raise ValueError(f"The export 'format' must be one of {list(FORMATS)}. Got {format!r}.")
    seg = bundle if isinstance(bundle, Segmenter) else load(bundle)
    if output is None:
        if seg.path is None:
            raise ValueError("Give an output path: this segmenter has no bundle directory.")
        output = seg.path / ("model.onnx" if format == "onnx" else "model.pt")
    output = Path(output)
    module, names = _module(seg)
    X = parity_sample(seg) if X is None else np.ascontiguousarray(X, dtype=np.float32)
    expected = _torch_outputs(module, X)
    example = torch.from_numpy(X[: min(len(X), 8)])
    with atomic_path(output) as tmp:
        if format == "torchscript":
            got = _torchscript(module, example, tmp, X)
        else:
            got = _onnx(module, example, tmp, X, names)
        diff = max(float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(expected, got))
        if not diff <= atol:
            raise ValueError(
                f"The {format} export of the {seg.method} bundle differs from torch by {diff:.3g} "
                f"(> {atol:g}); nothing was written."
            )
    logger.info("Exported %s to %s (max |diff| %.3g)", seg.method, output, diff)
    return {"output": str(output), "format": format, "outputs": names, "max_abs_diff": diff}


def _torchscript(module: nn.Module, example: torch.Tensor, path: Path, X: np.ndarray) -> list:
    # torch 2.13 deprecates TorchScript in favour of torch.export, but TorchScript files are
    # still what C++/mobile runtimes load; the parity check below guards the result
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(module, example, check_trace=False)
        traced.save(str(path))
        reloaded = torch.jit.load(str(path), map_location="cpu")
    return _torch_outputs(reloaded, X)


def _onnx(
    module: nn.Module, example: torch.Tensor, path: Path, X: np.ndarray, names: list[str]
) -> list:
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ImportError(
            "ONNX export needs the optional 'export' extra: pip install 'deepseg[export]'"
        ) from err
    dynamic = {name: {0: "batch"} for name in ["x", *names]}
    # The TorchScript-based exporter: torch 2.13's torch.export-based one cannot translate
    # torch.cdist (the nearest-centre and Student-t heads) yet
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=["x"],
            output_names=names,
            dynamic_axes=dynamic,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [np.asarray(o, dtype=np.float32) for o in session.run(None, {"x": X})]
