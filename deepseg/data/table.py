"""Tables from CSV or Parquet files (one file, a directory, or a glob of parts).

Column roles come from the config; roles not given are inferred from dtypes and values and the
inferred roles are logged, so a user can copy them into the config and adjust.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from deepseg.data.base import ColumnRoles, Dataset, require_columns
from deepseg.features.columns import infer_roles  # codes, dates, constants, ids (issue 15)

logger = logging.getLogger(__name__)

_TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet", ".pq")


def resolve_paths(path: str | Path | Sequence[str | Path]) -> list[Path]:
    """The files meant by ``path``: a file, a directory of table files, a glob, or a list.

    Raises:
        FileNotFoundError: naming the path when nothing matches.
    """
    if isinstance(path, list | tuple):
        if not path:
            raise FileNotFoundError("No data path given: the path list is empty.")
        return [p for item in path for p in resolve_paths(item)]
    text = str(path)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text))
        if not files:
            raise FileNotFoundError(f"No file matches the pattern '{text}'.")
        return files
    p = Path(text)
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.name.lower().endswith(_TABLE_SUFFIXES))
        if not files:
            raise FileNotFoundError(f"The directory '{p}' holds no CSV or Parquet files.")
        return files
    raise FileNotFoundError(f"Data file not found: '{p}' does not exist.")


def read_table(
    path: str | Path | Sequence[str | Path], dtype: dict[str, str] | None = None
) -> pd.DataFrame:
    """Read and concatenate the table file(s) meant by ``path`` (see :func:`resolve_paths`)."""
    frames = []
    for f in resolve_paths(path):
        name = f.name.lower()
        if name.endswith((".parquet", ".pq")):
            df = pd.read_parquet(f)  # typed already: ``dtype`` only steers CSV parsing
        else:
            sep = "\t" if ".tsv" in name else ","
            try:
                df = pd.read_csv(f, sep=sep, dtype=dtype, low_memory=False)
            except pd.errors.EmptyDataError:
                df = pd.DataFrame()
        frames.append(df)
    table = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    logger.info(
        "Read %d rows x %d columns from %d file(s)", len(table), table.shape[1], len(frames)
    )
    return table


def dataset_from_frame(
    frame: pd.DataFrame,
    *,
    name: str = "table",
    id_column: str | None = None,
    label_column: str | None = None,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    text: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    infer: bool = True,
    n_clusters: int | None = None,
    source: str = "Input table",
) -> Dataset:
    """Build a Dataset from a frame, with given and inferred roles (see :func:`infer_roles`)."""
    if frame.empty or frame.shape[1] == 0:
        raise ValueError(f"{source} is empty: it has no rows.")
    given = ColumnRoles(
        id=id_column,
        label=label_column,
        numeric=list(numeric or []),
        categorical=list(categorical or []),
        text=list(text or []),
    )
    declared = [c for c in (id_column, label_column) if c] + given.feature_columns()
    require_columns(frame, declared + list(exclude), source)
    roles = infer_roles(frame, given, exclude)[0] if infer else given
    if not roles.feature_columns():
        raise ValueError(f"{source} has no feature columns: declare numeric, categorical or text.")
    ids = frame[roles.id].to_numpy(dtype=object) if roles.id is not None else np.arange(len(frame))
    labels = None
    if roles.label is not None:
        lab = frame[roles.label]
        if lab.isna().any():
            raise ValueError(
                f"Label column '{roles.label}' has {int(lab.isna().sum())} missing values."
            )
        labels = lab.to_numpy()
    features = frame[roles.feature_columns()].reset_index(drop=True)
    return Dataset(
        name=name,
        ids=ids,
        frame=features,
        labels=labels,
        roles=roles,
        n_clusters=n_clusters,
    )


def load_table(
    path: str | Path | Sequence[str | Path],
    *,
    name: str = "table",
    id_column: str | None = None,
    label_column: str | None = None,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    text: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    infer: bool = True,
    n_clusters: int | None = None,
) -> Dataset:
    """Load a CSV/Parquet table (file, directory or glob) as a Dataset.

    Args:
        path: file, directory, glob pattern or list of them.
        name: dataset name.
        id_column: the id column; inferred when None.
        label_column: ground-truth column, used only for scoring; never inferred.
        numeric: numeric feature columns; inferred when empty.
        categorical: categorical feature columns; inferred when empty.
        text: text feature columns; inferred when empty.
        exclude: columns never used as features.
        infer: set False to use exactly the given roles.
        n_clusters: the default number of segments for this table.
    """
    frame = read_table(path)
    return dataset_from_frame(
        frame,
        name=name,
        id_column=id_column,
        label_column=label_column,
        numeric=numeric,
        categorical=categorical,
        text=text,
        exclude=exclude,
        infer=infer,
        n_clusters=n_clusters,
        source=f"Table '{path}'",
    )


def load_text_corpus(
    path: str | Path,
    *,
    text_columns: Sequence[str] = ("text",),
    label_column: str | None = "label",
    id_column: str | None = None,
    name: str = "text_corpus",
    n_clusters: int | None = None,
    n_samples: int | None = None,
    random_state: int = 0,
) -> Dataset:
    """A CSV of documents: one or more text columns (joined) and an optional label column.

    Args:
        path: CSV file (or directory / glob of parts).
        text_columns: the text columns; several are joined with a space.
        label_column: ground-truth column, used only for scoring.
        id_column: id column, or None for row numbers.
        name: dataset name.
        n_clusters: number of topics.
        n_samples: optional seeded random subset size.
        random_state: seed of the subset draw.
    """
    frame = read_table(path)
    if n_samples is not None and n_samples < len(frame):
        frame = frame.sample(n=n_samples, random_state=random_state).sort_index()
    return dataset_from_frame(
        frame,
        name=name,
        id_column=id_column,
        label_column=label_column,
        text=list(text_columns),
        infer=False,
        n_clusters=n_clusters,
        source=f"Text corpus '{path}'",
    )
