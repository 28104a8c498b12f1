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
    with pytest.raises(ValueError, match="'auto', 'umap', 'tsne', 'pca'"):
        plots.map_2d(X, labels, method="mds")


def test_auto_map_is_tsne_for_small_samples_and_keeps_clusters_apart():
    """A data-size rule: t-SNE up to TSNE_MAX_POINTS (no numba compile), and its map still
    separates well-separated blobs (a point's nearest map neighbour shares its blob)."""
    X, labels = make_blobs(n_samples=300, n_features=5, centers=3, random_state=0)
    coords, idx, used = plots.map_2d(X, labels, method="auto", sample_size=200)
    assert used == "tsne" and coords.shape == (len(idx), 2)
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=2).fit(coords)
    neighbour = nn.kneighbors(coords, return_distance=False)[:, 1]
    lab = np.asarray(labels)[idx]
    assert np.mean(lab[neighbour] == lab) > 0.9
    # tiny samples fall back to PCA (no neighbour graph on 15 points)
    _, _, used = plots.map_2d(X[:12], labels[:12], method="tsne")
    assert used == "pca"


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


def test_every_text_is_at_least_9_points_and_legends_sit_outside(blobs, monkeypatch):
    """Acceptance 4: readable labels; the map's legend covers no point."""
    from matplotlib.text import Text

    X, labels = blobs
    frame = pd.DataFrame(X, columns=[f"feature_{j}" for j in range(5)])
    profiles = profile_segments(frame, labels)
    figures = []
    monkeypatch.setattr(plots, "_png", lambda fig: figures.append(fig) or b"")
    plots.plot_map(X, labels, profiles.names, method="pca")
    plots.plot_silhouette(X, labels, profiles.names)
    plots.plot_profile_heatmap(profiles)
    plots.plot_k_selection(choose_k(X, (2, 5), n_bootstrap=2, n_references=2))
    plots.plot_dendrogram(X, 3)
    board = pd.DataFrame({"dataset": ["d", "d"], "method": ["kmeans", "gmm"], "acc": [0.9, 0.8]})
    plots.plot_metric_by_method(board, "acc")
    assert len(figures) == 6
    for fig in figures:
        fig.canvas.draw()
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert texts
        small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < 9]
        assert not small, small
        assert fig.get_size_inches()[0] <= 11.5  # shown at full size in the report
    fig = figures[0]
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert not legend.overlaps(ax.get_window_extent())


def test_labels_no_font_can_draw_fall_back_to_plain_ones(caplog):
    assert plots.safe_label("total spend", "column 1") == "total spend"
    private_use = "\ue000\ue001"  # in no font
    assert not plots.drawable(private_use)
    with caplog.at_level("WARNING"):
        assert plots.safe_label(private_use, "column 1") == "column 1"
    assert "fonts-noto-cjk" in caplog.text
    if any("CJK" in f for f in plots.font_families()):  # a CJK font is installed: it is used
        assert plots.drawable("客户消费")
