"""The benchmark's report option and n_clusters=auto, built from the real configs."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from deepseg.cli.common import config_dir
from deepseg.insight.report import ReportContent, render_report
from deepseg.tasks.benchmark import run_benchmark
from deepseg.tasks.run import LEADERBOARD_METRICS, leaderboard, load_dataset
from tests.cli.scripts import run_in_process
from tests.conftest import PROJECT_ROOT, require_data

# The browser render_report.py drives (Debian's ``chromium``). CI installs it and sets
# DEEPSEG_REQUIRE_BROWSER=1, so there a missing browser fails these tests instead of skipping them.
CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
if CHROMIUM is None and os.environ.get("DEEPSEG_REQUIRE_BROWSER") == "1":
    raise RuntimeError("DEEPSEG_REQUIRE_BROWSER=1, but there is no chromium on PATH.")
NO_BROWSER = "needs chromium on PATH (Debian package: apt-get install chromium)"


def compose_benchmark(*overrides: str):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name="benchmark", overrides=list(overrides))


def _external(html: str) -> list[str]:
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html)
    refs += re.findall(r"""url\(\s*["']?([^"')]*)""", html)
    return [r for r in refs if not r.startswith(("data:", "#"))]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    # a Lightning CSV log in the run dir (as written with trainer.logger=true) gets plotted
    log = out / "lightning_logs" / "version_0" / "metrics.csv"
    log.parent.mkdir(parents=True)
    log.write_text("epoch,step,train/loss\n0,0,2.0\n1,1,1.5\n2,2,1.2\n")
    cfg = compose_benchmark(
        "data.n_samples=1200",
        "methods=[gmm,kmeans,agglomerative]",
        "seeds=[0]",
        "n_clusters=auto",
        "report=default",
        "report.map=pca",
    )
    results = run_benchmark(cfg, out)
    return cfg, out, results


def test_auto_k_is_recorded_in_every_row(small_run):
    _, out, results = small_run
    chosen = json.loads((out / "choose_k.json").read_text())["recommended"]
    assert chosen == 6
    assert (results["n_clusters"] == chosen).all()
    assert results["n_clusters_auto"].astype(bool).all()
    on_disk = pd.read_csv(out / "results.csv")
    assert on_disk["n_clusters_auto"].astype(bool).all()
    assert (out / "choose_k.csv").exists() and (out / "k_selection.png").stat().st_size > 0


def test_segments_csv_has_one_row_per_customer(small_run):
    # Acceptance 5
    cfg, out, _ = small_run
    dataset = load_dataset(cfg.data)
    segments = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    assert list(segments.columns) == ["customer_id", "segment", "segment_name", "confidence"]
    assert len(segments) == len(dataset)
    assert segments["customer_id"].tolist() == [str(i) for i in dataset.ids]
    # the default report is of the first method (gmm): confidence is its largest soft assignment
    assert segments["confidence"].between(0, 1).all() and segments["confidence"].lt(1).any()
    names = segments.groupby("segment")["segment_name"].nunique()
    assert (names == 1).all()
    assert segments.groupby("segment_name")["segment"].nunique().max() == 1  # unique names


def test_report_is_self_contained(small_run):
    _, out, _ = small_run
    html = (out / "report.html").read_text()
    assert _external(html) == []
    assert "<h2>Leaderboard</h2>" in html and "kmeans" in html and "agglomerative" in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 5  # map, silhouette, heatmap, k-selection, training curves
    for alt in ("2-D map", "Silhouette", "Profile heatmap", "k-selection", "Training curves"):
        assert f'alt="{alt}' in html
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "fidelity" in html
    profiles = pd.read_csv(out / "profiles.csv")
    assert len(profiles) == 6 and profiles["size"].sum() == 1200


def test_report_of_a_chosen_method_and_its_dendrogram(tmp_path):
    cfg = compose_benchmark(
        "data.n_samples=400",
        "methods=[kmeans,agglomerative]",
        "seeds=[0,1]",
        "report=default",
        "report.method=agglomerative",
        "report.seed=1",
        "report.map=pca",
    )
    run_benchmark(cfg, tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "method: <b>agglomerative</b>" in html and "seed: <b>1</b>" in html
    assert 'alt="Dendrogram"' in html
    segments = pd.read_csv(tmp_path / "segments.csv")
    assert (segments["confidence"] == 1.0).all()  # no soft assignment


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["report.method=gmm"], "report.method='gmm' is not among the methods"),
        (["report.seed=5"], "report.seed=5 is not among the seeds"),
        (["n_clusters=many"], "or 'auto'"),
    ],
)
def test_bad_report_options_write_nothing(tmp_path, overrides, match):
    cfg = compose_benchmark(
        "data.n_samples=100", "methods=[kmeans]", "seeds=[0]", "report=default", *overrides
    )
    with pytest.raises(ValueError, match=re.escape(match)):
        run_benchmark(cfg, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_online_retail_profiles_agree_with_rfm(tmp_path):
    # Acceptance 1: default settings (k from the data config), checked on the profile table
    path = require_data("online_retail")
    cfg = compose_benchmark("data=online_retail", f"data.path={path}", "methods=[kmeans]",
                            "seeds=[0]", "report=default", "report.map=pca")  # fmt: skip
    run_benchmark(cfg, tmp_path)
    profiles = pd.read_csv(tmp_path / "profiles.csv")
    assert len(profiles) >= 4
    assert profiles["name"].is_unique
    # RFM words go to material differences (not to ranks): every "high-spend" segment spends
    # more than the rest by a medium effect or more, the top spender is one of them, ...
    spenders = profiles[profiles["name"].str.contains("high-spend")]
    lapsed = profiles[profiles["name"].str.contains("lapsed")]
    assert len(spenders) >= 1 and len(lapsed) >= 1
    assert (spenders["monetary_effect"] >= 0.5).all()
    assert profiles["monetary_median"].idxmax() in spenders.index
    assert (lapsed["recency_effect"] >= 0.5).all()
    assert profiles["recency_median"].idxmax() in lapsed.index
    # ... and a segment without such a difference gets no RFM word
    quiet = profiles[profiles["monetary_effect"].abs() < 0.5]
    assert not quiet["name"].str.contains("spend").any()
    segments = pd.read_csv(tmp_path / "segments.csv", dtype={"CustomerID": str})
    dataset = load_dataset(cfg.data)
    assert segments["CustomerID"].tolist() == list(dataset.ids)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason=NO_BROWSER)
