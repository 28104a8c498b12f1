"""Shared inputs of the insight tests: the synthetic customers and their feature matrix."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import yaml

from deepseg.cli.common import config_dir
from deepseg.data.base import Dataset
from deepseg.data.synthetic import make_synthetic_customers
from deepseg.features.pipeline import FeaturePipeline


@functools.cache
def synthetic(seed: int = 0, n_samples: int = 5000) -> tuple[Dataset, FeaturePipeline, np.ndarray]:
    """The synthetic customers of ``seed`` and their features with the default feature config,
    text as TF-IDF (the tests read its named components; sentence embeddings are tested in
    tests/features/test_text.py)."""
    dataset = make_synthetic_customers(n_samples=n_samples, random_state=seed)
    options = yaml.safe_load((Path(config_dir()) / "features" / "default.yaml").read_text())
    options["text"]["method"] = "tfidf"
    pipeline = FeaturePipeline(**options)
    return dataset, pipeline, pipeline.fit_transform(dataset)
