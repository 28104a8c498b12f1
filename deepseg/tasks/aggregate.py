"""Aggregate the results of many runs: every ``results.csv`` under a directory -> a leaderboard.

Benchmark runs (many rows) and train runs (one row each, e.g. the jobs of a multirun) alike. The
leaderboard has the mean and the standard deviation over seeds of the headline metrics for each
(dataset, method), the best method of each dataset marked (by ACC when the dataset has labels,
else by silhouette: labels only score results here, they choose nothing). Rows of resumed jobs
(the same ``job_hash``) count once; a failed job that succeeded on a later run is not listed as
failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from deepseg.insight.plots import plot_metric_by_method
from deepseg.tasks.common import atomic_write_bytes, atomic_write_csv, atomic_write_text
from deepseg.tasks.run import LEADERBOARD_METRICS, format_leaderboard

logger = logging.getLogger(__name__)

FAILED_COLUMNS = ["dataset", "method", "seed", "error", "source"]


@dataclass
class Aggregate:
    """The aggregated results of a directory.

    Attributes:
        results: every row found (deduplicated), with ``source``: the results.csv it came from.
        leaderboard: one row per (dataset, method): ``n_seeds``, ``n_runs``, the mean and
            ``<metric>_std`` of each headline metric, and ``best`` (True for the best method of
            its dataset).
        failed: the failed jobs: dataset, method, seed, error, source.
        metrics: the headline metrics found.
    """

    results: pd.DataFrame
    leaderboard: pd.DataFrame
    failed: pd.DataFrame
    metrics: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """The leaderboard (mean ± std, best per dataset in bold) and the failed jobs."""
        board = self.leaderboard.copy()
        if not board.empty:
            board["method"] = [
                f"**{m}**" if best else str(m)
                for m, best in zip(board["method"], board["best"], strict=True)
            ]
        board = board.drop(columns=["best", "n_runs"], errors="ignore")
        text = format_leaderboard(board) if not board.empty else "(no finished runs)"
        if not self.failed.empty:
            lines = [f"- {r.dataset} / {r.method} (seed {r.seed}): {r.error}  [{r.source}]"
                     for r in self.failed.itertuples()]  # fmt: skip
            text += f"\n\nFailed jobs ({len(self.failed)}):\n\n" + "\n".join(lines)
        return text


def find_results(directory: str | Path) -> list[Path]:
    """Every ``results.csv`` under ``directory`` (recursive), in path order.

    Raises:
        FileNotFoundError: if ``directory`` does not exist.
        ValueError: if it is not a directory, or holds no results.csv.
    """
    root = Path(directory)
    if not root.exists():
        raise FileNotFoundError(f"Results directory '{root}' does not exist.")
    if not root.is_dir():
        raise ValueError(f"'{root}' is not a directory: give a run or multirun directory.")
    found = sorted(p for p in root.rglob("results.csv") if p.is_file())
    if not found:
        raise ValueError(
            f"No results.csv under '{root}': give the directory of a deepseg-benchmark or "
            "deepseg-train run or multirun."
        )
    return found


def load_results(directory: str | Path) -> pd.DataFrame:
    """Every row of every ``results.csv`` under ``directory``, with its ``source``."""
    root = Path(directory)
    frames = []
    for path in find_results(root):
        try:
            frame = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
            logger.warning("Skipping unreadable %s: %s", path, exc)
            continue
        missing = {"dataset", "method", "seed", "status"} - set(frame.columns)
        if missing:
            logger.warning("Skipping %s: no column(s) %s", path, sorted(missing))
            continue
        frame["source"] = str(path.parent.relative_to(root))
        frames.append(frame)
    if not frames:
        raise ValueError(f"No readable results.csv under '{root}'.")
    results = pd.concat(frames, ignore_index=True)
    results["error"] = results.get("error", pd.Series("", index=results.index)).fillna("")
    return _deduplicate(results)


def _deduplicate(results: pd.DataFrame) -> pd.DataFrame:
    """One row per job hash (resumed jobs repeat their row); failures later fixed are dropped."""
    if "job_hash" not in results:
        return results
    hashed = results["job_hash"].notna()
    ok_hashes = set(results.loc[hashed & (results["status"] == "ok"), "job_hash"])
    fixed = hashed & (results["status"] != "ok") & results["job_hash"].isin(ok_hashes)
    results = results[~fixed]
    if "resumed_from" in results:  # the original run's row first
        order = results["resumed_from"].fillna("").astype(str).ne("")
        results = results.assign(_resumed=order).sort_values("_resumed", kind="stable")
        results = results.drop(columns="_resumed")
    dup = results["job_hash"].notna() & results.duplicated(subset=["job_hash", "status"])
    return results[~dup].sort_index()


def aggregate_results(results: pd.DataFrame) -> Aggregate:
    """The leaderboard and the failed jobs of a results table (see :class:`Aggregate`)."""
    ok = results[results["status"] == "ok"]
    failed = results[results["status"] != "ok"]
    failed = failed.reindex(columns=FAILED_COLUMNS).reset_index(drop=True)
    metrics = [m for m in LEADERBOARD_METRICS if m in ok and ok[m].notna().any()]
    columns = [*metrics, *(c for c in ("n_clusters_found", "seconds") if c in ok)]
    if ok.empty:
        board = pd.DataFrame(columns=["dataset", "method", "n_seeds", "n_runs", "best"])
        return Aggregate(results, board, failed, metrics)
    grouped = ok.groupby(["dataset", "method"], sort=False)
    board = grouped[columns].mean().join(grouped[columns].std().add_suffix("_std"))
    board.insert(0, "n_runs", grouped.size())
    board.insert(0, "n_seeds", grouped["seed"].nunique())
    board = board.reset_index()
    several = board[board["n_runs"] > board["n_seeds"]]
    for r in several.itertuples():
        logger.warning(
            "%s / %s: %d runs over %d seeds (several configs of one method are averaged)",
            r.dataset, r.method, r.n_runs, r.n_seeds,
        )  # fmt: skip
    board["best"] = False
    parts = []
    for _, part in board.groupby("dataset", sort=False):
        key = next((m for m in ("acc", "silhouette") if m in part and part[m].notna().any()), None)
        if key is not None:
            part = part.sort_values(key, ascending=False, na_position="last")
            part.loc[part.index[0], "best"] = True
        parts.append(part)
    board = pd.concat(parts).reset_index(drop=True)
    return Aggregate(results, board, failed, metrics)


def write_aggregate(agg: Aggregate, out: str | Path) -> list[Path]:
    """Write leaderboard.md, leaderboard.csv, failed.csv and one PNG per headline metric."""
    out = Path(out)
    written = [out / "leaderboard.md", out / "leaderboard.csv", out / "failed.csv"]
    atomic_write_text(written[0], agg.markdown() + "\n")
    atomic_write_csv(written[1], agg.leaderboard)
    atomic_write_csv(written[2], agg.failed)
    if not agg.leaderboard.empty:
        for metric in agg.metrics:
            path = out / f"{metric}.png"
            atomic_write_bytes(path, plot_metric_by_method(agg.leaderboard, metric))
            written.append(path)
    return written


def report_directory(directory: str | Path, out: str | Path | None = None) -> Aggregate:
    """Aggregate every results.csv under ``directory`` into ``out`` (default
    ``<directory>/aggregate``)."""
    results = load_results(directory)
    agg = aggregate_results(results)
    target = Path(out) if out is not None else Path(directory) / "aggregate"
    write_aggregate(agg, target)
    logger.info(
        "%d rows (%d failed) from %d runs -> %s",
        len(results), len(agg.failed), results["source"].nunique(), target,
    )  # fmt: skip
    return agg


__all__ = [
    "Aggregate",
    "aggregate_results",
    "find_results",
    "load_results",
    "report_directory",
    "write_aggregate",
]
