"""Column specs: which column of a raw table plays which part, column checks, and reading a
column for what it is (codes, dates, constants, identifiers)."""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


@dataclass
class ColumnRoles:
    """Which column of a table plays which part.

    Attributes:
        id: name of the customer/row id column, or None (row numbers are used).
        label: name of the ground-truth label column, or None.
        numeric: numeric feature columns.
        categorical: categorical feature columns.
        text: free-text columns.
    """

    id: str | None = None
    label: str | None = None
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def feature_columns(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.text]

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "label": self.label,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "text": list(self.text),
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> ColumnRoles:
        return cls(
            id=d.get("id"),  # type: ignore[arg-type]
            label=d.get("label"),  # type: ignore[arg-type]
            numeric=list(d.get("numeric") or []),  # type: ignore[call-overload]
            categorical=list(d.get("categorical") or []),  # type: ignore[call-overload]
            text=list(d.get("text") or []),  # type: ignore[call-overload]
        )


def closest_match(name: str, options: list[str]) -> str:
    """A ' Did you mean ...?' hint for a misspelt name, or '' when nothing is close."""
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    if not match:
        lowered = {o.lower(): o for o in options}
        if name.lower() in lowered:
            match = [lowered[name.lower()]]
    return f" Did you mean '{match[0]}'?" if match else ""


