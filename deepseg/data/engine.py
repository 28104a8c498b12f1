"""Query engines for the whole-data steps: DuckDB embedded (the default) and Spark.

A transaction log can be far larger than memory. The aggregation to one row per customer is a
group-by, which a columnar engine runs out of core and in parallel. The query is written once, as
SQL that both engines accept (``deepseg/data/sql/*.sql``); an engine here only registers the
input as the view ``deepseg_log`` (canonical column names, see :data:`LOG_FIELDS`), the one-row
view ``deepseg_params``, runs the query and hands back a pandas DataFrame.

* ``duckdb`` (installed with deepseg): in-process, no server. ``memory_limit`` caps its buffer
  memory (e.g. ``"4GB"``; DuckDB's default is 80% of RAM), ``threads`` its worker threads, and
  ``temp_directory`` is where it spills intermediate results beyond that limit.
* ``spark`` (``pip install deepseg[spark]``, Java 17+): the active Spark session, or a new one
  with ``master`` (default ``local[*]``, ``local[<threads>]`` when ``threads`` is set),
  ``spark.driver.memory`` from ``memory_limit`` and ``spark.local.dir`` from ``temp_directory``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

#: Columns of the ``deepseg_log`` view every query reads, in order.
LOG_FIELDS: tuple[str, ...] = (
    "customer_raw",
    "invoice",
    "product",
    "description",
    "quantity_raw",
    "price_raw",
    "date_raw",
    "country",
)
#: Of :data:`LOG_FIELDS`, those read as text whatever their type in the files.
TEXT_FIELDS: frozenset[str] = frozenset(
    {"customer_raw", "invoice", "product", "description", "country"}
)
#: Column of ``deepseg_log`` holding each row's source file (NULL for in-memory frames).
SOURCE_FILE = "deepseg_source_file"
ENGINES: tuple[str, ...] = ("duckdb", "spark")
_PARQUET_SUFFIXES = (".parquet", ".pq")

# Spark functions DuckDB knows under another name: the shared SQL uses Spark's.
_DUCKDB_MACROS = (
    "CREATE OR REPLACE TEMP MACRO unix_micros(ts) AS epoch_us(ts)",
    "CREATE OR REPLACE TEMP MACRO array_join(items, sep) AS array_to_string(items, sep)",
)


_BATCH_ROWS = 65_536


def _arrow_strings(arrow_type: Any) -> Any:
    """pandas' string dtype, Arrow-backed, for Arrow string columns (``types_mapper``)."""
    import pyarrow as pa

    if (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or (pa.types.is_string_view(arrow_type))
    ):
        return pd.StringDtype("pyarrow", na_value=float("nan"))
    return None


def read_sql(name: str) -> str:
    """The text of the packaged query ``deepseg/data/sql/<name>.sql``."""
    return (resources.files("deepseg.data") / "sql" / f"{name}.sql").read_text(encoding="utf-8")


@dataclass(frozen=True)
class EngineConfig:
    """Which engine runs the whole-data queries, and its limits.

    Attributes:
        name: ``"duckdb"`` or ``"spark"``.
        memory_limit: DuckDB's memory limit (``"4GB"``, ``"500MB"``); for a new local Spark
            session, ``spark.driver.memory``. None: the engine's default.
        threads: worker threads (DuckDB) or local cores (new Spark session). None: all cores.
        temp_directory: where DuckDB spills beyond ``memory_limit`` (``spark.local.dir`` for a
            new Spark session). None: DuckDB's default (``.tmp`` in the working directory).
        master: Spark master URL for a new session (ignored by DuckDB).
    """

    name: str = "duckdb"
    memory_limit: str | None = None
    threads: int | None = None
    temp_directory: str | None = None
    master: str | None = None

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise ValueError(
                f"The 'engine.name' parameter must be one of {list(ENGINES)}. "
                f"Got {self.name!r} instead."
            )
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ValueError(
                "The 'engine.threads' parameter must be an int in the range [1, inf) or null. "
                f"Got {self.threads!r} instead."
            )

    @classmethod
    def parse(cls, value: str | Mapping[str, Any] | EngineConfig | None) -> EngineConfig:
        """An EngineConfig from a name, a mapping of its fields (a Hydra node) or None."""
        if value is None:
            return cls()
        if isinstance(value, EngineConfig):
            return value
        if isinstance(value, str):
            return cls(name=value)
        if isinstance(value, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(map(str, value)) - known)
            if unknown:
                raise ValueError(
                    f"Unknown engine option(s) {unknown}; valid options: {sorted(known)}."
                )
            return cls(**{str(k): v for k, v in value.items()})
        raise TypeError(
            f"The 'engine' parameter must be a name, a mapping or an EngineConfig. "
            f"Got {type(value).__name__} instead."
        )


