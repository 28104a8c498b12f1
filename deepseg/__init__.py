"""deepseg: customer segmentation with deep clustering and classic baselines.

The public API is re-exported lazily, so ``import deepseg`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Dataset": "deepseg.data.base",
    "ColumnRoles": "deepseg.data.base",
    "FeaturePipeline": "deepseg.features.pipeline",
    "evaluate": "deepseg.metrics",
    "choose_k": "deepseg.insight.choose_k",
    "profile_segments": "deepseg.insight.profiles",
    "load": "deepseg.bundle",
    "Segmenter": "deepseg.bundle",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'deepseg' has no attribute {name!r}")