def test_report_renders_in_headless_chromium(small_run, tmp_path):
    # Acceptance 4: no failed or external requests; leaderboard and plots in the rendered page
    _, out, _ = small_run
    shot = tmp_path / "report.png"
    run = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "render_report.py"),
         str(out / "report.html"), "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert shot.stat().st_size > 10_000
    # the checker can fail: a page with an external image, and one whose script builds its
    # request URL (invisible to the static scan, caught in Chromium's network log)
    page = render_report(ReportContent(title="bad", leaderboard=pd.DataFrame({"a": [1]})))
    bad = tmp_path / "bad.html"
    bad.write_text(page.replace("</body>", '<img src="http://127.0.0.1:9/x.png"></body>'))
    run = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "render_report.py"), str(bad),
         "--screenshot", str(tmp_path / "bad.png")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 1
    assert "external reference" in run.stdout
    hidden = tmp_path / "hidden.html"
    script = '<script>fetch("ht" + "tp://127.0.0.1:9/z")</script></body>'
    hidden.write_text(page.replace("</body>", script))
    run = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "render_report.py"), str(hidden),
         "--screenshot", str(tmp_path / "hidden.png")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 1
    assert "external reference" not in run.stdout
    assert "the page made a network request: http://127.0.0.1:9/z" in run.stdout
    # ... and a page wider than the 1280 px window
    wide = pd.DataFrame({f"a_long_column_name_{i}": ["x" * 30] for i in range(30)})
    page = render_report(ReportContent(title="wide", leaderboard=wide))
    (tmp_path / "wide.html").write_text(
        page.replace("<table", '<table style="white-space:nowrap"')
    )
    run = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "render_report.py"),
         str(tmp_path / "wide.html"), "--screenshot", str(tmp_path / "wide.png")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 1
    assert "the page scrolls sideways" in run.stdout


