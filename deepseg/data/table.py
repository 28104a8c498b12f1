"""Tables from CSV or Parquet files (one file, a directory, or a glob of parts).

Column roles come from the config; roles not given are inferred from dtypes and values and the
inferred roles are logged, so a user can copy them into the config and adjust.
"""

from __future__ import annotations

import codecs
import csv
import glob
import gzip
import logging
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepseg.data.base import ColumnRoles, Dataset, require_columns
from deepseg.features.columns import (  # codes, dates, constants, ids (issue 15)
    infer_roles,
    log_missing_values,
    missing_values,
)

logger = logging.getLogger(__name__)

# The files a directory is read for (a file named explicitly is read whatever its suffix)
_CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_TABLE_SUFFIXES = _CSV_SUFFIXES + _PARQUET_SUFFIXES + _EXCEL_SUFFIXES
SEPARATORS = (",", ";", "\t", "|")
# The encodings tried, in order, after UTF-8 when no data.encoding is declared: Windows' western
# code page (Excel's "CSV" export), then latin-1, which decodes any byte
FALLBACK_ENCODINGS = ("cp1252", "latin-1")
_SNIFF_BYTES = 1 << 20
DUPLICATE_IDS = ("error", "first", "last")
_SEP_NAMES = {"\\t": "\t", "tab": "\t", "TAB": "\t"}  # TAB as typed on a command line


def table_kind(path: str | Path) -> str:
    """The kind of a table file from its name: csv (the default), parquet or excel."""
    name = Path(path).name.lower()
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(_EXCEL_SUFFIXES):
        return "excel"
    if name.endswith(".xls"):
        raise ValueError(
            f"'{path}' is an old Excel .xls file, which deepseg does not read; save it as .xlsx "
            "or CSV."
        )
    return "csv"


def resolve_paths(path: str | Path | Sequence[str | Path]) -> list[Path]:
    """The files meant by ``path``: a file, a directory of table files, a glob, or a list.

    A path that exists is that file or directory, even when its name holds glob characters
    (``cust[2024].csv``); only a path that does not exist is read as a pattern.

    Raises:
        FileNotFoundError: naming the path when nothing matches.
    """
    if isinstance(path, list | tuple):
        if not path:
            raise FileNotFoundError("No data path given: the path list is empty.")
        return [p for item in path for p in resolve_paths(item)]
    text = str(path)
    p = Path(text)
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.name.lower().endswith(_TABLE_SUFFIXES))
        if not files:
            raise FileNotFoundError(
                f"The directory '{p}' holds no CSV, Parquet or Excel (.xlsx) files."
            )
        return files
    if any(ch in text for ch in "*?["):
        files = sorted(Path(f) for f in glob.glob(text))
        if not files:
            raise FileNotFoundError(f"No file matches the pattern '{text}'.")
        return files
    raise FileNotFoundError(f"Data file not found: '{p}' does not exist.")


def _head_bytes(path: Path, n: int = _SNIFF_BYTES) -> bytes:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError) as exc:
        raise ValueError(f"'{path}': cannot be read ({exc}).") from exc


def detect_encoding(path: str | Path, declared: str | None = None) -> str:
    """The text encoding of a CSV file.

    A byte-order mark decides (UTF-8 -> ``utf-8-sig``, UTF-16); otherwise UTF-8 when the first
    megabyte decodes as UTF-8; otherwise the ``declared`` encoding (``data.encoding``), or
    cp1252 and then latin-1 (which decodes anything).

    Raises:
        ValueError: when ``declared`` is not a known encoding, or does not decode the file.
    """
    path = Path(path)
    head = _head_bytes(path)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < _SNIFF_BYTES)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    candidates = (declared,) if declared else FALLBACK_ENCODINGS
    for encoding in candidates:
        try:
            head.decode(encoding)
        except LookupError as exc:
            raise ValueError(f"data.encoding: unknown encoding {encoding!r}.") from exc
        except UnicodeDecodeError as exc:
            if declared:
                raise ValueError(
                    f"'{path}' is neither UTF-8 nor the declared data.encoding={declared!r}: "
                    f"{exc}."
                ) from exc
            continue
        return encoding
    return "latin-1"


