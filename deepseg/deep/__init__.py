"""The deep wing: every deep clustering method, on one training skeleton.

* :mod:`~deepseg.deep.skeleton`: the one training step, Trainer construction, pretraining, the
  defaults of the grouped options;
* :mod:`~deepseg.deep.params`: declarative parameter constraints;
* :mod:`~deepseg.deep.estimator`: :class:`DeepClusterer`, the shared parameters and fit flow;
* :mod:`~deepseg.deep.init`: first centres (``kmeans`` | ``umap``) and N2D's latent model;
* one file per method: :mod:`~deepseg.deep.dec` (DEC, IDEC), :mod:`~deepseg.deep.dcn` (DCN),
  :mod:`~deepseg.deep.vade` (VaDE), :mod:`~deepseg.deep.latent` (AEKMeans, AEGMM, N2D).
"""

from deepseg.deep.dcn import DCN
from deepseg.deep.dec import DEC, IDEC
from deepseg.deep.estimator import DeepClusterer
from deepseg.deep.latent import AEGMM, N2D, AEKMeans
from deepseg.deep.vade import VaDE

__all__ = ["AEGMM", "DCN", "DEC", "IDEC", "N2D", "AEKMeans", "DeepClusterer", "VaDE"]