def _default_benchmark_board() -> pd.DataFrame:
    """The leaderboard of the default benchmark: 11 methods x 2 seeds, every metric (with labels),
    so every mean has its s.d. column."""
    methods = ["kmeans", "minibatch_kmeans", "gmm", "agglomerative", "pca_kmeans", "dbscan",
               "hdbscan", "spectral", "ae_kmeans", "dec", "idec"]  # fmt: skip
    rows = [
        {"dataset": "telco_churn", "method": m, "seed": seed, "n_clusters_found": 4,
         "seconds": 35.4 + i, **{k: 1386.25 + i + seed for k in LEADERBOARD_METRICS}}
        for i, m in enumerate(methods)
        for seed in (0, 1)
    ]  # fmt: skip
    return leaderboard(pd.DataFrame(rows))


def test_report_leaderboard_is_one_cell_per_metric():
    from deepseg.insight.report import compact_leaderboard

    board = _default_benchmark_board()
    assert any(c.endswith("_std") for c in board.columns)
    shown = compact_leaderboard(board)
    assert "dataset" not in shown.columns  # one dataset: said in the page's header
    assert not any(c.endswith("_std") for c in shown.columns)
    assert shown.loc[shown["method"] == "kmeans", "acc"].item() == "1,387 ± 0.707"
    assert shown["seeds"].tolist() == [2] * 11
    two = pd.concat([board, board.assign(dataset="other")])
    assert "dataset" in compact_leaderboard(two).columns


@pytest.mark.skipif(CHROMIUM is None, reason=NO_BROWSER)
def test_default_benchmark_leaderboard_fits_1280_px(tmp_path):
    """Found on Telco: the 11-method, 2-seed leaderboard with a column per s.d. made the page
    1,431 px wide. Rendered in headless Chromium, it now fits."""
    import numpy as np

    from deepseg.insight.plots import plot_map

    X = np.random.default_rng(0).normal(size=(60, 3))
    png = plot_map(X, (X[:, 0] > 0).astype(int), method="pca")
    content = ReportContent(
        title="wide", leaderboard=_default_benchmark_board(), images=[("map", png)]
    )
    page = render_report(content)
    (tmp_path / "board.html").write_text(page)
    run = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "render_report.py"),
         str(tmp_path / "board.html"), "--screenshot", str(tmp_path / "board.png")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_choose_k_command_line(tmp_path):
    # the console script's entry point in this process (its exit codes and one-line errors are
    # the same as a subprocess's; tests/cli/test_idiom.py runs real processes)
    run_dir = tmp_path / "run"
    args = ["data.n_samples=1000", "k_selection.n_bootstrap=2"]
    run = run_in_process("deepseg-choose-k", *args, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Recommended k = 6" in run.stdout
    table = pd.read_csv(run_dir / "choose_k.csv")
    assert list(table["k"]) == list(range(2, 11))
    assert json.loads((run_dir / "recommendation.json").read_text())["recommended"] == 6
    assert (run_dir / "k_selection.png").stat().st_size > 0
    bad = run_in_process(
        "deepseg-choose-k", "k_selection.k_range=[2,3]", f"hydra.run.dir={tmp_path / 'bad'}",
        cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("deepseg-choose-k: error: The 'k_range' parameter")
    assert len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad" / "choose_k.csv").exists()


def test_same_seed_same_report(tmp_path):
    cfg = compose_benchmark(
        "data.n_samples=300", "methods=[gmm]", "seeds=[3]", "report=default", "report.map=pca"
    )
    run_benchmark(cfg, tmp_path / "a")
    run_benchmark(cfg, tmp_path / "b")
    for name in ("segments.csv", "profiles.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    # the page is identical after the leaderboard (which holds wall times): plots, segments,
    # drivers
    pages = [(tmp_path / d / "report.html").read_text() for d in ("a", "b")]
    after = [page.split("<h2>Plots</h2>", 1)[1] for page in pages]
    assert after[0] == after[1]


def test_the_report_profiles_auto_when_it_ran_unless_told_otherwise():
    from deepseg.tasks.report import choose_report_run, report_options

    opts = report_options({})
    assert choose_report_run(opts, ["kmeans", "auto"], [0, 1]) == ("auto", 0)
    assert choose_report_run(opts, ["kmeans", "gmm"], [0]) == ("kmeans", 0)
    named = report_options({"method": "kmeans", "seed": 1})
    assert choose_report_run(named, ["kmeans", "auto"], [0, 1]) == ("kmeans", 1)
