"""The one feature pipeline: raw table (or matrix) -> float32 feature matrix.

Baselines and deep models read the same matrix, so every method sees identical inputs. The
pipeline is fitted on training data, applied to new data, and saved as ``pipeline.json`` plus
``pipeline.npz`` (plain arrays, loaded with ``allow_pickle=False``).

Block weighting (``balance``):

* ``"columns"`` (the default): every source column gets the same variance budget, times its block's
  ``weight``. A numeric column is standardised (variance 1); the one-hot indicators of one
  categorical column are scaled together to a total variance of 1; a free-text column counts as
  ``TEXT_COLUMN_EQUIVALENT`` (5) columns. So a one-column categorical block weighs as much as
  one numeric column, not as much as all of them, and no single attribute dominates the
  distances.
* ``"blocks"``: each block's total variance is proportional to its ``weight``, whatever its number
  of columns (the behaviour before column balancing).
* ``"none"``: a block is only multiplied by ``sqrt(weight)``.

With ``columns`` and ``blocks`` the whole matrix is then scaled to a mean per-feature variance
of 1. A weight of 0 drops the block.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
import pandas as pd

from deepseg.features.blocks import CategoricalBlock, MatrixBlock, NumericBlock
from deepseg.features.columns import ColumnRoles, require_columns, unrelated_categoricals

if TYPE_CHECKING:  # features sit below data: Dataset is only duck-typed here
    from deepseg.data.base import Dataset

logger = logging.getLogger(__name__)

STATE_VERSION = 1
_BLOCK_TYPES = ("numeric", "categorical", "text", "matrix")
BALANCE_MODES = ("columns", "blocks", "none")
#: With ``balance="columns"`` one free-text column counts as this many source columns: it holds
#: many attributes (its words), and counted as one it is drowned by a dozen numeric columns
#: (synthetic_customers, kmeans: ACC 0.955 with 1, 0.986 with 5).
TEXT_COLUMN_EQUIVALENT = 5.0
#: Above this many rows the pipeline is fitted on a seeded sample of this size (a sample of
#: 200,000 rows fixes quantiles, means and category shares to well under 1% of a column's
#: spread) and applied to all rows in chunks of CHUNK_ROWS.
FIT_SAMPLE_ROWS = 200_000
CHUNK_ROWS = 100_000
#: An output for the feature matrix: an array of the right shape, or a function of (rows,
#: features) that returns one (for example a ``numpy.memmap`` opened on a file).
OutArray = np.ndarray | Callable[[int, int], np.ndarray | None]


def _block_classes(text: bool = True) -> dict[str, Any]:
    classes: dict[str, Any] = {
        "numeric": NumericBlock,
        "categorical": CategoricalBlock,
        "matrix": MatrixBlock,
    }
    if text:  # scikit-learn's text machinery takes seconds to import: only when needed
        from deepseg.features.text import TextBlock

        classes["text"] = TextBlock
    return classes


class FeaturePipeline:
    """Turns a Dataset (or a frame with column roles, or a matrix) into a float32 matrix.

    Args:
        numeric: options of the numeric block (``weight`` plus NumericBlock arguments).
        categorical: options of the categorical block (``weight`` plus CategoricalBlock arguments).
        text: options of the text block (``weight`` plus TextBlock arguments).
        matrix: options for matrix data (``scale``: see MatrixBlock).
        balance: "columns" (every source column the same variance budget, times its block's
            weight), "blocks" (every block a total variance proportional to its weight) or
            "none" (see the module docstring).
        balance_blocks: the former switch, kept so that older configs and saved pipelines read
            the same: True means ``balance="blocks"``, False ``balance="none"``; None (the
            default) leaves ``balance`` in charge.
        fit_sample_rows: fit every block (and the block weights) on a seeded sample of this
            many rows when the data has more, then apply the fitted pipeline to every row in
            chunks; None fits on every row. Tables up to this size are fitted exactly as
            before.
        chunk_rows: rows per chunk when applying the pipeline to more rows than this.
        sample_seed: seed of that sample.

    Attributes:
        feature_names_: names of the output columns.
        block_slices_: {block name: [start, stop)} column ranges in the output.
        roles_: the column roles the pipeline was fitted with.
        factors_: {block: scalar factor applied to the block}.
        column_scales_: {block: per-output-column factors applied before ``factors_``}; with
            ``balance="columns"`` the categorical block's indicators of one column share one
            factor that gives them a total variance of 1.
    """

    def __init__(
        self,
        numeric: Mapping[str, Any] | None = None,
        categorical: Mapping[str, Any] | None = None,
        text: Mapping[str, Any] | None = None,
        matrix: Mapping[str, Any] | None = None,
        balance: str = "columns",
        balance_blocks: bool | None = None,
        fit_sample_rows: int | None = FIT_SAMPLE_ROWS,
        chunk_rows: int = CHUNK_ROWS,
        sample_seed: int = 0,
        profile_only: str | Sequence[str] | None = None,
    ) -> None:
        self.numeric = dict(numeric or {})
        self.categorical = dict(categorical or {})
        self.text = dict(text or {})
        self.matrix = dict(matrix or {})
        self.balance = balance
        self.balance_blocks = balance_blocks
        self.fit_sample_rows = fit_sample_rows
        self.chunk_rows = chunk_rows
        self.sample_seed = sample_seed
        self.profile_only = profile_only

    def _balance_mode(self) -> str:
        if self.balance_blocks is not None:
            return "blocks" if self.balance_blocks else "none"
        if self.balance not in BALANCE_MODES:
            raise ValueError(
                f"The 'balance' parameter of FeaturePipeline must be one of "
                f"{list(BALANCE_MODES)}. Got {self.balance!r} instead."
            )
        return self.balance

    # -- fitting -------------------------------------------------------------------------------

    def _options(self, block: str) -> tuple[float, dict[str, Any]]:
        opts = dict(getattr(self, block))
        weight = float(opts.pop("weight", 1.0))
        if weight < 0:
            raise ValueError(f"The weight of the {block} block must be >= 0. Got {weight}.")
        return weight, opts

    def fit(
        self, data: Dataset | pd.DataFrame | np.ndarray, roles: ColumnRoles | None = None
    ) -> FeaturePipeline:
        """Fit every block on the training data.

        Args:
            data: a Dataset, a frame (then ``roles`` is required), or an array of shape
                (n_samples, n_features).
            roles: column roles when ``data`` is a frame.
        """
        self.fit_transform(data, roles)
        return self

    def fit_transform(
        self,
        data: Dataset | pd.DataFrame | np.ndarray,
        roles: ColumnRoles | None = None,
        out: OutArray | None = None,
    ) -> np.ndarray:
        """Fit on ``data`` and return its feature matrix of shape (n_samples, n_features_out).

        Args:
            data: as in :meth:`fit`.
            roles: as in :meth:`fit`.
            out: where to write the matrix (for example a ``numpy.memmap``), or a callable
                ``out(n_rows, n_features)`` that returns one (or None); by default (None) a
                new array.
        """
        frame, X, roles = self._unpack(data, roles)
        if frame is not None:
            roles = self._segmentation_basis(frame, roles)
        n_rows = len(frame) if frame is not None else len(X)  # type: ignore[arg-type]
        limit = self.fit_sample_rows
        if limit is not None and (isinstance(limit, bool) or int(limit) < 2):
            raise ValueError(f"'fit_sample_rows' must be an int >= 2 or null. Got {limit!r}.")
        if limit is None or n_rows <= int(limit):
            result = self._fit_rows(data, frame, X, roles)
            target = out(*result.shape) if callable(out) else out
            if target is None:
                return result
            target[:] = result
            return target
        rows = np.sort(
            np.random.default_rng(self.sample_seed).choice(n_rows, int(limit), replace=False)
        )
        logger.info(
            "Fitting the feature pipeline on a seeded sample of %d of %d rows (fit_sample_rows)",
            len(rows),
            n_rows,
        )
        self._fit_rows(
            data,
            None if frame is None else frame.iloc[rows],
            None if X is None else np.asarray(X[rows]),
            roles,
        )
        return self.transform(data, out=out)

    def _segmentation_basis(self, frame: pd.DataFrame, roles: ColumnRoles) -> ColumnRoles:
        """The roles without the columns kept to describe the segments (``profile_only``).

        ``profile_only`` is None (every column segments), a list of columns, or "auto": the
        categorical columns that go with no other column
        (:func:`~deepseg.features.columns.unrelated_categoricals`). The decision is logged and
        kept in ``profile_only_`` ({column: reason}).
        """
        self.profile_only_: dict[str, str] = {}
        choice = self.profile_only
        if choice is None or choice is False:
            return roles
        if isinstance(choice, str) and choice == "auto":
            self.profile_only_ = unrelated_categoricals(
                frame, roles.numeric, roles.categorical, random_state=self.sample_seed
            )
        elif isinstance(choice, str):
            raise ValueError(
                "The 'profile_only' parameter of FeaturePipeline must be null, 'auto' or a list "
                f"of columns. Got {choice!r} instead."
            )
        else:
            unknown = [c for c in choice if c not in roles.feature_columns()]
            if unknown:
                raise ValueError(
                    f"profile_only names {unknown}, which are not feature columns: "
                    f"{roles.feature_columns()}"
                )
            self.profile_only_ = {str(c): "listed in features.profile_only" for c in choice}
        left = [c for c in roles.feature_columns() if c not in self.profile_only_]
        if not left:  # nothing would be left to segment on: keep them all
            self.profile_only_ = {}
            return roles
        for column, reason in self.profile_only_.items():
            logger.info("'%s' describes the segments but is not segmented on: %s", column, reason)
        if not self.profile_only_:
            return roles
        return dataclasses.replace(
            roles,
            numeric=[c for c in roles.numeric if c not in self.profile_only_],
            categorical=[c for c in roles.categorical if c not in self.profile_only_],
            text=[c for c in roles.text if c not in self.profile_only_],
        )

    def _fit_rows(
        self,
        data: Any,
        frame: pd.DataFrame | None,
        X: np.ndarray | None,
        roles: ColumnRoles,
    ) -> np.ndarray:
        """Fit every block and the block factors on these rows; their feature matrix."""
        mode = self._balance_mode()
        self.blocks_: dict[str, Any] = {}
        self.weights_: dict[str, float] = {}
        raw: dict[str, np.ndarray] = {}
        if X is not None:
            weight, opts = self._options("matrix")
            self.blocks_["matrix"] = MatrixBlock(**opts).fit(X)
            self.weights_["matrix"] = weight
            raw["matrix"] = self.blocks_["matrix"].transform(X)
            self.matrix_feature_names_ = (
                list(data.feature_names)
                if _is_dataset(data) and data.feature_names
                else [f"x{j}" for j in range(X.shape[1])]
            )
        else:
            assert frame is not None
            classes = _block_classes()
            for block, columns in (
                ("numeric", roles.numeric),
                ("categorical", roles.categorical),
                ("text", roles.text),
            ):
                weight, opts = self._options(block)
                if not columns or weight == 0:
                    continue
                if block == "text":
                    obj = classes[block](**opts)
                    raw[block] = np.asarray(obj.fit_transform(self._text(frame, columns)))
                else:
                    obj = classes[block](columns, **opts)
                    raw[block] = obj.fit(frame).transform(frame)
                self.blocks_[block] = obj
                self.weights_[block] = weight
        if not self.blocks_:
            raise ValueError(
                "The feature pipeline has no input: no numeric, categorical or text columns (or "
                "every block has weight 0)."
            )
        self.roles_ = roles
        self.column_scales_: dict[str, np.ndarray] = {}
        if mode == "columns" and "categorical" in raw:
            self.column_scales_["categorical"] = _group_scales(
                raw["categorical"], self.blocks_["categorical"].group_sizes
            )
        n_out = sum(r.shape[1] for r in raw.values())
        budgets = {b: self._budget(b, mode, roles, v) for b, v in raw.items()}
        total_budget = sum(budgets.values())
        self.factors_: dict[str, float] = {}
        for block, values in raw.items():
            if mode == "none" or block == "matrix":
                self.factors_[block] = float(np.sqrt(self.weights_[block]))
                continue
            scales = self.column_scales_.get(block)
            var = float((values.var(axis=0) * (1.0 if scales is None else scales**2)).sum())
            self.factors_[block] = (
                float(np.sqrt(budgets[block] * n_out / (total_budget * var)))
                if var > 0 and total_budget > 0
                else 0.0
            )
        logger.info(
            "Block weighting (balance=%s): %s",
            mode,
            ", ".join(
                f"{b} {budgets[b] / total_budget:.0%} of the variance" if total_budget else b
                for b in raw
            ),
        )
        out = self._combine(raw)
        logger.info(
            "Feature pipeline fitted: %d rows -> %d features (%s)",
            out.shape[0],
            out.shape[1],
            ", ".join(f"{b}: {s[1] - s[0]}" for b, s in self.block_slices_.items()),
        )
        return out

    def _budget(self, block: str, mode: str, roles: ColumnRoles, values: np.ndarray) -> float:
        """The block's share of the variance before normalisation: its weight, times its number
        of source columns when balancing columns."""
        weight = self.weights_[block]
        if mode != "columns":
            return weight
        obj = self.blocks_[block]
        if block == "numeric":
            return weight * float((values.var(axis=0) > 0).sum())  # constant columns: none
        if block == "categorical":
            return weight * len(obj.columns)
        if block == "text":
            return weight * TEXT_COLUMN_EQUIVALENT * max(len(roles.text), 1)
        return weight

    def _combine(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        parts: list[np.ndarray] = []
        names: list[str] = []
        slices: dict[str, list[int]] = {}
        start = 0
        for block in _BLOCK_TYPES:
            if block not in raw:
                continue
            values = raw[block]
            factor = self.factors_[block]
            scales = getattr(self, "column_scales_", {}).get(block)
            if scales is not None:
                values = values * scales
            parts.append(values if factor == 1.0 else values * factor)
            obj = self.blocks_[block]
            names += (
                self.matrix_feature_names_ if block == "matrix" else list(obj.feature_names_out)
            )
            slices[block] = [start, start + values.shape[1]]
            start += values.shape[1]
        self.feature_names_ = names
        self.block_slices_ = slices
        out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        return np.ascontiguousarray(out, dtype=np.float32)

    # -- applying ------------------------------------------------------------------------------

    def transform(
        self, data: Dataset | pd.DataFrame | np.ndarray, out: OutArray | None = None
    ) -> np.ndarray:
        """Apply the fitted pipeline to new data of the same kind as the training data.

        More rows than ``chunk_rows`` are transformed chunk by chunk into one output, so that
        the intermediate blocks (text above all) never exist for every row at once.

        Args:
            data: a Dataset, a frame or a matrix, as the pipeline was fitted on.
            out: where to write the rows (an array or ``numpy.memmap`` of shape (n_rows,
                n_features_out), float32), or a callable ``out(n_rows, n_features)`` that
                returns one (or None); by default (None) a new array.

        Missing columns raise a ValueError listing them; extra columns are ignored with a warning.
        """
        if not hasattr(self, "blocks_"):
            raise RuntimeError("This FeaturePipeline is not fitted yet; call fit first.")
        if _is_dataset(data):
            data = data.X if data.X is not None else data.frame
        if "matrix" in self.blocks_ and isinstance(data, pd.DataFrame):
            data = data.to_numpy()
        if "matrix" not in self.blocks_:
            if not isinstance(data, pd.DataFrame):
                raise TypeError(
                    f"This pipeline was fitted on a table; expected a pandas DataFrame, got "
                    f"{type(data).__name__}."
                )
            needed = self.roles_.feature_columns()
            require_columns(data, needed, "Input table")
            extra = [c for c in data.columns if c not in needed and c != self.roles_.id]
            if extra:
                logger.warning(
                    "Ignoring %d extra column(s) not used in training: %s",
                    len(extra),
                    extra[:10],
                )
        n_rows = len(data)
        step = max(int(self.chunk_rows), 1)
        n_out = len(self.feature_names_)
        target = out(n_rows, n_out) if callable(out) else out
        if target is None:
            if n_rows <= step:
                return self._transform_rows(data)
            target = np.empty((n_rows, n_out), dtype=np.float32)
        if target.shape != (n_rows, n_out):
            raise ValueError(
                f"The output array has shape {target.shape}; expected {(n_rows, n_out)}."
            )
        for start in range(0, n_rows, step):
            stop = min(start + step, n_rows)
            chunk = (
                data.iloc[start:stop]
                if isinstance(data, pd.DataFrame)
                else np.asarray(data)[start:stop]
            )
            target[start:stop] = self._transform_rows(chunk)
            if n_rows > step:
                logger.info("Features: %d of %d rows", stop, n_rows)
        return target

    def _transform_rows(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        raw: dict[str, np.ndarray] = {}
        if "matrix" in self.blocks_:
            raw["matrix"] = self.blocks_["matrix"].transform(np.asarray(data))
            return self._combine(raw)
        assert isinstance(data, pd.DataFrame)
        for block, obj in self.blocks_.items():
            if block == "text":
                raw[block] = np.asarray(obj.transform(self._text(data, self.roles_.text)))
            else:
                raw[block] = obj.transform(data)
        return self._combine(raw)

    def text_documents(self, frame: pd.DataFrame) -> list[str]:
        """The documents the text block read from ``frame``: its text columns joined by a space.

        Raises:
            ValueError: If the pipeline is not fitted or has no text columns.
        """
        roles = getattr(self, "roles_", None)
        if roles is None or not roles.text:
            raise ValueError("This feature pipeline has no fitted text columns.")
        return self._text(frame, list(roles.text))

    @staticmethod
    def _text(frame: pd.DataFrame, columns: list[str]) -> list[str]:
        parts = [frame[c].astype(object).where(frame[c].notna(), "").map(str) for c in columns]
        joined = parts[0]
        for p in parts[1:]:
            joined = joined + " " + p
        return joined.tolist()

    @staticmethod
    def _unpack(
        data: Dataset | pd.DataFrame | np.ndarray, roles: ColumnRoles | None
    ) -> tuple[pd.DataFrame | None, np.ndarray | None, ColumnRoles]:
        if _is_dataset(data):
            return data.frame, data.X, data.roles
        if isinstance(data, pd.DataFrame):
            if roles is None:
                raise ValueError("Fitting the pipeline on a DataFrame needs its column roles.")
            require_columns(data, roles.feature_columns(), "Input table")
            return data, None, roles
        X = np.asarray(data)
        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2-D matrix of shape (n_samples, n_features); got {X.shape}."
            )
        return None, X, ColumnRoles()

    # -- persistence (JSON + arrays, no pickle) ------------------------------------------------

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The fitted state as a JSON-serialisable dict and a dict of named arrays."""
        state: dict[str, Any] = {
            "state_version": STATE_VERSION,
            "params": {
                "numeric": self.numeric,
                "categorical": self.categorical,
                "text": self.text,
                "matrix": self.matrix,
                "balance": self.balance,
                "balance_blocks": self.balance_blocks,
                "fit_sample_rows": self.fit_sample_rows,
                "chunk_rows": self.chunk_rows,
                "sample_seed": self.sample_seed,
                "profile_only": self.profile_only
                if self.profile_only is None or isinstance(self.profile_only, str)
                else list(self.profile_only),
            },
            "profile_only": getattr(self, "profile_only_", {}),
            "roles": self.roles_.to_dict(),
            "weights": self.weights_,
            "factors": self.factors_,
            "feature_names": self.feature_names_,
            "block_slices": self.block_slices_,
            "blocks": {},
        }
        if "matrix" in self.blocks_:
            state["matrix_feature_names"] = self.matrix_feature_names_
        arrays: dict[str, np.ndarray] = {}
        for block, obj in self.blocks_.items():
            block_state, block_arrays = obj.get_state()
            state["blocks"][block] = block_state
            arrays.update({f"{block}/{k}": v for k, v in block_arrays.items()})
        for block, scales in self.column_scales_.items():
            arrays[f"column_scales/{block}"] = scales
        return _jsonable(state), arrays

    @classmethod
    def from_state(
        cls, state: dict[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> FeaturePipeline:
        if state.get("state_version") != STATE_VERSION:
            raise ValueError(
                f"Unsupported feature-pipeline state version {state.get('state_version')!r}; "
                f"this deepseg reads version {STATE_VERSION}."
            )
        pipe = cls(**state["params"])
        classes = _block_classes(text="text" in state["blocks"])
        pipe.blocks_ = {}
        for block, block_state in state["blocks"].items():
            prefix = f"{block}/"
            block_arrays = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            pipe.blocks_[block] = classes[block].from_state(block_state, block_arrays)
        pipe.roles_ = ColumnRoles.from_dict(state["roles"])
        pipe.profile_only_ = dict(state.get("profile_only") or {})
        pipe.weights_ = {k: float(v) for k, v in state["weights"].items()}
        pipe.factors_ = {k: float(v) for k, v in state["factors"].items()}
        pipe.column_scales_ = {  # absent in pipelines saved before column balancing
            k.split("/", 1)[1]: np.asarray(v, dtype=np.float64)
            for k, v in arrays.items()
            if k.startswith("column_scales/")
        }
        pipe.feature_names_ = list(state["feature_names"])
        pipe.block_slices_ = {k: list(v) for k, v in state["block_slices"].items()}
        if "matrix_feature_names" in state:
            pipe.matrix_feature_names_ = list(state["matrix_feature_names"])
        return pipe

    def save(self, directory: str | Path) -> None:
        """Write ``pipeline.json`` and ``pipeline.npz`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state, arrays = self.get_state()
        (directory / "pipeline.json").write_text(json.dumps(state, indent=1))
        np.savez(directory / "pipeline.npz", **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, directory: str | Path) -> FeaturePipeline:
        """Read a pipeline written by :meth:`save`; never unpickles anything."""
        directory = Path(directory)
        state = json.loads((directory / "pipeline.json").read_text())
        with np.load(directory / "pipeline.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        return cls.from_state(state, arrays)


def _group_scales(values: np.ndarray, group_sizes: list[int]) -> np.ndarray:
    """One factor per output column: each group of columns (the indicators of one categorical
    column) scaled to a total variance of 1; a constant group keeps factor 1 (it is all zeros
    after centring anyway)."""
    scales = np.ones(values.shape[1])
    var = values.var(axis=0)
    start = 0
    for size in group_sizes:
        total = float(var[start : start + size].sum())
        if total > 0:
            scales[start : start + size] = 1.0 / np.sqrt(total)
        start += size
    return scales


def _jsonable(obj: Any) -> Any:
    """Plain Python types for json.dumps (numpy scalars, tuples, OmegaConf containers)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple) or (
        hasattr(obj, "__iter__") and type(obj).__name__ == "ListConfig"
    ):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def _is_dataset(data: object) -> TypeGuard[Dataset]:
    """A deepseg Dataset (matched by shape, since features do not import data)."""
    return all(hasattr(data, a) for a in ("frame", "X", "roles", "ids"))
