"""Export a bundle's encoder plus assignment head to ONNX or a torch.export program, with a parity
check.

The exported graph takes the feature matrix (the pipeline's output, float32 of shape
(batch, n_features)) and returns ``(z, proba)``: the embedding and the soft assignments (one-hot
for hard-assignment methods). Bundles that cannot predict (n2d) export the encoder alone,
returning ``z``. The raw-table feature pipeline is not part of the graph: apply it with
:meth:`deepseg.bundle.Segmenter.prepare` (or reimplement its stored, plain-JSON state).

``format="torch_export"`` writes a ``torch.export`` program (``.pt2``; load it with
``torch.export.load(path).module()``), the supported successor of TorchScript, whose loader torch
now deprecates: ``format="torchscript"`` is refused with a message naming ``torch_export``.
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
from torch.overrides import TorchFunctionMode

from deepseg.bundle import Segmenter, load
from deepseg.io import atomic_path

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "torch_export")
SUFFIXES = {"onnx": ".onnx", "torch_export": ".pt2"}
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
        output: the file to write; default ``<bundle>/model.onnx`` or ``<bundle>/model.pt2``.
        format: "onnx" or "torch_export" (a ``torch.export`` program).
        X: feature rows for the parity check (default: :func:`parity_sample`).
        atol: the largest absolute difference accepted.

    Returns:
        ``{"output", "format", "outputs", "max_abs_diff"}``.

    Raises:
        ValueError: unknown format, or exported outputs differ from torch by more than ``atol``
            (nothing is written then).
        ImportError: ONNX without the ``export`` extra.
    """
    if format == "torchscript":
        raise ValueError(
            "The export 'format' torchscript is no longer written (torch deprecates TorchScript): "
            "use format=torch_export for a torch.export program (.pt2), or format=onnx."
        )
    if format not in FORMATS:
        raise ValueError(f"The export 'format' must be one of {list(FORMATS)}. Got {format!r}.")
    seg = bundle if isinstance(bundle, Segmenter) else load(bundle)
    if output is None:
        if seg.path is None:
            raise ValueError("Give an output path: this segmenter has no bundle directory.")
        output = seg.path / f"model{SUFFIXES[format]}"
    output = Path(output)
    module, names = _module(seg)
    X = parity_sample(seg) if X is None else np.ascontiguousarray(X, dtype=np.float32)
    expected = _torch_outputs(module, X)
    example = torch.from_numpy(X[: min(len(X), 8)])
    with atomic_path(output) as tmp:
        if format == "torch_export":
            got = _torch_export(module, example, tmp, X)
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


class _ExactCdist(TorchFunctionMode):
    """``torch.cdist`` without its matrix-product shortcut while exporting.

    cdist picks the shortcut when a side has more than 25 rows, so an export traced on a batch
    bakes in a guard on the batch size (at most 25, or more than 25). The direct computation
    has no such branch; the parity check compares it with torch's own outputs.
    """

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is torch.cdist:
            kwargs = {**kwargs, "compute_mode": "donot_use_mm_for_euclid_dist"}
        return func(*args, **kwargs)


def _torch_export(module: nn.Module, example: torch.Tensor, path: Path, X: np.ndarray) -> list:
    """Export with ``torch.export`` (the batch dimension dynamic), save, and run the reloaded
    program on ``X``."""
    batch = torch.export.Dim("batch")
    with torch.no_grad(), _ExactCdist():
        program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    reloaded = torch.export.load(str(path)).module()
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
