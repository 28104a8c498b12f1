"""The self-contained HTML report and the CRM export (``segments.csv``).

The report has no external requests: styles are inline in the page and every image is a base64
``data:`` URI.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from deepseg.insight.choose_k import ChooseKResult
    from deepseg.insight.drivers import Drivers
    from deepseg.insight.profiles import SegmentProfiles

_STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; color: #222; line-height: 1.4; padding: 0 1em; }
h1 { border-bottom: 2px solid #2a6; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f3f6f4; }
td:first-child, th:first-child { text-align: left; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: 12px; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
.plots { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; align-items: start; }
.plots figure { margin: 0; }
.plots figure.wide { grid-column: 1 / span 2; }
figcaption { font-size: 13px; color: #555; }
.scroll { overflow-x: auto; }
.segments td:nth-child(2) { text-align: left; }
summary { cursor: pointer; color: #2a6; }
.meta { color: #666; font-size: 13px; }
.segment { border-left: 4px solid #2a6; padding-left: 1em; margin: 1em 0; }
"""


@dataclass
class ReportContent:
    """Everything a report can hold; absent parts are left out.

    Attributes:
        title: the page title.
        meta: {label: value} shown under the title (dataset, method, seed, ...).
        leaderboard: the benchmark leaderboard.
        profiles: segment profiles and names.
        drivers: the surrogate tree and permutation importance.
        choose_k: the choose-k result, when k was chosen automatically.
        images: [(caption, PNG bytes)].
        notes: sentences shown at the end (e.g. how confidence is defined).
    """

    title: str
    meta: dict[str, Any] = field(default_factory=dict)
    leaderboard: pd.DataFrame | None = None
    profiles: SegmentProfiles | None = None
    drivers: Drivers | None = None
    choose_k: ChooseKResult | None = None
    images: list[tuple[str, bytes]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _table(frame: pd.DataFrame, digits: int = 3, css_class: str = "") -> str:
    formatted = frame.copy()
    for column in formatted.columns:
        if pd.api.types.is_float_dtype(formatted[column]):
            formatted[column] = formatted[column].map(
                lambda v: "" if pd.isna(v) else f"{v:,.{digits}f}"
            )
    table = formatted.to_html(index=False, escape=True, border=0)
    return f'<div class="scroll {css_class}">{table}</div>'


def _img(caption: str, png: bytes, wide: bool = False) -> str:
    data = base64.b64encode(png).decode("ascii")
    alt = html.escape(caption)
    return (
        f'<figure class="{"wide" if wide else ""}"><img alt="{alt}" '
        f'src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'
    )


def _segment_details(profiles: SegmentProfiles) -> str:
    parts = []
    for s, name in profiles.names.items():
        row = profiles.summary[profiles.summary["segment"] == s].iloc[0]
        items = [f"<b>{int(row['size']):,}</b> customers ({row['share']:.1%})"]
        for score in ("R_score", "F_score", "M_score"):
            if score in row:
                items.append(f"{score[0]} score {row[score]:.1f}")
        num = profiles.numeric[profiles.numeric["segment"] == s]
        num = num.reindex(num["rank_deviation"].abs().sort_values(ascending=False).index).head(5)
        deviations = ", ".join(
            f"{html.escape(str(r.column))}: median {r.median:,.3g} (population "
            f"{r.population_median:,.3g}, lift {r.lift:.2f})"
            for r in num.itertuples()
        )
        cats = profiles.categories[profiles.categories["segment"] == s]
        cats = cats[cats["lift"] > 1].sort_values("lift", ascending=False).head(4)
        categories = ", ".join(
            f"{html.escape(str(r.column))}={html.escape(str(r.category))} "
            f"({r.share:.0%}, lift {r.lift:.1f})"
            for r in cats.itertuples()
        )
        terms = profiles.terms[profiles.terms["segment"] == s].head(8)
        term_text = ", ".join(html.escape(str(t)) for t in terms["term"])
        parts.append(
            f'<div class="segment"><h3>Segment {s}: {html.escape(name)}</h3>'
            f"<p>{'; '.join(items)}</p>"
            + (f"<p>Strongest numeric deviations: {deviations}</p>" if deviations else "")
            + (f"<p>Over-represented categories: {categories}</p>" if categories else "")
            + (f"<p>Distinctive terms (class-based TF-IDF): {term_text}</p>" if term_text else "")
            + "</div>"
        )
    return "\n".join(parts)


def render_report(content: ReportContent) -> str:
    """The report as one HTML page, with no external references."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(content.title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(content.title)}</h1>",
    ]
    if content.meta:
        meta = " · ".join(
            f"{html.escape(str(k))}: <b>{html.escape(str(v))}</b>" for k, v in content.meta.items()
        )
        out.append(f'<p class="meta">{meta}</p>')
    if content.leaderboard is not None:
        out += ["<h2>Leaderboard</h2>", _table(content.leaderboard)]
    if content.choose_k is not None:
        out += [
            "<h2>Choosing k</h2>",
            f"<p>{html.escape(content.choose_k.summary())}</p>",
            "<details><summary>Every criterion for every k</summary>",
            _table(content.choose_k.table),
            "</details>",
        ]
    if content.images:
        out.append('<h2>Plots</h2><div class="plots">')
        wide = ("heatmap", "k-selection", "dendrogram", "training")
        out += [
            _img(caption, png, wide=any(w in caption.lower() for w in wide))
            for caption, png in content.images
        ]
        out.append("</div>")
    if content.profiles is not None:
        p = content.profiles
        columns = ["segment", "name", "size", "share"]
        columns += [c for c in ("R_score", "F_score", "M_score", "RFM_score") if c in p.summary]
        columns += [c for c in p.summary.columns if c.endswith("_median")][:8]
        out += [
            "<h2>Segments</h2>",
            _table(p.summary[columns], digits=2, css_class="segments"),
            _segment_details(p),
        ]
    if content.drivers is not None:
        d = content.drivers
        out += [
            "<h2>Drivers</h2>",
            f"<p>A decision tree of depth at most {d.max_depth} reproduces the segmentation with "
            f"a fidelity of <b>{d.fidelity:.3f}</b> on held-out customers "
            f"({d.train_fidelity:.3f} on the customers it was fitted on).</p>",
            "<h3>Permutation importance (held-out customers)</h3>",
            _table(d.importance.head(15)),
            "<details><summary>Rules of the surrogate tree</summary>",
            f"<pre>{html.escape(d.rules)}</pre></details>",
        ]
    if content.notes:
        out.append("<h2>Notes</h2><ul>")
        out += [f"<li>{html.escape(n)}</li>" for n in content.notes]
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out)


def segments_table(
    ids: Sequence[Any] | np.ndarray,
    labels: np.ndarray,
    names: Mapping[int, str],
    confidence: np.ndarray | None = None,
    id_column: str = "customer_id",
) -> pd.DataFrame:
    """The CRM export: one row per customer with its segment, segment name and confidence.

    Args:
        ids: customer ids of shape (n_samples,).
        labels: segment of each customer, shape (n_samples,).
        names: {segment: name}.
        confidence: per-customer confidence in [0, 1] (e.g. the largest soft assignment), or
            None for 1.0 everywhere (hard assignments).
        id_column: name of the id column.
    """
    labels = np.asarray(labels)
    if len(ids) != len(labels):
        raise ValueError(f"{len(ids)} ids for {len(labels)} segment labels.")
    if confidence is None:
        confidence = np.ones(len(labels))
    confidence = np.asarray(confidence, dtype=np.float64)
    if confidence.shape != labels.shape:
        raise ValueError(f"confidence has shape {confidence.shape}; expected {labels.shape}.")
    return pd.DataFrame(
        {
            id_column: np.asarray(ids),
            "segment": labels.astype(np.int64),
            "segment_name": [names.get(int(s), str(s)) for s in labels],
            "confidence": confidence.round(6),
        }
    )