def sniff_separator(text: str, default: str = ",") -> str:
    """The column separator of CSV text: the candidate (``, ; TAB |``) that splits the first
    lines into the same number of columns, more than one; the most columns wins."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if len(text) >= _SNIFF_BYTES // 2 and len(lines) > 1:
        lines = lines[:-1]  # the last line of a sample may be cut off
    best, best_columns = default, 1
    for sep in SEPARATORS:
        try:
            counts = {len(row) for row in csv.reader(lines, delimiter=sep)}
        except csv.Error:
            continue
        if len(counts) == 1 and (n := counts.pop()) > best_columns:
            best, best_columns = sep, n
    if best_columns == 1 and lines:  # ragged lines: the separator of the header
        in_header = {c: lines[0].count(c) for c in SEPARATORS}
        most = max(in_header, key=lambda c: in_header[c])
        if in_header[most] > 0:
            best = most
    return best


_SEP_WORDS = {",": "','", ";": "';'", "\t": "TAB", "|": "'|'"}


def check_separator(frame: pd.DataFrame, path: str | Path, sep: str) -> None:
    """Refuse a table read as one column whose header and values hold another separator.

    A TAB-separated file read with ``data.sep=,`` becomes one text column that would be
    segmented on the words of its lines. The file is refused when its single column's name
    contains ``; TAB |`` (or ``,``) and at least 90% of its first 200 non-empty values contain it
    as often as the name does, whatever ``data.sep`` says. A real one-column text with such a
    character in some values passes.

    Raises:
        ValueError: naming the file and the separator it suspects.
    """
    if frame.shape[1] != 1:
        return
    header = str(frame.columns[0])
    values = frame.iloc[:200, 0].dropna().astype(str)
    for candidate in SEPARATORS:
        if candidate == sep or candidate not in header or values.empty:
            continue
        count = header.count(candidate)
        if (values.str.count(re.escape(candidate)) == count).mean() >= 0.9:
            raise ValueError(
                f"'{path}': one column whose name and values contain {_SEP_WORDS[candidate]}: "
                f"is the separator right? It was read with {_SEP_WORDS.get(sep, repr(sep))}; "
                f"the file looks separated by {_SEP_WORDS[candidate]} (set data.sep, or leave "
                "it null to sniff it)."
            )


def csv_options(
    path: str | Path, *, encoding: str | None = None, sep: str | None = None
) -> dict[str, str]:
    """``encoding`` and ``sep`` to read a CSV file with (detected, sniffed or declared), logged.

    Args:
        path: the CSV file (``.gz`` is decompressed).
        encoding: the declared ``data.encoding``, used when the file is not UTF-8.
        sep: the declared ``data.sep``; sniffed when None.
    """
    path = Path(path)
    used = detect_encoding(path, encoding)
    sep = _SEP_NAMES.get(sep, sep) if sep is not None else None
    if sep is None:
        default = "\t" if ".tsv" in path.name.lower() else ","
        sample = _head_bytes(path, _SNIFF_BYTES // 4).decode(used, errors="replace")
        sep = sniff_separator(sample, default)
        how = "sniffed"
    else:
        how = "declared"
    # the usual case (UTF-8, commas) at debug level: no noise on every predict run
    level = logging.DEBUG if (used, sep) == ("utf-8", ",") else logging.INFO
    logger.log(level, "Reading %s as %s text, separator %r (%s)", path, used, sep, how)
    return {"encoding": used, "sep": sep}


def read_csv_file(
    path: str | Path,
    *,
    encoding: str | None = None,
    sep: str | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """One CSV file with its encoding detected and separator sniffed (see :func:`csv_options`);
    ``kwargs`` go to ``pandas.read_csv``. Any line ending (LF, CRLF, CR) is read.

    Raises:
        ValueError: naming the file, when it cannot be decoded or parsed.
    """
    path = Path(path)
    options = csv_options(path, encoding=encoding, sep=sep)
    try:
        frame = pd.read_csv(path, **options, **kwargs)
        check_separator(frame, path, options["sep"])
        return frame
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except UnicodeDecodeError as exc:
        if not options["encoding"].startswith("utf-8") or encoding == options["encoding"]:
            raise ValueError(f"'{path}': not {options['encoding']} text ({exc}).") from exc
        fallback = encoding or "latin-1"
        logger.warning(
            "%s: UTF-8 in its first megabyte but not after (%s); reading it as %s (set "
            "data.encoding to choose).", path, exc, fallback,
        )  # fmt: skip
        return read_csv_file(path, encoding=fallback, sep=options["sep"], **kwargs)
    except pd.errors.ParserError as exc:
        raise ValueError(
            f"'{path}': cannot be parsed as CSV with separator {options['sep']!r} ({exc}); set "
            "data.sep."
        ) from exc


def read_table(
    path: str | Path | Sequence[str | Path],
    dtype: dict[str, str] | None = None,
    *,
    encoding: str | None = None,
    sep: str | None = None,
    sheet: str | int | None = None,
) -> pd.DataFrame:
    """Read and concatenate the table file(s) meant by ``path`` (see :func:`resolve_paths`).

    CSV (any common encoding and separator, see :func:`read_csv_file`; ``.gz`` too), Parquet and
    Excel ``.xlsx``.

    Args:
        path: file, directory, glob pattern or list of them.
        dtype: column dtypes for CSV and Excel parsing (Parquet is typed already).
        encoding: the encoding of CSV files that are not UTF-8 (``data.encoding``).
        sep: the CSV separator (``data.sep``); sniffed when None.
        sheet: the Excel sheet, by name or 0-based position (``data.sheet``); the first when
            None.
    """
    frames = []
    for f in resolve_paths(path):
        kind = table_kind(f)
        if kind == "parquet":
            try:
                df = pd.read_parquet(f)
            except (OSError, ValueError) as exc:
                raise ValueError(f"'{f}': not a readable Parquet file ({exc}).") from exc
        elif kind == "excel":
            df = _read_excel(f, sheet, dtype)
        else:
            df = read_csv_file(f, encoding=encoding, sep=sep, dtype=dtype, low_memory=False)
        frames.append(df)
    table = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    logger.info(
        "Read %d rows x %d columns from %d file(s)", len(table), table.shape[1], len(frames)
    )
    return table


def _read_excel(path: Path, sheet: str | int | None, dtype: dict[str, str] | None) -> pd.DataFrame:
    try:
        import openpyxl  # noqa: F401 - pandas' engine for .xlsx
    except ImportError as exc:
        raise ImportError(
            f"Reading the Excel file '{path}' needs openpyxl: pip install openpyxl"
        ) from exc
    try:
        return pd.read_excel(path, sheet_name=0 if sheet is None else sheet, dtype=dtype)
    except ValueError as exc:  # e.g. "Worksheet named 'x' not found"
        try:
            sheets = pd.ExcelFile(path).sheet_names
        except (OSError, ValueError, zipfile.BadZipFile):
            sheets = []
        raise ValueError(
            f"'{path}': {exc} (data.sheet={sheet!r}); its sheets are {sheets}."
        ) from exc
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"'{path}': not a readable .xlsx file ({exc}).") from exc


def check_ids(ids: pd.Series, source: str, duplicate_ids: str = "error") -> np.ndarray:
    """Refuse (or, with ``duplicate_ids`` "first" / "last", drop) the rows of repeated ids.

    Args:
        ids: the id column.
        source: the input, for the message.
        duplicate_ids: "error", or which row of each repeated id to keep.

    Returns:
        A boolean mask of the rows to keep.

    Raises:
        ValueError: naming the number of repeated ids and the first few.
    """
    if duplicate_ids not in DUPLICATE_IDS:
        raise ValueError(
            f"data.duplicate_ids must be one of {list(DUPLICATE_IDS)}. Got {duplicate_ids!r}."
        )
    repeated = ids.duplicated(keep=False)
    if not repeated.any():
        return np.ones(len(ids), dtype=bool)
    values = ids[repeated]
    examples = values.drop_duplicates().head(5).tolist()
    n_ids, n_rows = int(values.nunique()), int(repeated.sum())
    if duplicate_ids == "error":
        raise ValueError(
            f"{source}: id column '{ids.name}' has {n_ids} duplicate id(s) over {n_rows} rows, "
            f"e.g. {examples}. Each customer needs one row: fix the input, or set "
            "data.duplicate_ids=first (or last) to keep one row per id."
        )
    keep = ~ids.duplicated(keep=duplicate_ids)
    logger.warning(
        "%s: %d duplicate id(s) over %d rows (e.g. %s); kept the %s row of each "
        "(data.duplicate_ids=%s), dropped %d rows.",
        source, n_ids, n_rows, examples, duplicate_ids, duplicate_ids, int((~keep).sum()),
    )  # fmt: skip
    return keep.to_numpy()


def check_finite(frame: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    """Refuse infinite values in numeric columns, naming the column and the first row.

    Raises:
        ValueError: ``<source>: column 'c' holds N infinite value(s) (first at row r)``.
    """
    for col in columns:
        series = frame[col]
        if not pd.api.types.is_float_dtype(series):
            continue
        bad = np.isinf(series.to_numpy(dtype=np.float64, na_value=np.nan))
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{source}: column '{col}' holds {int(bad.sum())} infinite value(s) (first at "
                f"row {first}, counting data rows from 0). Replace them with a number or leave "
                "the cells blank (missing)."
            )


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
    duplicate_ids: str = "error",
) -> Dataset:
    """Build a Dataset from a frame, with given and inferred roles (see :func:`infer_roles`).

    Refuses what is ambiguous: repeated ids (unless ``duplicate_ids`` says which row to keep,
    see :func:`check_ids`) and infinite numbers (:func:`check_finite`), naming the column and
    the first row.
    """
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
    if id_column is not None:
        keep = check_ids(frame[id_column], source, duplicate_ids)
        if not keep.all():
            frame = frame[keep].reset_index(drop=True)
    roles = infer_roles(frame, given, exclude)[0] if infer else given
    if not roles.feature_columns():
        raise ValueError(f"{source} has no feature columns: declare numeric, categorical or text.")
    check_finite(frame, roles.numeric, source)
    log_missing_values(
        missing_values(frame, roles.numeric, roles.categorical, roles.text), source, len(frame)
    )
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
    encoding: str | None = None,
    sep: str | None = None,
    sheet: str | int | None = None,
    duplicate_ids: str = "error",
) -> Dataset:
    """Load a CSV, Parquet or Excel table (file, directory or glob) as a Dataset.

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
        encoding: the encoding of CSV files that are not UTF-8 (detected otherwise; the one
            used is logged).
        sep: the CSV separator; sniffed when None.
        sheet: the Excel sheet (name or 0-based position); the first when None.
        duplicate_ids: "error" (repeated ids are refused), "first" or "last" (the row kept
            per id; the option is part of the run's config in its results row).
    """
    frame = read_table(path, encoding=encoding, sep=sep, sheet=sheet)
    dataset = dataset_from_frame(
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
        duplicate_ids=duplicate_ids,
    )
    dataset.source = (
        ", ".join(str(p) for p in path) if isinstance(path, list | tuple) else str(path)
    )
    return dataset


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
    encoding: str | None = None,
    sep: str | None = None,
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
        encoding: the encoding of a CSV that is not UTF-8 (detected otherwise).
        sep: the CSV separator; sniffed when None.
    """
    frame = read_table(path, encoding=encoding, sep=sep)
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
