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

from deepseg.insight.wording import human, human_pair

if TYPE_CHECKING:
    from deepseg.insight.choose_k import ChooseKResult
    from deepseg.insight.drivers import Drivers
    from deepseg.insight.profiles import SegmentProfiles

_FONTS = (
    "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', 'Noto Sans', 'Noto Sans CJK JP', "
    "'Noto Sans CJK SC', 'Source Han Sans', 'Microsoft YaHei', 'PingFang SC', 'Hiragino Sans', "
    "'Apple SD Gothic Neo', 'Noto Sans Arabic', 'Noto Sans Devanagari', sans-serif"
)
_STYLE = """
body { font-family: FONTS; margin: 2em auto; max-width: 1180px; color: #222; line-height: 1.45;
       padding: 0 1em; }
h1 { border-bottom: 2px solid #2a6; padding-bottom: .2em; overflow-wrap: anywhere; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: 13px; max-width: 100%; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; overflow-wrap: break-word; }
td { white-space: nowrap; }
th { background: #f3f6f4; vertical-align: bottom; font-weight: 600; }
td:first-child, th:first-child { text-align: left; }
pre { background: #f7f7f7; padding: .8em; white-space: pre-wrap; font-size: 12px; }
img { max-width: 100%; height: auto; border: 1px solid #eee; margin: .5em 0; }
.plots figure { margin: 0 0 1.5em; }
figcaption { font-size: 13px; color: #555; }
.segments td:nth-child(2), .segments th:nth-child(2) { text-align: left; min-width: 14em;
                                                       white-space: normal; }
summary { cursor: pointer; color: #2a6; }
.meta { color: #666; font-size: 13px; }
.segment { border-left: 4px solid #2a6; padding-left: 1em; margin: 1em 0; }
.glance p { margin: .5em 0; max-width: 70em; }
.warning { background: #fff4e5; border-left: 4px solid #e67e22; padding: .5em 1em; margin: 1em 0; }
""".replace("FONTS", _FONTS)


def _is_share(column: str) -> bool:
    return column == "share" or column.endswith(("_share", "_fraction"))


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
        association: Cramér's V of every attribute against the segments (see
            :func:`deepseg.insight.association.attribute_association`); dominant ones are
            flagged at the top of the page.
        input_notes: sentences about the input shown near the top (missing values, columns
            kept out of the segmentation, the RFM columns).
        missing: the missing values per column (see
            :func:`deepseg.features.columns.missing_values`).
    """

    title: str
    meta: dict[str, Any] = field(default_factory=dict)
    leaderboard: pd.DataFrame | None = None
    profiles: SegmentProfiles | None = None
    drivers: Drivers | None = None
    choose_k: ChooseKResult | None = None
    images: list[tuple[str, bytes]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    association: pd.DataFrame | None = None
    input_notes: list[str] = field(default_factory=list)
    missing: pd.DataFrame | None = None


def _table(frame: pd.DataFrame, css_class: str = "") -> str:
    """An HTML table with human numbers and headers that wrap (``total spend median``)."""
    formatted = frame.copy()
    for column in formatted.columns:
        if pd.api.types.is_numeric_dtype(formatted[column]) or formatted[column].dtype == object:
            share = _is_share(str(column))
            formatted[column] = formatted[column].map(lambda v, sh=share: human(v, sh))
    formatted.columns = [str(c).replace("_", " ") for c in formatted.columns]
    table = formatted.to_html(index=False, escape=True, border=0)
    return f'<div class="{css_class}">{table}</div>' if css_class else f"<div>{table}</div>"


def _plus_minus(mean: str, sd: Any) -> str:
    """``0.485 ± 0.000``: the s.d. with as many decimals as the mean shows."""
    if not mean or sd is None or not np.isfinite(float(sd)):
        return mean
    if "." not in mean:
        return f"{mean} ± {human(sd)}"
    return f"{mean} ± {float(sd):.{len(mean.split('.')[1])}f}"


def compact_leaderboard(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as the report shows it: one cell per metric, ``mean ± s.d.`` over seeds
    (``0.434 ± 0.003``), and no dataset column when there is one dataset, so that it fits the
    page's width instead of scrolling sideways."""
    std = {c[: -len("_std")] for c in board.columns if c.endswith("_std")}
    keys = ["dataset", "method", "n_seeds"]
    out = pd.DataFrame(index=board.index)
    for column in keys:
        if column in board.columns:
            out[column] = board[column]
    if "dataset" in out.columns and out["dataset"].nunique() <= 1:
        out = out.drop(columns="dataset")
    for column in board.columns:
        if column in keys or column.endswith("_std"):
            continue
        cells = board[column].map(human)
        if column in std:
            cells = [_plus_minus(c, d) for c, d in zip(cells, board[f"{column}_std"])]
        out[column] = cells
    return out.rename(columns={"n_seeds": "seeds"})


