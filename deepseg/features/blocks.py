"""Numeric, categorical and matrix blocks of the feature pipeline.

Each block is fitted on training data, transforms new data, and describes its fitted state
as a JSON-serialisable dict plus named numpy arrays (``get_state`` / ``from_state``); nothing is
pickled.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from deepseg.features.columns import date_format, days_since, parse_dates, scaled_as_whole

logger = logging.getLogger(__name__)

RARE = "__rare__"
MISSING = "__missing__"


def coerce_numeric(
    frame: pd.DataFrame,
    columns: Sequence[str],
    dates: Mapping[str, str] | None = None,
    reference: str | None = None,
) -> np.ndarray:
    """Columns of ``frame`` as a float64 matrix, refusing text in numeric columns.

    Args:
        frame: table holding ``columns``.
        columns: names of the numeric columns.
        dates: {column: date format} of the date columns (see
            :func:`deepseg.features.columns.date_format`); they become days since ``reference``.
        reference: the reference date (ISO) of the date columns.

    Returns:
        Array of shape (n_samples, len(columns)), NaN where values are missing.

    Raises:
        ValueError: when a column holds values that are not numbers, or infinite values
            (which would otherwise pass as missing); the message names the column and the first
            row (the frame's integer index label, else the position, from 0).
    """
    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    dates = dict(dates or {})
    for j, col in enumerate(columns):
        series = frame[col]
        if col in dates:
            out[:, j] = days_since(series, pd.Timestamp(reference), dates[col])
            continue
        if pd.api.types.is_bool_dtype(series):
            series = series.astype(np.float64)
        if pd.api.types.is_numeric_dtype(series):
            out[:, j] = series.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            converted = pd.to_numeric(series, errors="coerce")
            bad = converted.isna() & series.notna() & (series.astype(str).str.strip() != "")
            if bad.any():
                examples = series[bad].astype(str).unique()[:3].tolist()
                raise ValueError(
                    f"Column '{col}' is used as numeric but holds text: {int(bad.sum())} "
                    f"value(s) such as {examples} (first at row {_row(frame, bad.to_numpy())}). "
                    "Clean the column, or declare it categorical or text."
                )
            out[:, j] = converted.to_numpy(dtype=np.float64, na_value=np.nan)
        infinite = np.isinf(out[:, j])
        if infinite.any():
            raise ValueError(
                f"Column '{col}' holds {int(infinite.sum())} infinite value(s) (first at row "
                f"{_row(frame, infinite)}). Replace them with numbers, or leave the cells blank "
                "(missing)."
            )
    return out


def _row(frame: pd.DataFrame, mask: np.ndarray) -> int:
    """The row of the first True in ``mask``: its integer index label, else its position."""
    first = int(np.flatnonzero(mask)[0])
    label = frame.index[first]
    return int(label) if isinstance(label, int | np.integer) else first


def check_finite_matrix(X: np.ndarray) -> None:
    """Refuse NaN and infinite values in a numeric matrix, naming the column and first row."""
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        kind = "infinite" if np.isinf(X[row, col]) else "NaN"
        raise ValueError(
            f"The input matrix holds {int(bad.sum())} NaN or infinite value(s): the first, "
            f"{kind}, in column {col} at row {row}. Impute them first."
        )


NUMERIC_SCALES = ("auto", "standard", "common", "none")


def _names(columns: Sequence[str], shown: int = 6) -> str:
    """A column list short enough for a log line."""
    head = ", ".join(map(str, columns[:shown]))
    return f"[{head}, ... {len(columns)} in all]" if len(columns) > shown else f"[{head}]"


class NumericBlock:
    """Median imputation, optional log1p of skewed columns, quantile clipping, standardisation.

    Args:
        columns: numeric column names.
        log1p: "auto" (columns that are non-negative with skewness above ``skew_threshold``),
            True (every non-negative column), False, or a list of column names.
        skew_threshold: skewness above which "auto" applies log1p.
        clip_quantiles: (low, high) quantiles to clip at after the log, or None.
        scale: "standard" (each column: zero mean, unit variance), "common" (the columns share
            one unit, such as pixels, band intensities or coordinates: each column centred, all
            divided by one pooled standard deviation, clipped at the wider of the whole
            matrix's quantiles and its own, and ``log1p="auto"`` logs none, so the columns'
            relative spreads survive),
            "auto" ("common" when the columns share one scale and their spreads differ at
            least 3-fold, :func:`~deepseg.features.columns.scaled_as_whole`, so that
            per-column standardisation would amplify the quiet ones, such as an image's border
            pixels; else "standard"; logged) or "none".
        reference_date: date (ISO, e.g. "2011-12-10") from which the date columns count days;
            None takes the latest date in the training data. Date columns (datetime dtype, or
            text that parses as dates) become "days since": positive for earlier dates.
    """

    def __init__(
        self,
        columns: Sequence[str],
        log1p: str | bool | Sequence[str] = "auto",
        skew_threshold: float = 1.0,
        clip_quantiles: Sequence[float] | None = (0.005, 0.995),
        scale: str = "auto",
        reference_date: str | None = None,
    ) -> None:
        if scale not in NUMERIC_SCALES:
            raise ValueError(
                f"The 'scale' of the numeric block must be one of {list(NUMERIC_SCALES)}. Got "
                f"{scale!r}."
            )
        if clip_quantiles is not None:
            lo, hi = (float(q) for q in clip_quantiles)
            if not 0.0 <= lo < hi <= 1.0:
                raise ValueError(
                    "The 'clip_quantiles' of the numeric block must be two quantiles 0 <= low < "
                    f"high <= 1. Got {list(clip_quantiles)} instead."
                )
        self.columns = list(columns)
        self.log1p = log1p if isinstance(log1p, str | bool) else list(log1p)
        self.skew_threshold = float(skew_threshold)
        self.clip_quantiles = (
            None if clip_quantiles is None else [float(q) for q in clip_quantiles]
        )
        self.scale = scale
        self.reference_date = None if reference_date is None else str(reference_date)

    def fit(self, frame: pd.DataFrame) -> NumericBlock:
        self.date_formats_: dict[str, str] = {}
        for col in self.columns:
            fmt = date_format(frame[col])
            if fmt is not None:
                self.date_formats_[col] = fmt
        self.reference_date_: str | None = None
        if self.date_formats_:
            if self.reference_date is not None:
                try:
                    reference = pd.Timestamp(self.reference_date)
                except ValueError as exc:
                    raise ValueError(
                        "The 'reference_date' of the numeric block must be a date such as "
                        f"'2011-12-10'. Got {self.reference_date!r} instead."
                    ) from exc
            else:
                reference = max(
                    parse_dates(frame[c], f).max() for c, f in self.date_formats_.items()
                )
            self.reference_date_ = pd.Timestamp(reference).isoformat()
            logger.info(
                "Date columns %s: days since %s",
                list(self.date_formats_),
                self.reference_date_,
            )
        values = self._values(frame)
        all_nan = [c for c, ok in zip(self.columns, np.isfinite(values).any(axis=0)) if not ok]
        if all_nan:
            raise ValueError(
                f"Numeric column(s) {all_nan} hold no values (all missing). Drop them or fix the "
                "input."
            )
        self.medians_ = np.nanmedian(np.where(np.isfinite(values), values, np.nan), axis=0)
        values = self._impute(values)
        self.scale_ = self.scale
        if self.scale == "auto":
            whole, spans, ratio = scaled_as_whole(values, dates=bool(self.date_formats_))
            self.scale_ = "common" if whole else "standard"
            if self.scale_ == "common":
                logger.info(
                    "Numeric columns %s share one scale (the median column spans %.0f%% of the "
                    "whole range, %.4g to %.4g) and their spreads differ %.1f-fold (standard "
                    "deviations, 90th over 10th percentile): scaled as a whole, with no log1p, "
                    "so that the quiet columns are not amplified; features.numeric.scale="
                    "standard scales each column on its own",
                    _names(self.columns), 100 * spans, values.min(), values.max(), ratio,
                )  # fmt: skip
        self.log_mask_ = (
            np.zeros(len(self.columns), dtype=bool)
            if self.scale_ == "common" and self.log1p == "auto"
            else self._choose_log(values)
        )
        if self.log_mask_.any():
            logger.info(
                "log1p applied to skewed columns: %s",
                [c for c, m in zip(self.columns, self.log_mask_) if m],
            )
        values = self._log(values)
        if self.clip_quantiles is not None and self.scale_ == "common":
            # the wider of the whole matrix's quantiles and the column's own: a rare stroke in a
            # border pixel survives, and so does a column that lives in the matrix's top tail
            low, high = np.quantile(values, self.clip_quantiles)
            own_low, own_high = np.quantile(values, self.clip_quantiles, axis=0)
            self.clip_low_ = np.minimum(own_low, low)
            self.clip_high_ = np.maximum(own_high, high)
        elif self.clip_quantiles is not None:
            self.clip_low_, self.clip_high_ = np.quantile(values, self.clip_quantiles, axis=0)
        else:
            self.clip_low_ = np.full(len(self.columns), -np.inf)
            self.clip_high_ = np.full(len(self.columns), np.inf)
        values = np.clip(values, self.clip_low_, self.clip_high_)
        if self.scale_ == "common":
            self.mean_ = values.mean(axis=0)
            pooled = float(np.sqrt(values.var(axis=0).mean()))
            self.std_ = np.full(len(self.columns), pooled if pooled > 0 else 1.0)
        elif self.scale_ == "standard":
            self.mean_ = values.mean(axis=0)
            std = values.std(axis=0)
            self.std_ = np.where(std > 0, std, 1.0)
            constant = [c for c, sd in zip(self.columns, std) if not sd > 0]
            if constant:  # all zeros after centring; column balancing gives them no budget
                logger.warning("Numeric column(s) %s are constant: they carry nothing", constant)
        else:
            self.mean_ = np.zeros(len(self.columns))
            self.std_ = np.ones(len(self.columns))
        return self

    def _impute(self, values: np.ndarray) -> np.ndarray:
        bad = ~np.isfinite(values)
        if bad.any():
            values = np.where(bad, self.medians_, values)
        return values

    def _choose_log(self, values: np.ndarray) -> np.ndarray:
        nonneg = (values >= 0).all(axis=0)
        if self.log1p is True:
            return np.asarray(nonneg)
        if self.log1p is False:
            return np.zeros(len(self.columns), dtype=bool)
        if isinstance(self.log1p, list):
            unknown = sorted(set(self.log1p) - set(self.columns))
            if unknown:
                raise ValueError(f"log1p names columns {unknown} that are not numeric columns.")
            return np.array([c in self.log1p for c in self.columns]) & nonneg
        if self.log1p != "auto":
            raise ValueError(f"'log1p' must be 'auto', true, false or a list. Got {self.log1p!r}.")
        centred = values - values.mean(axis=0)
        sd = centred.std(axis=0)
        skew = np.where(sd > 0, (centred**3).mean(axis=0) / np.where(sd > 0, sd, 1.0) ** 3, 0.0)
        return nonneg & (skew > self.skew_threshold)

    def _log(self, values: np.ndarray) -> np.ndarray:
        if self.log_mask_.any():
            values = values.copy()
            values[:, self.log_mask_] = np.log1p(np.maximum(values[:, self.log_mask_], 0.0))
        return values

    def _values(self, frame: pd.DataFrame) -> np.ndarray:
        return coerce_numeric(
            frame, self.columns, getattr(self, "date_formats_", {}), self.reference_date_
        )

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        values = self._impute(self._values(frame))
        values = np.clip(self._log(values), self.clip_low_, self.clip_high_)
        return (values - self.mean_) / self.std_

    @property
    def feature_names_out(self) -> list[str]:
        return list(self.columns)

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state = {
            "columns": self.columns,
            "log1p": self.log1p,
            "skew_threshold": self.skew_threshold,
            "clip_quantiles": self.clip_quantiles,
            "scale": self.scale,
            "reference_date": self.reference_date,
            "date_formats": self.date_formats_,
            "fitted_reference_date": self.reference_date_,
            "fitted_scale": self.scale_,
        }
        arrays = {
            "medians": self.medians_,
            "log_mask": self.log_mask_.astype(np.int8),
            "clip_low": self.clip_low_,
            "clip_high": self.clip_high_,
            "mean": self.mean_,
            "std": self.std_,
        }
        return state, arrays

    @classmethod
    def from_state(cls, state: dict, arrays: dict[str, np.ndarray]) -> NumericBlock:
        block = cls(
            state["columns"],
            log1p=state["log1p"],
            skew_threshold=state["skew_threshold"],
            clip_quantiles=state["clip_quantiles"],
            scale=state["scale"],
            reference_date=state.get("reference_date"),
        )
        block.date_formats_ = dict(state.get("date_formats") or {})
        block.reference_date_ = state.get("fitted_reference_date")
        # a state saved before scale=auto: what it asked for is what it did
        block.scale_ = state.get("fitted_scale", state["scale"])
        block.medians_ = np.asarray(arrays["medians"], dtype=np.float64)
        block.log_mask_ = np.asarray(arrays["log_mask"]).astype(bool)
        block.clip_low_ = np.asarray(arrays["clip_low"], dtype=np.float64)
        block.clip_high_ = np.asarray(arrays["clip_high"], dtype=np.float64)
        block.mean_ = np.asarray(arrays["mean"], dtype=np.float64)
        block.std_ = np.asarray(arrays["std"], dtype=np.float64)
        return block


class CategoricalBlock:
    """One-hot encoding; rare categories pooled, unseen ones mapped to the rare bucket.

    Missing values are a category of their own (``__missing__``). Categories seen in fewer than
    ``min_frequency`` of the training rows (a share when < 1, else a count), and those beyond the
    ``max_categories`` most frequent, are pooled into ``__rare__``. At transform time an unseen
    category also goes to ``__rare__``; when training had no rare bucket its row is all zeros.

    Args:
        columns: categorical column names.
        min_frequency: minimum share (float < 1) or count (int >= 1) of a kept category.
        max_categories: maximum number of kept categories per column.
    """

    def __init__(
        self, columns: Sequence[str], min_frequency: float = 0.01, max_categories: int = 30
    ) -> None:
        if max_categories < 1:
            raise ValueError(
                "The 'max_categories' parameter of the categorical block must be an int in the "
                f"range [1, inf). Got {max_categories!r} instead."
            )
        self.columns = list(columns)
        self.min_frequency = min_frequency
        self.max_categories = int(max_categories)

    @staticmethod
    def _as_str(series: pd.Series) -> pd.Series:
        if pd.api.types.is_float_dtype(series):
            # an integer code column with missing values is float in pandas: read 1.0 as "1",
            # as it reads in a file parsed as text (deepseg-predict reads categories as text)
            finite = series.dropna()
            if len(finite) and bool((finite == np.round(finite)).all()):
                series = series.astype("Int64")
        out = series.astype(object).where(series.notna(), MISSING)
        return out.map(str)

    def fit(self, frame: pd.DataFrame) -> CategoricalBlock:
        n = len(frame)
        threshold = self.min_frequency * n if self.min_frequency < 1 else self.min_frequency
        self.categories_: list[list[str]] = []
        self.has_rare_: list[bool] = []
        for col in self.columns:
            counts = self._as_str(frame[col]).value_counts()
            kept = counts[counts >= threshold].index[: self.max_categories]
            kept_list = sorted(str(c) for c in kept)
            has_rare = len(kept_list) < len(counts)
            self.categories_.append(kept_list)
            self.has_rare_.append(has_rare)
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        blocks = []
        for col, cats, has_rare in zip(self.columns, self.categories_, self.has_rare_):
            values = self._as_str(frame[col]).to_numpy()
            width = len(cats) + int(has_rare)
            codes = pd.Index(cats).get_indexer(values).astype(np.int64)
            onehot = np.zeros((len(values), width), dtype=np.float64)
            known = codes >= 0
            onehot[np.flatnonzero(known), codes[known]] = 1.0
            if has_rare:
                onehot[~known, width - 1] = 1.0
            blocks.append(onehot)
        if not blocks:
            return np.zeros((len(frame), 0))
        return np.concatenate(blocks, axis=1)

    @property
    def group_sizes(self) -> list[int]:
        """Number of output indicators of each column, in column order."""
        return [len(c) + int(r) for c, r in zip(self.categories_, self.has_rare_)]

    @property
    def feature_names_out(self) -> list[str]:
        names = []
        for col, cats, has_rare in zip(self.columns, self.categories_, self.has_rare_):
            names += [f"{col}={c}" for c in cats]
            if has_rare:
                names.append(f"{col}={RARE}")
        return names

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state = {
            "columns": self.columns,
            "min_frequency": self.min_frequency,
            "max_categories": self.max_categories,
            "categories": self.categories_,
            "has_rare": self.has_rare_,
        }
        return state, {}

    @classmethod
    def from_state(cls, state: dict, arrays: dict[str, np.ndarray]) -> CategoricalBlock:
        block = cls(state["columns"], state["min_frequency"], state["max_categories"])
        block.categories_ = [list(c) for c in state["categories"]]
        block.has_rare_ = [bool(h) for h in state["has_rare"]]
        return block


class MatrixBlock:
    """Scaling for data that is already a numeric matrix (images, embeddings).

    Args:
        scale: "max" (divide by the largest absolute training value: keeps pixels in [0, 1]),
            "standard" (per-feature zero mean, unit variance), "minmax" (per feature to [0, 1]),
            or "none".
    """

    SCALES = ("max", "standard", "minmax", "none")

    def __init__(self, scale: str = "max") -> None:
        if scale not in self.SCALES:
            raise ValueError(
                f"The matrix 'scale' must be one of {list(self.SCALES)}. Got {scale!r}."
            )
        self.scale = scale

    def fit(self, X: np.ndarray) -> MatrixBlock:
        X = np.asarray(X, dtype=np.float64)
        check_finite_matrix(X)
        d = X.shape[1]
        self.offset_ = np.zeros(d)
        self.divisor_ = np.ones(d)
        if self.scale == "max":
            m = np.abs(X).max()
            self.divisor_ = np.full(d, m if m > 0 else 1.0)
        elif self.scale == "standard":
            self.offset_ = X.mean(axis=0)
            sd = X.std(axis=0)
            self.divisor_ = np.where(sd > 0, sd, 1.0)
        elif self.scale == "minmax":
            self.offset_ = X.min(axis=0)
            rng = X.max(axis=0) - self.offset_
            self.divisor_ = np.where(rng > 0, rng, 1.0)
        self.n_features_in_ = d
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"Expected a matrix with {self.n_features_in_} columns; got shape {X.shape}."
            )
        check_finite_matrix(X)
        if self.scale == "max":  # one scalar: cheap on large image matrices
            return X.astype(np.float32) / np.float32(self.divisor_[0])
        return ((X - self.offset_) / self.divisor_).astype(np.float32)

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {"scale": self.scale, "n_features_in": self.n_features_in_}, {
            "offset": self.offset_,
            "divisor": self.divisor_,
        }

    @classmethod
    def from_state(cls, state: dict, arrays: dict[str, np.ndarray]) -> MatrixBlock:
        block = cls(state["scale"])
        block.n_features_in_ = int(state["n_features_in"])
        block.offset_ = np.asarray(arrays["offset"], dtype=np.float64)
        block.divisor_ = np.asarray(arrays["divisor"], dtype=np.float64)
        return block