def quote_identifier(name: str, quote: str = '"') -> str:
    """``name`` as a quoted SQL identifier (DuckDB: double quotes, Spark: backticks)."""
    return quote + str(name).replace(quote, quote * 2) + quote


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _one_line(exc: BaseException) -> str:
    """The engine's message on one line, without its tuning tips and echoed SQL."""
    text = " ".join(str(exc).split())
    for cut in (" Possible solutions:", " LINE 1:"):
        text = text.split(cut)[0]
    return text


class InputNotFoundError(FileNotFoundError, ValueError):
    """No input file matches a path: a FileNotFoundError that is also a bad-input ValueError."""


@dataclass
class Source:
    """The input of a query: files (CSV, gzip CSV, Parquet) or an in-memory DataFrame."""

    files: list[Path] | None = None
    frame: pd.DataFrame | None = None

    @property
    def label(self) -> str:
        if self.files is None:
            return "<DataFrame>"
        if len(self.files) == 1:
            return str(self.files[0])
        return f"{self.files[0].parent} ({len(self.files)} files)"


class DuckDBEngine:
    """DuckDB in-process, with the memory limit, threads and spill directory of ``config``."""

    quote = '"'

    def __init__(self, config: EngineConfig) -> None:
        import duckdb

        self.config = config
        self._duckdb = duckdb
        settings: dict[str, Any] = {"preserve_insertion_order": False}
        if config.memory_limit is not None:
            settings["memory_limit"] = str(config.memory_limit)
        if config.threads is not None:
            settings["threads"] = int(config.threads)
        if config.temp_directory is not None:
            Path(config.temp_directory).mkdir(parents=True, exist_ok=True)
            settings["temp_directory"] = str(config.temp_directory)
        try:
            self.con = duckdb.connect(config=settings)
        except duckdb.Error as exc:
            raise ValueError(
                f"DuckDB rejected the engine settings {settings}: {_one_line(exc)}"
            ) from exc
        # progress is tracked for the log (see _progress), never drawn on the terminal
        self.con.execute("SET enable_progress_bar = true")
        self.con.execute("SET enable_progress_bar_print = false")
        for macro in _DUCKDB_MACROS:
            self.con.execute(macro)

    def close(self) -> None:
        self.con.close()

    def _relations(self, source: Source) -> list[str]:
        """SQL table expressions for the source, one per file format."""
        if source.frame is not None:
            self.con.register("deepseg_frame", source.frame)
            return ["deepseg_frame"]
        assert source.files is not None
        parquet = [f for f in source.files if f.name.lower().endswith(_PARQUET_SUFFIXES)]
        csv = [f for f in source.files if f not in parquet]
        out = []
        if csv:
            names = ", ".join(_quote_literal(str(f)) for f in csv)
            out.append(
                f"read_csv([{names}], header = true, all_varchar = true, union_by_name = true, "
                f"filename = '{SOURCE_FILE}')"
            )
        if parquet:
            names = ", ".join(_quote_literal(str(f)) for f in parquet)
            out.append(
                f"read_parquet([{names}], union_by_name = true, filename = '{SOURCE_FILE}')"
            )
        return out

    def _user_error(self, exc: Exception, what: str) -> ValueError:
        """A one-line ValueError for a DuckDB error the user can act on."""
        if isinstance(exc, self._duckdb.OutOfMemoryException):
            return ValueError(
                f"engine.memory_limit={self.config.memory_limit!r} is below what DuckDB needs "
                f"for {what}: raise it (or leave it unset), or set engine.temp_directory to a "
                f"disk with room to spill. DuckDB said: {_one_line(exc)}"
            )
        return ValueError(f"Cannot run {what}: {_one_line(exc)}")

    def _relation_columns(self, relation: str, source: Source) -> list[str]:
        try:
            described = self.con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        except self._duckdb.Error as exc:
            raise self._user_error(exc, f"reading the transaction log {source.label}") from exc
        return [str(row[0]) for row in described if row[0] != SOURCE_FILE]

    def columns(self, source: Source) -> list[str]:
        """The column names of the source (the union over its files)."""
        names: list[str] = []
        for relation in self._relations(source):
            names += [c for c in self._relation_columns(relation, source) if c not in names]
        return names

    def stage(self, source: Source, mapping: Mapping[str, str | None]) -> None:
        """Register ``deepseg_log``: ``mapping`` gives the source column of each log field."""
        selects = []
        for relation in self._relations(source):
            available = self._relation_columns(relation, source)
            parts = []
            for field in LOG_FIELDS:
                column = mapping.get(field)
                expr = "NULL" if column not in available else quote_identifier(str(column))
                if field in TEXT_FIELDS:
                    expr = f"CAST({expr} AS VARCHAR)"
                parts.append(f"{expr} AS {field}")
            file_expr = SOURCE_FILE if source.files is not None else "CAST(NULL AS VARCHAR)"
            parts.append(f"{file_expr} AS {SOURCE_FILE}")
            selects.append(f"SELECT {', '.join(parts)} FROM {relation}")
        self.con.execute(
            "CREATE OR REPLACE TEMP VIEW deepseg_log AS " + " UNION ALL ".join(selects)
        )

    def set_params(self, params: Mapping[str, Any], types: Mapping[str, str]) -> None:
        columns = ", ".join(f"CAST(? AS {types[k]}) AS {k}" for k in params)
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE deepseg_params AS SELECT {columns}",
            list(params.values()),
        )

    def query(self, sql: str, what: str) -> pd.DataFrame:
        """Run ``sql`` and return its result as pandas; ``what`` names the step in logs."""
        try:
            with _progress(self.con, what):
                # streamed as Arrow batches and kept as Arrow-backed strings: the result never
                # exists twice, and its text (~1 GB for 500,000 customers) is not split into
                # one Python object per value
                result = self.con.sql(sql).to_arrow_reader(_BATCH_ROWS).read_all()
            return result.to_pandas(types_mapper=_arrow_strings, self_destruct=True)
        except (self._duckdb.OutOfMemoryException, self._duckdb.IOException) as exc:
            raise self._user_error(exc, what) from exc
        except self._duckdb.InvalidInputException as exc:  # e.g. a malformed CSV line
            raise self._user_error(exc, what) from exc

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def first_bad_row(self, file: Path, column: str, cast: str) -> int | None:
        """The 1-based data row of ``file`` whose ``column`` first fails ``TRY_CAST(.. AS cast)``.

        Run only to word an error: one file, read in order on one thread.
        """
        if file.name.lower().endswith(_PARQUET_SUFFIXES):
            relation = f"read_parquet([{_quote_literal(str(file))}], file_row_number = true)"
            number = "file_row_number + 1"
        else:
            relation = (
                f"read_csv([{_quote_literal(str(file))}], header = true, all_varchar = true)"
            )
            number = "row_number() OVER ()"
        col = quote_identifier(column)
        con = self._duckdb.connect(config={"threads": 1, "preserve_insertion_order": True})
        try:
            rows = con.execute(
                f"SELECT n FROM (SELECT {number} AS n, {col} AS v FROM {relation}) numbered "
                f"WHERE v IS NOT NULL AND TRY_CAST(v AS {cast}) IS NULL ORDER BY n LIMIT 1"
            ).fetchall()
        except self._duckdb.Error:
            return None
        finally:
            con.close()
        return int(rows[0][0]) if rows else None


