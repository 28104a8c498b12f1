"""deepseg.tasks.aggregate: the leaderboard over many results.csv files."""

from __future__ import annotations

import pandas as pd
import pytest

from deepseg.tasks.aggregate import load_results, report_directory


def _row(dataset, method, seed, acc, silhouette, status="ok", error="", **extra):
    return {
        "dataset": dataset,
        "method": method,
        "seed": seed,
        "acc": acc,
        "silhouette": silhouette,
        "seconds": 1.0,
        "status": status,
        "error": error,
        **extra,
    }


def _write(path, rows):
    path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path / "results.csv", index=False)


def test_mean_std_over_seeds_best_per_dataset_and_failures(tmp_path):
    # a benchmark run (several rows) and train jobs (one row each), nested at different depths
    _write(
        tmp_path / "bench", [_row("d1", "kmeans", 0, 0.6, 0.2), _row("d1", "kmeans", 1, 0.8, 0.4)]
    )
    _write(tmp_path / "sweep" / "0", [_row("d1", "dec", 0, 0.9, 0.1, job_hash="a")])
    _write(tmp_path / "sweep" / "1", [_row("d1", "dec", 1, 0.7, 0.3, job_hash="b")])
    _write(tmp_path / "sweep" / "2", [_row("d2", "dec", 0, float("nan"), 0.5, job_hash="c")])
    _write(tmp_path / "sweep" / "3", [_row("d2", "gmm", 0, float("nan"), 0.6, job_hash="d")])
    _write(
        tmp_path / "sweep" / "4",
        [
            _row(
                "d2", "gmm", 1, float("nan"), float("nan"), "failed", "ValueError: k", job_hash="e"
            )
        ],
    )
    agg = report_directory(tmp_path)
    board = agg.leaderboard.set_index(["dataset", "method"])
    assert board.loc[("d1", "kmeans"), "acc"] == pytest.approx(0.7)
    assert board.loc[("d1", "kmeans"), "acc_std"] == pytest.approx(pd.Series([0.6, 0.8]).std())
    assert board.loc[("d1", "dec"), "n_seeds"] == 2
    assert board.loc[("d1", "dec"), "acc"] == pytest.approx(0.8)
    # best by acc on the labelled dataset, by silhouette on the one without labels
    assert board.loc[("d1", "dec"), "best"] and not board.loc[("d1", "kmeans"), "best"]
    assert board.loc[("d2", "gmm"), "best"] and not board.loc[("d2", "dec"), "best"]
    assert list(agg.failed["error"]) == ["ValueError: k"]
    text = agg.markdown()
    assert "0.800 ± 0.141" in text and "**dec**" in text and "ValueError: k" in text
    out = tmp_path / "aggregate"
    for name in ("leaderboard.md", "leaderboard.csv", "failed.csv", "acc.png", "silhouette.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "acc.png").read_bytes().startswith(b"\x89PNG")


def test_resumed_rows_count_once_and_fixed_failures_are_not_listed(tmp_path):
    _write(
        tmp_path / "s1" / "0", [_row("d", "kmeans", 0, 0.5, 0.1, job_hash="h", resumed_from="")]
    )
    _write(
        tmp_path / "s1" / "1",
        [_row("d", "kmeans", 1, float("nan"), float("nan"), "failed", "boom", job_hash="g")],
    )
    _write(
        tmp_path / "s2" / "0",
        [_row("d", "kmeans", 0, 0.5, 0.1, job_hash="h", resumed_from=str(tmp_path / "s1" / "0"))],
    )
    _write(
        tmp_path / "s2" / "1", [_row("d", "kmeans", 1, 0.7, 0.2, job_hash="g", resumed_from="")]
    )
    results = load_results(tmp_path)
    assert len(results) == 2
    assert results.loc[results["job_hash"] == "h", "source"].item() == "s1/0"  # the original
    agg = report_directory(tmp_path)
    assert agg.failed.empty
    assert agg.leaderboard.loc[0, "n_runs"] == 2 and agg.leaderboard.loc[0, "acc"] == 0.6


def test_bad_directories_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        report_directory(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        report_directory(tmp_path / "file.txt")
    with pytest.raises(ValueError, match=r"No results\.csv"):
        report_directory(tmp_path)