def require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    """Raise a ValueError naming every column of ``columns`` missing from ``frame``."""
    available = [str(c) for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if not missing:
        return
    hints = "".join(closest_match(c, available) for c in missing[:3])
    raise ValueError(
        f"{what}: column(s) {missing} not found.{hints} Available columns: {available[:30]}"
        + (" ..." if len(available) > 30 else "")
    )


#: An integer column with at most this many distinct values is read as a code (categorical),
#: unless its name says it counts something.
MAX_CODE_LEVELS = 10
#: Names of integer columns that count or measure, and stay numeric however few their values.
QUANTITY_NAME = re.compile(
    r"count|num|^n_|_n$|qty|quantity|visit|order|purchase|frequen|recen|monetary|spend|amount|"
    r"total|price|cost|charge|income|revenue|sales|tenure|days|weeks|months|years|age|size|"
    r"sessions|score|rating|minutes|hours|kid|teen|child|member|items|units|clicks",
    re.IGNORECASE,
)
#: Names of identifier columns.
ID_NAME = re.compile(r"(^|_|\b)(id|key|uuid|code|number|no)$|id$|^id", re.IGNORECASE)
#: A column whose most frequent value (missing counted as a value) covers this share of the
#: rows is near-constant and dropped.
NEAR_CONSTANT = 0.99
#: Why an integer column with few values is read as categorical (``infer_roles``).
CODES = f"codes, integers with <= {MAX_CODE_LEVELS} values"
#: Share of the non-blank values of a text column that must parse as dates for a date column.
DATE_SHARE = 0.95


def numeric_share(series: pd.Series) -> float:
    """Share of the non-blank values of a text column that parse as numbers."""
    text = _non_blank(series)
    if text.empty:
        return 0.0
    return float(pd.to_numeric(text, errors="coerce").notna().mean())


#: Date formats tried in order; the first that reads (nearly) every value of a column wins, so
#: that 04-09-2012 is read the same way in every row of a column.
DATE_FORMATS = (
    "ISO8601",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
    "%d-%m-%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
)


def _non_blank(series: pd.Series) -> pd.Series:
    text = series.dropna().astype(str).str.strip()
    return text[text != ""]


def date_format(series: pd.Series) -> str | None:
    """The format of a date column: "datetime" for a datetime dtype, else the first of
    ``DATE_FORMATS`` that parses at least ``DATE_SHARE`` of its non-blank values; None when the
    column is not dates (numbers, or text that is not dates)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return None
    text = _non_blank(series)
    if text.empty or not text.str.contains(r"\d").all():
        return None
    sample = text.sample(500, random_state=0) if len(text) > 500 else text
    if numeric_share(sample) > 0.5:
        return None
    for fmt in DATE_FORMATS:
        parsed = pd.to_datetime(sample, errors="coerce", format=fmt)
        if float(parsed.notna().mean()) >= DATE_SHARE:
            return fmt
    return None


def parse_dates(series: pd.Series, fmt: str) -> pd.Series:
    """``series`` as naive datetimes in format ``fmt`` (see :func:`date_format`); NaT where a
    value is blank or not a date."""
    if fmt == "datetime" or pd.api.types.is_datetime64_any_dtype(series):
        out = pd.to_datetime(series, errors="coerce")
    else:
        text = series.astype("string").str.strip()
        out = pd.to_datetime(text, errors="coerce", format=fmt)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert(None)
    return out


def days_since(series: pd.Series, reference: pd.Timestamp, fmt: str) -> np.ndarray:
    """Days from each date of ``series`` to ``reference`` (positive for earlier dates), float,
    NaN where the value is missing or not a date."""
    delta = pd.Timestamp(reference) - parse_dates(series, fmt)
    return (delta.dt.total_seconds() / 86400.0).to_numpy(dtype=np.float64, na_value=np.nan)


def numeric_values(series: pd.Series, reference: pd.Timestamp | str | None = None) -> pd.Series:
    """A numeric or date column as floats: numbers as they are (text that is not a number is
    NaN), dates as days since ``reference`` (default: the latest date in the column)."""
    fmt = date_format(series)
    if fmt is not None:
        ref = parse_dates(series, fmt).max() if reference is None else pd.Timestamp(reference)
        return pd.Series(days_since(series, ref, fmt), index=series.index)
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(np.float64)
    return pd.to_numeric(series, errors="coerce").astype(np.float64)


def _integer_valued(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return False
    values = series.dropna().to_numpy(dtype=np.float64)
    return len(values) > 0 and bool(np.all(np.isfinite(values) & (values == np.round(values))))


#: ``one_scale``: the columns share one scale when the median column (the lower median) spans
#: at least this share of the whole matrix's range
SHARED_SPAN = 0.5


def one_scale(values: np.ndarray, dates: bool = False) -> tuple[bool, float]:
    """Whether numeric columns share one scale, and the lower median of their spans.

    A column's span is its range (max - min) over the whole matrix's. Pixels, the bands of a
    satellite image, counts of one unit, coordinates and embedding axes have most columns
    spanning most of the common range (the median column at least :data:`SHARED_SPAN`), where
    a customer table's income, age and visit counts span a sliver of the widest column's
    range. Fewer than two columns, a constant matrix or any date column: not shared.
    """
    if values.ndim != 2 or values.shape[1] < 2 or dates:
        return False, 0.0
    finite = np.where(np.isfinite(values), values, np.nan)  # missing values do not count
    if np.isnan(finite).all(axis=0).any():
        return False, 0.0
    low, high = np.nanmin(finite, axis=0), np.nanmax(finite, axis=0)
    whole = float(high.max() - low.min())
    if not whole > 0:
        return False, 0.0
    spans = np.sort((high - low) / whole)
    median = float(spans[(len(spans) - 1) // 2])  # the lower median: 2 columns need both
    return median >= SHARED_SPAN, median


#: ``scale="auto"`` scales columns of one scale as a whole when their standard deviations
#: (90th over 10th percentile, constant columns aside) differ at least this much: below it,
#: per-column standardisation rescales no column much (chosen on the development suite, see
#: docs/benchmarks.md)
SPREAD_RATIO = 3.0


def spread_ratio(values: np.ndarray) -> float:
    """How much the columns' spreads differ: the 90th over the 10th percentile of the standard
    deviations of the columns that vary (1.0 with fewer than two such columns)."""
    sd = np.nanstd(np.where(np.isfinite(values), values, np.nan), axis=0)
    sd = sd[sd > 0]
    if len(sd) < 2:
        return 1.0
    return float(np.percentile(sd, 90) / np.percentile(sd, 10))


def scaled_as_whole(values: np.ndarray, dates: bool = False) -> tuple[bool, float, float]:
    """The rule of ``features.numeric.scale=auto``: whether numeric columns are scaled as a
    whole (they share one scale, :func:`one_scale`, and their spreads differ at least
    :data:`SPREAD_RATIO`-fold, :func:`spread_ratio`), the median column's span and the ratio.
    The role inference asks the same of a matrix before it keeps border pixels numeric."""
    shared, span = one_scale(values, dates=dates)
    ratio = spread_ratio(values)
    return shared and ratio >= SPREAD_RATIO, span, ratio


def infer_roles(
    frame: pd.DataFrame,
    given: ColumnRoles,
    exclude: Sequence[str] = (),
    text_min_words: float = 4.0,
) -> tuple[ColumnRoles, list[str]]:
    """Fill in the roles that were not given, reading each column for what it is.

    Rules, in order, for every column not given a role (nor excluded):

    * empty, constant and near-constant columns (one value, missing counted as a value, in at
      least ``NEAR_CONSTANT`` of the rows) are dropped;
    * date and datetime columns (datetime dtype, or text that parses as dates) are numeric:
      the feature pipeline turns them into days since a reference date
      (``features.numeric.reference_date``; default the latest date in the training data);
    * id-like columns are never features: integers unique per row whose name looks like an id
      or whose values are nearly consecutive, and text unique (> 90%) per row;
    * integers with at most ``MAX_CODE_LEVELS`` distinct values whose name does not say they
      count or measure something (``QUANTITY_NAME``) are codes: categorical, unless they are
      numbered columns of a matrix of one scale, such as an image's border pixels
      (:func:`_codes_of_one_scale`). Boolean columns are categorical too. Override by
      declaring the column in ``numeric`` or ``categorical``;
    * other numeric dtypes, and text whose non-blank values all parse as numbers, are numeric;
    * text averaging ``text_min_words`` words or more is text; other text is categorical.

    An id column is inferred from a name ending in "id" with unique values. Every decision is
    logged, so a user can copy the roles into the config and adjust.

    Args:
        frame: the table.
        given: roles from the config; lists that are empty are inferred.
        exclude: columns never used as features.
        text_min_words: average word count from which a string column is text.

    Returns:
        The completed roles, and the columns that were ignored.
    """
    roles = ColumnRoles(
        id=given.id,
        label=given.label,
        numeric=list(given.numeric),
        categorical=list(given.categorical),
        text=list(given.text),
    )
    taken = {roles.id, roles.label, *roles.feature_columns(), *exclude}
    if roles.id is None:
        for col in frame.columns:
            if (
                col not in taken
                and re.search(r"id$", str(col), flags=re.IGNORECASE)
                and frame[col].notna().all()
                and frame[col].is_unique
            ):
                roles.id = str(col)
                taken.add(col)
                break
    infer = {
        "numeric": not given.numeric,
        "categorical": not given.categorical,
        "text": not given.text,
    }
    ignored: list[str] = []
    reasons: dict[str, list[str]] = {}
    n = len(frame)
    for col in frame.columns:
        if col in taken:
            continue
        role, why = _role_of(frame[col], str(col), n, text_min_words)
        if why:
            reasons.setdefault(why, []).append(str(col))
        if role is None:
            ignored.append(str(col))
        elif infer[role]:
            getattr(roles, role).append(str(col))
    codes = reasons.get(CODES, [])
    if infer["categorical"] and infer["numeric"] and codes:
        matrix = _codes_of_one_scale(frame, roles.numeric, codes)
        if matrix:
            roles.categorical = [c for c in roles.categorical if c not in matrix]
            kept = {*roles.numeric, *matrix}  # in the table's order: a border pixel stays put
            roles.numeric = [str(c) for c in frame.columns if c in kept]
            reasons[CODES] = [c for c in codes if c not in matrix]
            if not reasons[CODES]:
                del reasons[CODES]
            reasons[
                "integers with few values inside the one scale the numeric columns share "
                "(numeric, as the rest of the matrix: pixels or bands, not codes)"
            ] = matrix
    for why, columns in reasons.items():
        logger.info("Columns read as %s: %s", why, columns)
    logger.info(
        "Column roles (inferred where not given): id=%s label=%s numeric=%s categorical=%s "
        "text=%s ignored=%s",
        roles.id,
        roles.label,
        roles.numeric,
        roles.categorical,
        roles.text,
        ignored,
    )
    return roles, ignored


def _stem(name: object) -> str:
    """A column name without its trailing number: ``px12`` -> ``px``, ``12`` -> ``""``."""
    return re.sub(r"\d+$", "", str(name))


def _codes_of_one_scale(frame: pd.DataFrame, numeric: list[str], codes: list[str]) -> list[str]:
    """The integer code columns that are part of a matrix of one scale, such as an image's
    border pixels, which hold few values. The matrix: numbered columns of one name (``px0`` ..
    ``px63``, or plain numbers), at least two numeric ones and more than the codes. A code
    column of that name whose values lie inside the numeric columns' range is one more column
    of it, when the numeric block would scale the matrix with those codes in it as a whole
    (:func:`scaled_as_whole`). A customer table's codes (``region``, ``channel``) never
    match: their names are not the matrix's."""
    plain = [c for c in numeric if pd.api.types.is_numeric_dtype(frame[c])]
    if len(plain) < 2 or len(plain) <= len(codes) or len(plain) < len(numeric):
        return []
    if len({_stem(c) for c in plain}) != 1:
        return []
    stem = _stem(plain[0])
    matching = [
        c for c in codes if _stem(c) == stem and pd.api.types.is_numeric_dtype(frame[c])
    ]  # fmt: skip
    if not matching:
        return []
    values = frame[plain].to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    if not finite.size:
        return []
    inside = [c for c in matching if frame[c].dropna().between(finite.min(), finite.max()).all()]
    # the matrix the numeric block would see with these columns in it
    if not inside or not scaled_as_whole(frame[[*plain, *inside]].to_numpy(np.float64))[0]:
        return []
    return inside


def _role_of(s: pd.Series, name: str, n: int, text_min_words: float) -> tuple[str | None, str]:
    """(role or None for ignored, the reason worth logging or '')."""
    counts = s.value_counts(dropna=False)
    if s.notna().sum() == 0:
        return None, "empty (dropped)"
    if len(counts) == 1:
        return None, "constant (dropped)"
    if n >= 20 and counts.iloc[0] >= NEAR_CONSTANT * n:
        return None, f"near-constant, one value in >= {NEAR_CONSTANT:.0%} of rows (dropped)"
    if pd.api.types.is_bool_dtype(s):
        return "categorical", ""
    if date_format(s) is not None:
        return "numeric", "dates (numeric: days since the reference date)"
    if pd.api.types.is_numeric_dtype(s):
        if _integer_valued(s):
            values = s.dropna()
            if n >= 20 and values.is_unique and len(values) == n:
                span = float(values.max() - values.min()) + 1
                if ID_NAME.search(name) or span <= 2 * n:
                    return None, "identifiers, unique per row (dropped)"
            if values.nunique() <= MAX_CODE_LEVELS and not QUANTITY_NAME.search(name):
                return "categorical", CODES
        return "numeric", ""
    if numeric_share(s) >= 0.99:
        return "numeric", ""
    text = s.dropna().astype(str)
    words = text.str.split().str.len().mean() if len(text) else 0.0
    if words >= text_min_words:
        return "text", ""
    if n >= 50 and s.nunique(dropna=True) > 0.9 * n:
        return None, "identifiers or names, nearly unique per row (dropped)"
    return "categorical", ""


#: How the feature pipeline fills a missing value, by role.
IMPUTED_AS = {
    "numeric": "the column's median",
    "categorical": "a category of its own",
    "text": "an empty text",
}


def missing_values(
    frame: pd.DataFrame,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    text: Sequence[str] = (),
) -> pd.DataFrame:
    """The missing values of every feature column that has some, and how they are imputed.

    Blank text counts as missing. Returns a table with ``column``, ``role``, ``missing`` (rows),
    ``missing_share`` and ``imputed_as``, most missing first (empty when nothing is missing).

    >>> frame = pd.DataFrame({"a": [1.0, None, 3.0], "b": ["x", "", "y"], "c": [1, 2, 3]})
    >>> missing_values(frame, ["a", "c"], ["b"])[["column", "missing"]].to_dict("list")
    {'column': ['a', 'b'], 'missing': [1, 1]}
    """
    rows = []
    for role, columns in (("numeric", numeric), ("categorical", categorical), ("text", text)):
        for column in columns:
            if column not in frame.columns:
                continue
            values = frame[column]
            missing = values.isna()
            if values.dtype == object or pd.api.types.is_string_dtype(values):
                missing |= values.astype(str).str.strip().eq("")
            count = int(missing.sum())
            if count:
                rows.append(
                    {
                        "column": column,
                        "role": role,
                        "missing": count,
                        "missing_share": count / max(len(frame), 1),
                        "imputed_as": IMPUTED_AS[role],
                    }
                )
    table = pd.DataFrame(
        rows, columns=["column", "role", "missing", "missing_share", "imputed_as"]
    )
    return table.sort_values("missing", ascending=False, kind="stable").reset_index(drop=True)


def log_missing_values(table: pd.DataFrame, source: str, n_rows: int) -> None:
    """One log line naming every column with missing values and how they are imputed."""
    if table.empty:
        logger.info("%s: no missing values in the feature columns.", source)
        return
    cells = int(table["missing"].sum())
    parts = "; ".join(
        f"{r.column} {r.missing:,} of {n_rows:,} ({r.missing_share:.1%}, imputed as "
        f"{r.imputed_as})"
        for r in table.itertuples()
    )
    logger.warning(
        "%s: %s missing values in %d column(s): %s", source, f"{cells:,}", len(table), parts
    )


def unrelated_categoricals(
    frame: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    alpha: float = 1e-3,
    min_v: float = 0.1,
    max_rows: int = 20000,
    random_state: int = 0,
) -> dict[str, str]:
    """Categorical columns unrelated to every other feature column, with the reason.

    A column that goes with no other column can only add a segmentation of its own: in a
    balanced feature matrix its indicators weigh as much as a numeric column, and K-Means
    splits on them (on a mall table with Gender beside income, spending and age, 6 of 7
    segments were 100% one gender). Such a column is better used to describe the segments
    (``features.profile_only: auto``). A column is related to another when the chi-square test
    of their crosstab (numeric columns cut into quintiles) has p below ``alpha`` divided by the
    number of tests and a Cramér's V of at least ``min_v``.

    Args:
        frame: the table.
        numeric: numeric feature columns (dates as days since).
        categorical: categorical feature columns to test.
        alpha: family-wise significance level.
        min_v: smallest Cramér's V that counts as related.
        max_rows: rows tested (a seeded sample of larger tables).
        random_state: seed of that sample.

    Returns:
        {column: reason} of the unrelated columns; a column is never listed when it is the only
        feature column.
    """
    from scipy.stats import chi2_contingency

    others = [*numeric, *categorical]
    if len(others) < 2 or not categorical:
        return {}
    if len(frame) > max_rows:
        frame = frame.sample(max_rows, random_state=random_state)
    coded: dict[str, pd.Series] = {}
    for column in numeric:
        values = numeric_values(frame[column])
        ranks = values.rank(method="first")
        coded[column] = pd.qcut(ranks, 5, labels=False, duplicates="drop").astype("Int64")
    for column in categorical:
        coded[column] = frame[column].astype(object).where(frame[column].notna(), "(missing)")
    n_tests = max(len(categorical) * (len(others) - 1), 1)
    out: dict[str, str] = {}
    for column in categorical:
        strongest = 0.0
        related = False
        for other in others:
            if other == column:
                continue
            table = pd.crosstab(coded[column], coded[other])
            if table.shape[0] < 2 or table.shape[1] < 2:
                continue
            chi2, p, _, _ = chi2_contingency(table.to_numpy(), correction=False)
            v = float(np.sqrt(chi2 / (table.to_numpy().sum() * (min(table.shape) - 1))))
            strongest = max(strongest, v)
            if p < alpha / n_tests and v >= min_v:
                related = True
                break
        if not related:
            out[column] = (
                f"it goes with no other column (largest Cramér's V {strongest:.2f}), so in the "
                "features it would only add a segmentation of its own"
            )
    return out
