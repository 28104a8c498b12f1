"""Plots of a segmentation, as PNG bytes (matplotlib's Agg canvas; no display, no pyplot state).

Every function returns the PNG as ``bytes``; the report inlines them and the tasks write them
into the run directory.

Readability: every text is at least ``MIN_FONT_SIZE`` (9) points at 100 dpi, and figures are at
most 11.5 inches wide so that the report shows them at full size; legends sit outside the axes;
the fonts are DejaVu Sans with a fallback to whichever CJK font is installed (Noto Sans CJK,
Source Han Sans, WenQuanYi, Droid Sans Fallback, ...). A label with characters that no
installed font covers is replaced by a plain one ("column 3", "segment 2") instead of showing
boxes, and a warning says which font package to install.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from deepseg.threads import import_umap, keep_torch_threads

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from deepseg.insight.choose_k import ChooseKResult
    from deepseg.insight.profiles import SegmentProfiles

logger = logging.getLogger(__name__)

#: The smallest font size of any text in a plot, in points.
MIN_FONT_SIZE = 9
#: Preferred fonts, in order; matplotlib falls back along the list glyph by glyph.
FONT_FALLBACKS = (
    "DejaVu Sans",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans CJK KR",
    "Source Han Sans",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "Arial Unicode MS",
    "Noto Sans",
)


@functools.cache
def font_families() -> tuple[str, ...]:
    """The installed fonts of ``FONT_FALLBACKS``, in order (at least DejaVu Sans)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = tuple(f for f in FONT_FALLBACKS if f in installed)
    return found or ("DejaVu Sans",)


