"""Plots: every function returns a PNG; the map falls back to PCA; training curves from a CSV."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from deepseg.insight import plots
from deepseg.insight.choose_k import choose_k
from deepseg.insight.profiles import profile_segments

PNG = b"\x89PNG\r\n\x1a\n"


def _size(png: bytes) -> tuple[int, int]:
    from matplotlib.image import imread

    return imread(io.BytesIO(png)).shape[:2]


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(n_samples=300, n_features=5, centers=3, random_state=0)
    labels = np.repeat([0, 1, 2], 100)[np.argsort(np.argsort(X[:, 0]))]
    return X, labels


def test_every_plot_is_a_png(blobs):
    X, labels = blobs
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(5)])
    profiles = profile_segments(frame, labels)
    result = choose_k(X, (2, 5), n_bootstrap=2, n_references=2)
    pngs = [
        plots.plot_map(X, labels, profiles.names, method="pca"),
        plots.plot_silhouette(X, labels, profiles.names),
        plots.plot_profile_heatmap(profiles),
        plots.plot_k_selection(result),
        plots.plot_dendrogram(X, 3),
    ]
    for png in pngs:
        assert png[:8] == PNG
        height, width = _size(png)
        assert height > 200 and width > 300


def test_map_methods(blobs):
    X, labels = blobs
    coords, idx, used = plots.map_2d(X, labels, method="pca", sample_size=100)
    assert coords.shape == (100, 2) and used == "pca" and len(np.unique(idx)) == 100
    with pytest.raises(ValueError, match="'auto', 'umap' or 'pca'"):
        plots.map_2d(X, labels, method="tsne")


def test_training_curves_from_a_lightning_csv(tmp_path):
    csv = tmp_path / "version_0" / "metrics.csv"
    csv.parent.mkdir()
    pd.DataFrame(
        {"epoch": [0, 0, 1, 1, 2], "step": range(5), "train/loss": [3, 2.5, 2, 1.8, 1.5]}
    ).to_csv(csv, index=False)
    assert plots.plot_training_curves(csv)[:8] == PNG
    no_loss = tmp_path / "other.csv"
    pd.DataFrame({"epoch": [0], "lr": [0.1]}).to_csv(no_loss, index=False)
    assert plots.plot_training_curves(no_loss) is None
