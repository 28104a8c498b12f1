"""The predict / embed task: a bundle applied to new customers, streamed in chunks.

CSV input is read ``chunk_size`` rows at a time (pandas' C parser), Parquet input one batch of
row groups at a time, so an input larger than memory works. Every chunk goes through the
bundle's fitted pipeline, the encoder and the assignment head, and is appended to a temporary
file beside the output, which replaces the output only once every chunk has been written: a
failed run never leaves a partial output nor clobbers an earlier one.

A transaction log cannot be cut into row chunks (one customer's invoices span the file, and
recency is measured to the log's last day), so it is read whole and aggregated per customer
first; the customer table is then processed in chunks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepseg.bundle import Segmenter, assignments_frame, load
from deepseg.data.table import csv_options, read_table, table_kind
from deepseg.drift import DriftAccumulator, drift_markdown
from deepseg.features.columns import require_columns
from deepseg.io import atomic_open, atomic_write_json, atomic_write_text, spreadsheet_safe
from deepseg.progress import Progress

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 100_000
FLOAT_FORMAT = "%.7g"  # float32 precision: shorter files, the same values


def _check_output(output: Path) -> None:
    if not output.name.lower().endswith(".csv"):
        raise ValueError(f"The output must be a .csv file. Got '{output}'.")
    if output.is_dir():
        raise ValueError(f"The output '{output}' is a directory; give a file name.")


class _Reader:
    """One input file in chunks: CSV (encoding detected, separator sniffed, as in training),
    Parquet (batches of row groups) or Excel (read whole: a sheet holds at most ~1M rows)."""

    def __init__(self, path: Path, encoding: str | None, sep: str | None, sheet: Any) -> None:
        self.path = path
        self.kind = table_kind(path)
        self.sheet = sheet
        self.csv = csv_options(path, encoding=encoding, sep=sep) if self.kind == "csv" else {}
        self._excel: pd.DataFrame | None = None

    def _sheet(self) -> pd.DataFrame:
        if self._excel is None:
            self._excel = read_table(self.path, sheet=self.sheet)
        return self._excel

    def header(self) -> list[str]:
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(self.path).schema_arrow.names)
        if self.kind == "excel":
            return [str(c) for c in self._sheet().columns]
        try:
            return [str(c) for c in pd.read_csv(self.path, nrows=0, **self.csv).columns]
        except pd.errors.EmptyDataError as exc:
            raise ValueError(f"The input '{self.path}' is empty: it has no header row.") from exc

    def chunks(
        self, chunk_size: int, columns: list[str] | None, dtype: dict[str, Any] | None = None
    ) -> Iterator[pd.DataFrame]:
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(self.path)
            for batch in parquet.iter_batches(batch_size=chunk_size, columns=columns):
                yield batch.to_pandas()
            return
        if self.kind == "excel":
            frame = self._sheet()
            frame = frame if columns is None else frame[columns]
            if dtype:
                frame = frame.astype({c: t for c, t in dtype.items() if c in frame.columns})
            for start in range(0, len(frame), chunk_size):
                yield frame.iloc[start : start + chunk_size]
            return
        yield from pd.read_csv(
            self.path, chunksize=chunk_size, usecols=columns, dtype=dtype, **self.csv
        )


class _RepeatedIds:
    """Ids seen across chunks, and the repeated ones."""

    def __init__(self) -> None:
        self.seen: set[Any] = set()
        self.n_repeated = 0
        self.examples: list[Any] = []

    def update(self, ids: np.ndarray) -> None:
        series = pd.Series(ids)
        repeated = series.duplicated() | series.isin(self.seen)
        if repeated.any():
            self.n_repeated += int(repeated.sum())
            new = [i for i in series[repeated].unique().tolist() if i not in self.examples]
            self.examples.extend(new[: 5 - len(self.examples)])
        self.seen.update(series.tolist())

    def check(self, source: str, column: str | None) -> None:
        if self.n_repeated:
            raise ValueError(
                f"{source}: id column '{column}' repeats ids in {self.n_repeated} row(s), e.g. "
                f"{self.examples}. Each customer needs one row (one segment per id)."
            )


def _total_rows(seg: Segmenter, path: Path) -> int | None:
    """The rows to expect, when cheap to know: Parquet metadata (CSV: unknown, not read twice;
    a transaction log: its customers are known only once it is read)."""
    if table_kind(path) != "parquet" or seg.input_kind == "transactions":
        return None
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def _table_columns(seg: Segmenter, header: list[str]) -> tuple[list[str], dict[str, Any]]:
    """The columns to read and their dtypes; missing columns raise, extra ones are warned."""
    needed = seg.input_columns
    require_columns(pd.DataFrame(columns=header), needed, f"Input for the {seg.method} bundle")
    id_col = seg.id_column
    extra = [c for c in header if c not in needed and c != id_col]
    if extra:
        logger.warning(
            "Ignoring %d extra column(s) not used in training: %s", len(extra), extra[:10]
        )
    roles = seg.pipeline.roles_
    # Categories and words as text in every chunk: type inference per chunk could read a code
    # column as int in one chunk and as float (with NaN) in the next
    dtype: dict[str, Any] = dict.fromkeys([*roles.categorical, *roles.text], "string")
    columns = [*needed, *([id_col] if id_col is not None and id_col in header else [])]
    return columns, dtype


def _inputs(
    seg: Segmenter, reader: _Reader, chunk_size: int
) -> Iterator[pd.DataFrame | np.ndarray]:
    """Raw input chunks: frames for tables (the customer table for transaction logs), float32
    matrices for matrix bundles."""
    kind = seg.input_kind
    path = reader.path
    header = reader.header()
    if kind == "transactions" and not all(c in header for c in seg.input_columns):
        from deepseg.data.transactions import read_transaction_log

        opts = seg.manifest["input"].get("transactions") or {}
        logger.info("Reading the whole transaction log: one customer's rows span the file")
        log = read_transaction_log(
            path,
            id_column=opts.get("id_column", "CustomerID"),
            invoice_column=opts.get("invoice_column", "InvoiceNo"),
            product_column=opts.get("product_column", "StockCode"),
        )
        table = seg.customer_table(log)
        for start in range(0, len(table), chunk_size):
            yield table.iloc[start : start + chunk_size]
        return
    if kind == "matrix":
        n_in = int(seg.manifest["input"]["n_features"])
        names = list(getattr(seg.pipeline, "matrix_feature_names_", None) or [])
        columns = names if names and all(n in header for n in names) else None
        if columns is None and len(header) != n_in:
            raise ValueError(
                f"Input for the {seg.method} bundle: expected {n_in} numeric columns; "
                f"'{path}' has {len(header)}."
            )
        for chunk in reader.chunks(chunk_size, columns, dtype=None):
            yield chunk.to_numpy(dtype=np.float32)
        return
    columns, dtype = _table_columns(seg, header)
    yield from reader.chunks(chunk_size, columns, dtype)


def run_predict(
    bundle: str | Path,
    input: str | Path,
    output: str | Path,
    *,
    embedding: bool = False,
    drift: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    embed_only: bool = False,
    threads: int | None = 1,
    encoding: str | None = None,
    sep: str | None = None,
    sheet: str | int | None = None,
) -> dict[str, Any]:
    """Assign (or embed) every row of ``input`` with a bundle and write ``output``.

    Refused before the output is replaced: missing columns, text or infinite values in numeric
    columns (the message names the file, the column and the row) and repeated ids (their
    count and the first few).

    Args:
        bundle: the bundle directory.
        input: CSV, Parquet or Excel (.xlsx) file of new customers (the training columns; a
            transaction log for bundles trained on transactions; a numeric matrix for matrix
            bundles). CSV encodings and separators are detected as in training.
        output: the CSV to write: ``id, segment, confidence`` (``confidence`` is the largest
            soft assignment), plus ``z_0, ...`` with ``embedding`` or ``embed_only``
            (``embed_only`` writes ``id, z_0, ...`` only).
        embedding: add the embedding columns.
        drift: compare the input with the training fingerprint and write the drift report
            beside the output (``new.csv`` -> ``new.drift.json`` and ``new.drift.md``; see
            :mod:`deepseg.drift`).
        chunk_size: rows per chunk.
        embed_only: write embeddings only (``deepseg-embed``).
        threads: torch threads for the network (None: torch's default). One is the default: a
            segmentation MLP costs little next to CSV parsing, and on a small shared machine
            two threads made inference several times slower than one.
        encoding: the encoding of a CSV input that is not UTF-8 (default: the training data's
            ``data.encoding``; then cp1252, latin-1).
        sep: the CSV separator (default: the training data's ``data.sep``; sniffed when None).
        sheet: the Excel sheet (default: the training data's ``data.sheet``, else the first).

    Returns:
        A summary: rows, seconds, rows per second, output path, and the drift advice.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"The 'chunk_size' must be an int >= 1. Got {chunk_size!r}.")
    if threads is not None and (isinstance(threads, bool) or not int(threads) >= 1):
        raise ValueError(f"The 'threads' must be an int >= 1. Got {threads!r}.")
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _run(
            bundle, input, output, embedding, drift, chunk_size, embed_only,
            {"encoding": encoding, "sep": sep, "sheet": sheet},
        )  # fmt: skip
    finally:
        torch.set_num_threads(before)


def _run(
    bundle: str | Path,
    input: str | Path,
    output: str | Path,
    embedding: bool,
    drift: bool,
    chunk_size: int,
    embed_only: bool,
    read_options: dict[str, Any],
) -> dict[str, Any]:
    start = time.perf_counter()
    input_path, output_path = Path(input), Path(output)
    _check_output(output_path)
    if not input_path.is_file():
        raise FileNotFoundError(f"Input file not found: '{input_path}' does not exist.")
    seg = load(bundle)
    if not embed_only and not seg.can_predict:
        raise ValueError(
            f"The {seg.method} bundle cannot predict segments: "
            f"{seg.manifest['model']['head'].get('reason', '')} (deepseg-embed works)."
        )
    trained_on = seg.manifest["input"].get("data_config") or {}
    options = {k: v if v is not None else trained_on.get(k) for k, v in read_options.items()}
    reader = _Reader(input_path, options["encoding"], options["sep"], options["sheet"])
    accumulator = None
    if drift:
        roles = seg.pipeline.roles_
        numeric = list(seg.fingerprint["columns"]) if seg.input_kind == "matrix" else roles.numeric
        accumulator = DriftAccumulator(seg.fingerprint, numeric, roles.categorical)
    n_rows = 0
    ids_seen = _RepeatedIds()
    bar = Progress(_total_rows(seg, input_path), output_path.name, "rows", logger=logger)
    # the output replaces an earlier one only once every chunk is written; a killed run's
    # temporary file is removed by the next run (deepseg.io)
    with bar, atomic_open(output_path, "w", newline="") as fh:
        for chunk in _inputs(seg, reader, chunk_size):
            if isinstance(chunk, pd.DataFrame):  # errors name the row in the whole input
                chunk.index = pd.RangeIndex(n_rows, n_rows + len(chunk))
            try:
                ids, X = seg.prepare(chunk, warn_extra=False)
            except ValueError as exc:
                where = "" if isinstance(chunk, pd.DataFrame) else f" (rows from {n_rows})"
                raise ValueError(f"'{input_path}'{where}: {exc}") from exc
            if not (isinstance(chunk, pd.DataFrame) and seg.id_column in chunk.columns):
                ids = ids + n_rows  # row numbers run on across chunks
            else:
                ids_seen.update(ids)
            if embed_only:
                z = seg.embed_features(X)
                frame = pd.DataFrame({"id": ids})
                frame = pd.concat(
                    [frame, pd.DataFrame(z, columns=[f"z_{j}" for j in range(z.shape[1])])],
                    axis=1,
                )
                labels = None
            else:
                z, proba = seg.assign_features(X)
                labels = proba.argmax(axis=1)
                frame = assignments_frame(ids, labels, proba, z if embedding else None)
            if accumulator is not None:
                accumulator.update(chunk, labels)
            spreadsheet_safe(frame).to_csv(
                fh, header=n_rows == 0, index=False, float_format=FLOAT_FORMAT
            )
            n_rows += len(frame)
            bar.update(len(frame))
        if n_rows == 0:
            raise ValueError(f"The input '{input_path}' has no rows.")
        ids_seen.check(f"'{input_path}'", seg.id_column)
        summary: dict[str, Any] = {"rows": n_rows, "output": str(output_path)}
        if accumulator is not None:
            report = accumulator.report()
            base = output_path.with_name(output_path.name[: -len(".csv")])
            atomic_write_json(f"{base}.drift.json", report)
            atomic_write_text(f"{base}.drift.md", drift_markdown(report))
            summary["drift_report"] = f"{base}.drift.json"
            summary["resegment_advised"] = report["resegment_advised"]
            summary["drifted_columns"] = report["drifted_columns"]
    seconds = time.perf_counter() - start
    summary.update(seconds=round(seconds, 3), rows_per_second=round(n_rows / seconds, 1))
    return summary