@functools.cache
def _covered() -> frozenset[int]:
    """Code points that some font of :func:`font_families` can draw."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    points: set[int] = set()
    for family in font_families():
        path = font_manager.findfont(
            font_manager.FontProperties(family=family), fallback_to_default=False
        )
        try:
            points.update(FT2Font(path).get_charmap())
        except (OSError, RuntimeError):  # an unreadable font file: skip it
            continue
    return frozenset(points)


def drawable(text: str) -> bool:
    """True when every character of ``text`` is in an installed font."""
    covered = _covered()
    return all(ord(ch) in covered or ch.isspace() for ch in text)


def safe_label(text: str, fallback: str) -> str:
    """``text`` when the installed fonts can draw it, else ``fallback`` (with a warning)."""
    if drawable(text):
        return text
    _warn_missing_font(text)
    return fallback


@functools.cache
def _warn_missing_font(text: str) -> None:
    logger.warning(
        "No installed font draws the characters of %r; plots label it plainly instead. "
        "Install a font that covers them (e.g. Debian 'fonts-noto-cjk').",
        text,
    )


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip(", ") + "…"


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _style():
        fig = Figure(figsize=(min(width, 11.5), height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _style() -> Any:
    """Matplotlib settings of every report plot: readable sizes and the font fallbacks."""
    import matplotlib as mpl

    size = MIN_FONT_SIZE
    return mpl.rc_context(
        {
            "font.family": list(font_families()),
            "font.size": size + 1,
            "axes.titlesize": size + 2,
            "axes.labelsize": size + 1,
            "xtick.labelsize": size,
            "ytick.labelsize": size,
            "legend.fontsize": size,
            "figure.titlesize": size + 3,
        }
    )


def _styled(func: Any) -> Any:
    """Run a plot function inside :func:`_style` (text takes its size when it is created)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _style():
            return func(*args, **kwargs)

    return wrapper


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with _style():
        fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _human_ticks() -> Any:
    """Tick labels as people write numbers: 260,000 rather than 260000 or 2.6e5."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}")


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _sample(n: int, size: int, random_state: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size=size, replace=False))


def _label_of(names: Mapping[int, str] | None, s: int) -> str:
    if not names or s not in names:
        return str(s)
    return safe_label(f"{s}: {_short(names[s])}", f"segment {s}")


#: ``auto`` draws samples up to this size with t-SNE: UMAP's first call compiles numba code for
#: about 25 s on two cores whatever the size, while t-SNE needs about 1 s for 200 points and 5 s
#: for 1,000.
TSNE_MAX_POINTS = 1000

MAP_METHODS = ("auto", "umap", "tsne", "pca")


def map_2d(
    X: np.ndarray,
    labels: np.ndarray,
    method: str = "auto",
    random_state: int = 0,
    sample_size: int = 5000,
) -> tuple[np.ndarray, np.ndarray, str]:
    """A 2-D map of (a sample of) ``X``.

    ``auto`` uses t-SNE for samples of at most :data:`TSNE_MAX_POINTS` points, UMAP for larger ones
    when umap-learn is importable, and PCA otherwise.

    Returns:
        (coordinates of shape (m, 2), the sampled row indices, the method used).
    """
    if method not in MAP_METHODS:
        raise ValueError(
            f"The map method must be one of {', '.join(repr(m) for m in MAP_METHODS)}. "
            f"Got {method!r}."
        )
    idx = _sample(X.shape[0], sample_size, random_state)
    Xs = np.asarray(X[idx], dtype=np.float64)
    used = method
    if method == "auto":
        if Xs.shape[0] <= TSNE_MAX_POINTS:
            used = "tsne"
        else:
            try:
                import_umap()
            except ImportError:
                used = "pca"
            else:
                used = "umap"
    elif method == "umap":
        try:
            import_umap()
        except ImportError:
            raise ImportError(
                "The UMAP map needs umap-learn: pip install umap-learn (a dependency of deepseg)."
            ) from None
    if used in ("umap", "tsne") and Xs.shape[0] <= 15:
        used = "pca"  # too few points for a neighbour graph
    if used == "umap":
        reducer = import_umap().UMAP(n_components=2, random_state=random_state, n_jobs=1)
        with keep_torch_threads():
            coords = reducer.fit_transform(Xs)
    elif used == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (Xs.shape[0] - 1) / 3.0)
        coords = TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=random_state
        ).fit_transform(Xs)
    else:
        from sklearn.decomposition import PCA

        n_comp = min(2, Xs.shape[1])
        coords = PCA(n_components=n_comp, random_state=random_state).fit_transform(Xs)
        if n_comp == 1:
            coords = np.hstack([coords, np.zeros_like(coords)])
    return np.asarray(coords), idx, used


@_styled
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
    fig = _figure(7.5, 5.5)
    ax = fig.add_subplot()
    for colour, s in zip(_colours(len(segments)), segments):
        mask = lab == s
        ax.scatter(coords[mask, 0], coords[mask, 1], s=4, alpha=0.6, color=colour,
                   label=_label_of(names, s))  # fmt: skip
    ax.set_title(f"Segments on a 2-D map ({used.upper()}, {len(idx)} points)")
    ax.set_xticks([])
    ax.set_yticks([])
    # outside the data: to the right of the axes, one entry per segment
    ax.legend(markerscale=3, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              frameon=False, title="segment")  # fmt: skip
    return _png(fig)


@_styled
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
        ax.text(-0.02, y + len(v) / 2, _label_of(names, s), ha="right", va="center")
        y += len(v) + 10
    mean = float(values.mean())
    ax.axvline(mean, color="k", linestyle="--", linewidth=1)
    ax.set_title(f"Silhouette by segment (mean {mean:.3f}, {len(lab)} points)")
    ax.set_xlabel("silhouette coefficient")
    ax.set_yticks([])
    return _png(fig)


@_styled
def plot_profile_heatmap(profiles: SegmentProfiles, max_columns: int = 20) -> bytes:
    """Z-scores of the segment means (rows: segments, columns: numeric features)."""
    z = profiles.zscores()
    fig = _figure(3.5 + 0.45 * min(max(len(z.columns), 1), max_columns), 2 + 0.45 * max(len(z), 1))
    ax = fig.add_subplot()
    if z.empty:
        ax.text(0.5, 0.5, "No numeric columns to profile", ha="center")
        return _png(fig)
    order = z.abs().max(axis=0).sort_values(ascending=False).index[:max_columns]
    z = z[order]
    lim = float(max(np.nanmax(np.abs(z.to_numpy())), 0.5))
    image = ax.imshow(z.to_numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    columns = [safe_label(str(c), f"column {j + 1}") for j, c in enumerate(z.columns)]
    ax.set_xticks(range(len(z.columns)), columns, rotation=60, ha="right")
    ax.set_yticks(range(len(z)), [_label_of(profiles.names, int(s)) for s in z.index])
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            value = z.iat[i, j]
            if np.isfinite(value):
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=MIN_FONT_SIZE,
                        color="white" if abs(value) > 0.6 * lim else "black")  # fmt: skip
    fig.colorbar(image, ax=ax, label="z-score of segment mean")
    ax.set_title("Profile heatmap: segment means in population standard deviations")
    return _png(fig)


@_styled
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
        ax.set_title(title, fontsize=MIN_FONT_SIZE + 1)
        ax.yaxis.set_major_formatter(_human_ticks())
        ax.set_xlabel("k")
        ax.set_xticks(list(t["k"]))
    fig.suptitle(f"Choosing k: recommended k = {result.recommended} (dashed line)")
    fig.tight_layout()
    return _png(fig)


@_styled
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


@_styled
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
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
    return _png(fig)


@_styled
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