def _img(caption: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    alt = html.escape(caption)
    return (
        f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
        f"<figcaption>{alt}</figcaption></figure>"
    )


_RFM_PHRASES = {
    ("monetary", True): "spend more",
    ("monetary", False): "spend less",
    ("frequency", True): "buy more often",
    ("frequency", False): "buy less often",
    ("recency", True): "last bought longer ago",
    ("recency", False): "bought more recently",
}


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def segment_summary(profiles: SegmentProfiles, segment: int) -> str:
    """One paragraph in plain words: who the segment's customers are, against all customers.

    Built from the descriptors that passed (see :mod:`deepseg.insight.profiles`), so it says
    nothing that the evidence does not support.
    """
    row = profiles.summary[profiles.summary["segment"] == segment].iloc[0]
    size = f"{int(row['size']):,} customers ({row['share']:.1%} of all)"
    if segment == -1:
        return f"{size} that the method left unassigned (noise)."
    roles = {column: role for role, column in profiles.rfm.items()}
    numeric: list[str] = []
    plain = profiles.names.get(segment, "")
    categories: list[str] = []
    terms: list[str] = []
    used: frozenset[str] = frozenset()  # one category sentence per theme
    for d in profiles.descriptors.get(segment, []):
        if d.kind == "numeric" and len(numeric) < 4:
            higher = d.word.startswith("high") or d.word in ("frequent", "lapsed")
            role = roles.get(d.column)
            unit = ""
            if role is not None:
                what = _RFM_PHRASES[(role, higher)]
            elif d.word.startswith(("earlier ", "later ")):  # a date column, in days since
                what, unit = f"have {d.word} dates", " days ago"
            else:
                what = f"have {'higher' if higher else 'lower'} {d.word.split(' ', 1)[-1]}"
            share = d.statistic == "non-zero share"
            mine, everyone = human_pair(d.segment_value, d.population_value, share)
            unit = "" if share else unit
            numeric.append(f"{what} ({d.statistic} {mine}{unit} against {everyone})")
        elif d.kind == "category" and len(categories) < 2 and not (d.stem & used):
            used |= d.stem
            categories.append(
                f"{d.word}: {d.segment_value:.0%} of them (against {d.population_value:.0%} of "
                "all customers)"
            )
        elif d.kind == "term" and len(terms) < 3:
            terms.append(f"'{d.category}'")
    if not (numeric or categories or terms):
        if plain.startswith("no distinct trait"):
            return (
                f"{size}. They differ from the other customers in some columns, but as a slice "
                "of one continuous group rather than a group of their own: no trait is named "
                "(the differences are in the segment details below)."
            )
        return (
            f"{size}. Nothing sets them apart from the other customers by a material margin: "
            "an average group."
        )
    sentences = [f"{size}."]
    if numeric:
        sentences.append(f"Compared with all customers they {_join(numeric)}.")
    if categories:
        text = "; ".join(categories)
        sentences.append(f"{text[0].upper()}{text[1:]}.")
    if terms:
        sentences.append(f"Their texts often mention {_join(terms)}.")
    return " ".join(sentences)


def _glance(profiles: SegmentProfiles) -> str:
    parts = ['<div class="glance">']
    for s, name in profiles.names.items():
        parts.append(
            f"<p><b>Segment {s}: {html.escape(name)}.</b> "
            f"{html.escape(segment_summary(profiles, s))}</p>"
        )
    parts.append("</div>")
    return "\n".join(parts)


def _warnings(association: pd.DataFrame | None) -> str:
    """A warning box for every attribute that almost determines the segments ('' if none)."""
    if association is None or association.empty or not association["dominant"].any():
        return ""
    items = [
        f"<li><b>{html.escape(str(r.column))}</b> almost determines the segments (Cramér's V "
        f"{r.cramers_v:.2f}): the segments mostly restate it. Drop it from the features or "
        f"lower its weight (<code>features.{r.kind}.weight</code>), then segment again.</li>"
        for r in association[association["dominant"]].itertuples()
    ]
    return (
        '<div class="warning"><b>One attribute runs the show</b><ul>'
        + "".join(items)
        + "</ul></div>"
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
        num = num.reindex(num["effect"].abs().sort_values(ascending=False).index).head(5)
        deviations = ", ".join(
            "{}: median {} (all customers {}; d {:+.2f})".format(
                html.escape(str(r.column)), *human_pair(r.median, r.population_median), r.effect
            )
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
            + (f"<p>Largest numeric differences: {deviations}</p>" if deviations else "")
            + (f"<p>Over-represented categories: {categories}</p>" if categories else "")
            + (f"<p>Distinctive terms (class-based TF-IDF): {term_text}</p>" if term_text else "")
            + "</div>"
        )
    return "\n".join(parts)


def _segment_columns(profiles: SegmentProfiles, max_numeric: int = 5) -> list[str]:
    """segment, name, size, share, the RFM score, and the medians of the numeric columns that
    differ most between segments."""
    p = profiles
    columns = ["segment", "name", "size", "share"]
    columns += [c for c in ("RFM_score",) if c in p.summary]
    if not p.numeric.empty:
        spread = p.numeric.groupby("column")["effect"].apply(lambda e: e.abs().max())
        top = spread.sort_values(ascending=False).index[:max_numeric]
        columns += [f"{c}_median" for c in top if f"{c}_median" in p.summary]
    return columns


def input_notes(profiles: SegmentProfiles | None, pipeline: Any = None) -> list[str]:
    """What the page should say about its input: the columns kept out of the segmentation
    (``features.profile_only``) and the columns behind the RFM scores."""
    notes = []
    for column, reason in (getattr(pipeline, "profile_only_", None) or {}).items():
        notes.append(
            f"'{column}' describes the segments but was kept out of the segmentation: {reason}"
        )
    if profiles is not None and profiles.rfm:
        used = ", ".join(f"{role} = '{column}'" for role, column in profiles.rfm.items())
        notes.append(
            f"RFM scores (quintiles 1-5) and the RFM words come from the columns {used}; set "
            "report.rfm to choose others."
        )
    return notes


def report_title(dataset_name: str, source: str | None, method: str) -> str:
    """The page title names the input: the dataset's own name, or the file a generic loader
    read ("Segment report: mall.csv / kmeans", not "table / kmeans").

    >>> report_title("table", "/data/mall.csv", "kmeans")
    'Segment report: mall.csv / kmeans'
    >>> report_title("telco_churn", "/data/telco.csv", "dec")
    'Segment report: telco_churn / dec'
    """
    name = dataset_name
    if source and dataset_name in ("table", "text_corpus", "transactions"):
        name = ", ".join(part.strip().rstrip("/").rsplit("/", 1)[-1] for part in source.split(","))
    return f"Segment report: {name} / {method}"


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
    if content.profiles is not None:
        out += ["<h2>The segments at a glance</h2>", _glance(content.profiles)]
    out.append(_warnings(content.association))
    if content.input_notes or (content.missing is not None and not content.missing.empty):
        out.append("<h2>About the input</h2><ul>")
        out += [f"<li>{html.escape(n)}</li>" for n in content.input_notes]
        out.append("</ul>")
        if content.missing is not None and not content.missing.empty:
            out.append(_table(content.missing))
    if content.leaderboard is not None:
        out += ["<h2>Leaderboard</h2>", _table(compact_leaderboard(content.leaderboard))]
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
        out += [_img(caption, png) for caption, png in content.images]
        out.append("</div>")
    if content.profiles is not None:
        p = content.profiles
        out += [
            "<h2>Segments</h2>",
            _table(p.summary[_segment_columns(p)], css_class="segments"),
            '<p class="meta">Every statistic and the evidence behind each name: profiles.csv</p>',
            _segment_details(p),
        ]
    if content.association is not None and not content.association.empty:
        out += [
            "<details><summary>How strongly each attribute goes with the segments "
            "(Cramér's V)</summary>",
            _table(content.association),
            "</details>",
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