class SparkEngine:
    """Spark SQL on the active session, or on a new one built from ``config``."""

    quote = "`"

    def __init__(self, config: EngineConfig, spark: Any = None) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise ImportError(
                "engine=spark needs pyspark: pip install 'deepseg[spark]' (and Java 17+)."
            ) from exc
        self.config = config
        active = spark if spark is not None else SparkSession.getActiveSession()
        if active is not None:
            self.spark = active
        else:
            threads = config.threads
            master = config.master or (f"local[{threads}]" if threads else "local[*]")
            builder = SparkSession.builder.master(master).appName("deepseg")
            if config.memory_limit is not None:
                builder = builder.config("spark.driver.memory", str(config.memory_limit))
            if config.temp_directory is not None:
                builder = builder.config("spark.local.dir", str(config.temp_directory))
            self.spark = builder.getOrCreate()

    def close(self) -> None:
        """Leave the session running: it is the user's (or shared by later calls)."""

    def _frames(self, source: Source) -> list[Any]:
        if source.frame is not None:
            # text for every column (as CSV is read), None for missing; dates as ISO strings
            from pyspark.sql.types import StringType, StructField, StructType

            frame = source.frame.copy()
            for name in frame.columns:
                if pd.api.types.is_datetime64_any_dtype(frame[name].dtype):
                    frame[name] = frame[name].dt.strftime("%Y-%m-%d %H:%M:%S.%f")
            schema = StructType([StructField(str(c), StringType(), True) for c in frame.columns])
            rows = [
                tuple(None if pd.isna(v) else str(v) for v in row)
                for row in frame.itertuples(index=False, name=None)
            ]
            return [self.spark.createDataFrame(rows, schema)]
        assert source.files is not None
        parquet = [str(f) for f in source.files if f.name.lower().endswith(_PARQUET_SUFFIXES)]
        csv = [str(f) for f in source.files if str(f) not in parquet]
        frames = []
        if csv:
            frames.append(
                self.spark.read.option("header", True)
                .option("escape", '"')
                .option("multiLine", True)
                .csv(csv)
            )
        if parquet:
            frames.append(self.spark.read.parquet(*parquet))
        return frames

    def columns(self, source: Source) -> list[str]:
        names: list[str] = []
        for frame in self._frames(source):
            names += [c for c in frame.columns if c not in names]
        return names

    def stage(self, source: Source, mapping: Mapping[str, str | None]) -> None:
        from pyspark.sql import functions as F

        staged = None
        for frame in self._frames(source):
            parts = []
            for field in LOG_FIELDS:
                column = mapping.get(field)
                value = (
                    F.lit(None)
                    if column is None or column not in frame.columns
                    else F.col(quote_identifier(column, "`"))
                )
                parts.append(value.cast("string").alias(field))
            parts.append(F.input_file_name().alias(SOURCE_FILE))
            selected = frame.select(*parts)
            staged = selected if staged is None else staged.unionByName(selected)
        assert staged is not None
        staged.createOrReplaceTempView("deepseg_log")

    def set_params(self, params: Mapping[str, Any], types: Mapping[str, str]) -> None:
        from pyspark.sql.types import LongType, StringType, StructField, StructType

        spark_types = {"VARCHAR": StringType(), "BIGINT": LongType()}
        schema = StructType([StructField(k, spark_types[types[k]], True) for k in params])
        self.spark.createDataFrame([tuple(params.values())], schema).createOrReplaceTempView(
            "deepseg_params"
        )

    @contextmanager
    def _session_conf(self) -> Iterator[None]:
        # Backslashes pass through string literals as in DuckDB; the timestamps' arithmetic is
        # in UTC, so wall-clock times keep their hour and day.
        wanted = {
            "spark.sql.parser.escapedStringLiterals": "true",
            "spark.sql.session.timeZone": "UTC",
        }
        conf = self.spark.conf
        before: dict[str, str | None] = {k: conf.get(k, None) for k in wanted}
        for k, v in wanted.items():
            conf.set(k, v)
        try:
            yield
        finally:
            for key, old in before.items():
                if old is None:
                    conf.unset(key)
                else:
                    conf.set(key, old)

    def query_frame(self, sql: str) -> Any:
        """The Spark DataFrame of ``sql`` (lazy; the session settings apply when it runs)."""
        with self._session_conf():
            return self.spark.sql(sql)

    def query(self, sql: str, what: str) -> pd.DataFrame:
        start = time.perf_counter()
        with self._session_conf():
            out = self.spark.sql(sql).toPandas()
        logger.info("%s on Spark: %.1f s", what, time.perf_counter() - start)
        return out

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        with self._session_conf():
            return [tuple(row) for row in self.spark.sql(sql).collect()]


def make_engine(config: EngineConfig) -> DuckDBEngine | SparkEngine:
    """The engine named by ``config``."""
    return DuckDBEngine(config) if config.name == "duckdb" else SparkEngine(config)


@contextmanager
def _progress(con: Any, what: str, every: float = 10.0) -> Iterator[None]:
    """Log the progress of the query running on ``con`` every ``every`` seconds."""
    done = threading.Event()
    start = time.perf_counter()

    def report() -> None:
        while not done.wait(every):
            try:
                percent = float(con.query_progress())
            except Exception:  # the connection may be between statements
                continue
            if percent >= 0:
                logger.info(
                    "%s: %.0f%% done after %.0f s", what, percent, time.perf_counter() - start
                )

    thread = threading.Thread(target=report, name="deepseg-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def as_files(path: str | Path | Sequence[str | Path]) -> list[Path]:
    """The files meant by ``path`` (see :func:`deepseg.data.table.resolve_paths`).

    Raises:
        InputNotFoundError: naming the path, when a file, directory or glob matches nothing.
    """
    from deepseg.data.table import resolve_paths

    try:
        return resolve_paths(path)
    except FileNotFoundError as exc:
        raise InputNotFoundError(str(exc)) from exc
