"""Plots of a segmentation, as PNG bytes (matplotlib's Agg canvas; no display, no pyplot state).

Every function returns the PNG as ``bytes``; the report inlines them and the tasks write them
into the run directory.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from deepseg.insight.choose_k import ChooseKResult
    from deepseg.insight.profiles import SegmentProfiles

logger = logging.getLogger(__name__)


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _sample(n: int, size: int, random_state: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size=size, replace=False))


def _label_of(names: Mapping[int, str] | None, s: int) -> str:
    return f"{s}: {names[s]}" if names and s in names else str(s)


def map_2d(
    X: np.ndarray,
    labels: np.ndarray,
    method: str = "auto",
    random_state: int = 0,
    sample_size: int = 5000,
) -> tuple[np.ndarray, np.ndarray, str]:
    """A 2-D map of (a sample of) ``X``: UMAP when importable (``auto``), else PCA.

    Returns:
        (coordinates of shape (m, 2), the sampled row indices, the method used).
    """
    if method not in ("auto", "umap", "pca"):
        raise ValueError(f"The map method must be 'auto', 'umap' or 'pca'. Got {method!r}.")
    idx = _sample(X.shape[0], sample_size, random_state)
    Xs = np.asarray(X[idx], dtype=np.float64)
    used = "pca"
    if method in ("auto", "umap"):
        try:
            import umap
        except ImportError:
            if method == "umap":
                raise ImportError(
                    "The UMAP map needs umap-learn: pip install -e '.[umap]'."
                ) from None
        else:
            used = "umap"
    if used == "umap" and Xs.shape[0] > 15:
        import umap

        reducer = umap.UMAP(n_components=2, random_state=random_state, n_jobs=1)
        coords = reducer.fit_transform(Xs)
    else:
        from sklearn.decomposition import PCA

        used = "pca"
        n_comp = min(2, Xs.shape[1])
        coords = PCA(n_components=n_comp, random_state=random_state).fit_transform(Xs)
        if n_comp == 1:
            coords = np.hstack([coords, np.zeros_like(coords)])
    return np.asarray(coords), idx, used


def plot_map(
    X: np.ndarray,
    labels: np.ndarray,
    names: Mapping[int, str] | None = None,
    method: str = "auto",
    random_state: int = 0,
    sample_size: int = 5000,
) -> bytes:
    """Scatter of the 2-D map coloured by segment."""
    coords, idx, used = map_2d(X, labels, method, random_state, sample_size)
    lab = np.asarray(labels)[idx]
    segments = sorted(int(s) for s in np.unique(lab))
    fig = _figure(8, 6)
    ax = fig.add_subplot()
    for colour, s in zip(_colours(len(segments)), segments):
        mask = lab == s
        ax.scatter(coords[mask, 0], coords[mask, 1], s=4, alpha=0.6, color=colour,
                   label=_label_of(names, s))  # fmt: skip
    ax.set_title(f"Segments on a 2-D map ({used.upper()}, {len(idx)} points)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=3, fontsize=8, loc="best", frameon=True)
    return _png(fig)


def plot_silhouette(
    X: np.ndarray,
    labels: np.ndarray,
    names: Mapping[int, str] | None = None,
    random_state: int = 0,
    sample_size: int = 3000,
) -> bytes:
    """The classic silhouette plot: sorted per-point silhouettes, one band per segment."""
    from sklearn.metrics import silhouette_samples

    idx = _sample(X.shape[0], sample_size, random_state)
    lab = np.asarray(labels)[idx]
    keep = lab != -1
    Xs, lab = np.asarray(X)[idx][keep], lab[keep]
    fig = _figure(8, 6)
    ax = fig.add_subplot()
    segments = sorted(int(s) for s in np.unique(lab))
    if len(segments) < 2 or len(segments) >= len(lab):
        ax.text(0.5, 0.5, "Silhouette undefined (fewer than 2 segments)", ha="center")
        return _png(fig)
    values = silhouette_samples(Xs, lab)
    y = 0
    for colour, s in zip(_colours(len(segments)), segments):
        v = np.sort(values[lab == s])
        ax.fill_betweenx(np.arange(y, y + len(v)), 0, v, color=colour, alpha=0.8)
        ax.text(-0.02, y + len(v) / 2, _label_of(names, s), ha="right", va="center", fontsize=8)
        y += len(v) + 10
    mean = float(values.mean())
    ax.axvline(mean, color="k", linestyle="--", linewidth=1)
    ax.set_title(f"Silhouette by segment (mean {mean:.3f}, {len(lab)} points)")
    ax.set_xlabel("silhouette coefficient")
    ax.set_yticks([])
    return _png(fig)


def plot_profile_heatmap(profiles: SegmentProfiles, max_columns: int = 25) -> bytes:
    """Z-scores of the segment means (rows: segments, columns: numeric features)."""
    z = profiles.zscores()
    fig = _figure(min(2 + 0.55 * max(len(z.columns), 1), 16), 1.5 + 0.5 * max(len(z), 1))
    ax = fig.add_subplot()
    if z.empty:
        ax.text(0.5, 0.5, "No numeric columns to profile", ha="center")
        return _png(fig)
    order = z.abs().max(axis=0).sort_values(ascending=False).index[:max_columns]
    z = z[order]
    lim = float(max(np.nanmax(np.abs(z.to_numpy())), 0.5))
    image = ax.imshow(z.to_numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(z.columns)), [str(c) for c in z.columns], rotation=60, ha="right",
                  fontsize=8)  # fmt: skip
    ax.set_yticks(range(len(z)), [_label_of(profiles.names, int(s)) for s in z.index], fontsize=8)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            value = z.iat[i, j]
            if np.isfinite(value):
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="z-score of segment mean")
    ax.set_title("Profile heatmap: segment means in population standard deviations")
    return _png(fig)


def plot_k_selection(result: ChooseKResult) -> bytes:
    """Every choose-k curve, with the knee and the recommended k marked."""
    t = result.table
    panels = [
        ("inertia", "inertia (knee marked)", None),
        ("silhouette", "silhouette (higher is better)", None),
        ("calinski_harabasz", "Calinski-Harabasz (higher is better)", None),
        ("davies_bouldin", "Davies-Bouldin (lower is better)", None),
        ("gap", "gap statistic (± s.e.)", "gap_se"),
        ("stability", "bootstrap stability, mean ARI (± s.d.)", "stability_std"),
    ]
    fig = _figure(12, 7)
    for i, (column, title, err) in enumerate(panels):
        ax = fig.add_subplot(2, 3, i + 1)
        if err is None:
            ax.plot(t["k"], t[column], marker="o")
        else:
            ax.errorbar(t["k"], t[column], yerr=t[err], marker="o", capsize=3)
        ax.axvline(result.recommended, color="tab:red", linestyle="--", linewidth=1)
        if column == "inertia":
            knee_value = t.loc[t["k"] == result.knee, "inertia"]
            ax.plot([result.knee], knee_value, marker="s", color="tab:orange", markersize=10)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("k")
        ax.set_xticks(list(t["k"]))
    fig.suptitle(f"Choosing k: recommended k = {result.recommended} (dashed line)")
    fig.tight_layout()
    return _png(fig)


def plot_dendrogram(
    X: np.ndarray, n_clusters: int, random_state: int = 0, sample_size: int = 2000
) -> bytes:
    """Ward dendrogram of (a sample of) ``X``, truncated, with the cut for ``n_clusters``."""
    from scipy.cluster.hierarchy import dendrogram, linkage

    idx = _sample(X.shape[0], sample_size, random_state)
    Z = linkage(np.asarray(X[idx], dtype=np.float64), method="ward")
    fig = _figure(10, 5)
    ax = fig.add_subplot()
    dendrogram(Z, truncate_mode="lastp", p=30, ax=ax, no_labels=True, color_threshold=0)
    if 2 <= n_clusters <= len(Z):
        cut = (Z[-n_clusters, 2] + Z[-n_clusters + 1, 2]) / 2
        ax.axhline(cut, color="tab:red", linestyle="--", linewidth=1)
    ax.set_title(f"Ward dendrogram ({len(idx)} points; dashed line: cut into {n_clusters})")
    ax.set_ylabel("merge distance")
    return _png(fig)


def plot_training_curves(metrics_csv: str | Path) -> bytes | None:
    """Loss curves from a Lightning ``CSVLogger`` file (``metrics.csv``); None when it has none."""
    frame = pd.read_csv(metrics_csv)
    columns = [c for c in frame.columns if "loss" in c]
    x = "epoch" if "epoch" in frame.columns else ("step" if "step" in frame.columns else None)
    if not columns or x is None:
        return None
    fig = _figure(8, 4.5)
    ax = fig.add_subplot()
    for column in columns:
        part = frame[[x, column]].dropna()
        if not part.empty:
            part = part.groupby(x, as_index=False)[column].mean()
            ax.plot(part[x], part[column], marker=".", label=column)
    ax.set_xlabel(x)
    ax.set_ylabel("loss")
    ax.set_title(f"Training curves ({Path(metrics_csv).parent.name})")
    ax.legend(fontsize=8)
    return _png(fig)


def plot_metric_by_method(board: pd.DataFrame, metric: str) -> bytes:
    """Mean of ``metric`` per method with error bars (std over seeds), one panel per dataset.

    Args:
        board: a leaderboard with columns ``dataset``, ``method``, ``metric`` and optionally
            ``{metric}_std`` (see :func:`deepseg.tasks.aggregate.aggregate_results`).
        metric: the metric to plot.
    """
    datasets = list(dict.fromkeys(board["dataset"]))
    n_methods = max(int(board.groupby("dataset").size().max()), 1)
    fig = _figure(max(4.0, 0.6 * n_methods + 1.5), 2.8 * len(datasets))
    for i, name in enumerate(datasets):
        ax = fig.add_subplot(len(datasets), 1, i + 1)
        part = board[board["dataset"] == name]
        x = np.arange(len(part))
        std = part[f"{metric}_std"] if f"{metric}_std" in part else None
        yerr = None if std is None else np.nan_to_num(std.to_numpy(dtype=float))
        ax.bar(x, part[metric].to_numpy(dtype=float), yerr=yerr, capsize=4, color="#4c72b0")
        ax.set_xticks(x, [str(m) for m in part["method"]], rotation=30, ha="right")
        ax.set_ylabel(metric)
        ax.set_title(f"{name}: {metric} by method (mean ± std over seeds)")
    fig.tight_layout()
    return _png(fig)
