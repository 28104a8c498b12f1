"""deepseg: customer segmentation with deep clustering and classic baselines.

The public API is re-exported lazily, so ``import deepseg`` stays light (no torch, no
scikit-learn) and changes no global state; ``dir(deepseg)`` and type checkers see every name.

>>> import deepseg
>>> "DEC" in dir(deepseg) and "load" in dir(deepseg)
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from deepseg._version import __version__

_EXPORTS = {
    # deep clustering estimators
    "DEC": "deepseg.deep.dec",
    "IDEC": "deepseg.deep.dec",
    "DCN": "deepseg.deep.dcn",
    "VaDE": "deepseg.deep.vade",
    "N2D": "deepseg.deep.latent",
    "AEKMeans": "deepseg.deep.latent",
    "AEGMM": "deepseg.deep.latent",
    # label-free choice among several methods
    "AutoCluster": "deepseg.auto",
    "SelfTraining": "deepseg.refine",
    # classic baselines with the same interface
    "GMMClusterer": "deepseg.baselines",
    "PCAKMeans": "deepseg.baselines",
    "AutoEpsDBSCAN": "deepseg.baselines",
    "DensityHDBSCAN": "deepseg.baselines",
    # data and features
    "Dataset": "deepseg.data.base",
    "ColumnRoles": "deepseg.data.base",
    "FeaturePipeline": "deepseg.features.pipeline",
    # trained segmenters
    "load": "deepseg.bundle",
    "save_bundle": "deepseg.bundle",
    "Segmenter": "deepseg.bundle",
    # insight
    "choose_k": "deepseg.insight.choose_k",
    "profile_segments": "deepseg.insight.profiles",
    # metrics
    "evaluate": "deepseg.metrics",
    "METRICS": "deepseg.metrics",
    "acc": "deepseg.metrics",
    "nmi": "deepseg.metrics",
    "ari": "deepseg.metrics",
    "ami": "deepseg.metrics",
    "silhouette": "deepseg.metrics",
    "davies_bouldin": "deepseg.metrics",
    "calinski_harabasz": "deepseg.metrics",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load on first use
    from deepseg.auto import AutoCluster
    from deepseg.baselines import AutoEpsDBSCAN, DensityHDBSCAN, GMMClusterer, PCAKMeans
    from deepseg.bundle import Segmenter, load, save_bundle
    from deepseg.data.base import ColumnRoles, Dataset
    from deepseg.deep.dcn import DCN
    from deepseg.deep.dec import DEC, IDEC
    from deepseg.deep.latent import AEGMM, N2D, AEKMeans
    from deepseg.deep.vade import VaDE
    from deepseg.features.pipeline import FeaturePipeline
    from deepseg.insight.choose_k import choose_k
    from deepseg.insight.profiles import profile_segments
    from deepseg.metrics import (
        METRICS,
        acc,
        ami,
        ari,
        calinski_harabasz,
        davies_bouldin,
        evaluate,
        nmi,
        silhouette,
    )
    from deepseg.refine import SelfTraining


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'deepseg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
