"""Text block of the deepseg feature pipeline.

A :class:`TextBlock` turns a column of free text (one string per customer) into a dense,
row-normalised float32 matrix. Two methods are available:

* ``"tfidf"``: a TF-IDF bag of words (sublinear term frequency, lower-cased, scikit-learn's
  default token pattern) reduced with a truncated SVD (latent semantic analysis).
* ``"sentence"``: embeddings from a `sentence-transformers`_ model (optional ``text`` extra).

The fitted block is saved as a JSON-serialisable dict plus named numpy arrays, never with
pickle: for TF-IDF the state holds the vocabulary (term -> column index), the idf vector and
the SVD components, and the transform is rebuilt from those alone. For sentence embeddings the
state holds only the model name or path and the embedding dimension; the model is loaded again
lazily on first use.

.. _sentence-transformers: https://www.sbert.net
"""

from __future__ import annotations

import logging
import numbers
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

from deepseg.progress import progress

__all__ = ["TextBlock"]

logger = logging.getLogger(__name__)

VALID_METHODS: tuple[str, ...] = ("tfidf", "sentence")
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
STATE_VERSION = 1
_SENTENCE_IMPORT_MESSAGE = (
    "method='sentence' needs the optional 'text' extra: pip install 'deepseg[text]'"
)
# Rows whose norm is below this are treated as all-zero and left at zero.
_ZERO_NORM = 1e-12


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
    """Text features: TF-IDF + truncated SVD, or sentence-transformer embeddings.

    Args:
        method: ``"tfidf"`` or ``"sentence"``.
        n_components: Number of SVD components for ``"tfidf"`` (clipped at fit time to
            ``min(n_terms - 1, n_samples)`` with a logged warning). Ignored for ``"sentence"``.
        max_features: Largest vocabulary kept by the TF-IDF vectoriser (most frequent terms).
        min_df: Minimum document frequency of a term (int: count, float: proportion). If the
            training corpus is too small for it, ``fit`` falls back to ``min_df=1`` with a
            logged warning.
        ngram_range: ``(min_n, max_n)`` word n-gram range for TF-IDF.
        model: Sentence-transformers model: a local directory or a hub name. Required for
            ``method="sentence"``.
        batch_size: Encoding batch size for ``"sentence"``.
        random_state: Seed of the randomised SVD.

    Raises:
        ValueError: If a parameter is invalid or ``model`` is missing for ``"sentence"``.

    Example:
        >>> block = TextBlock(n_components=2, min_df=1)
        >>> x = block.fit_transform(["red shoes", "blue shoes", "cheap flights", None])
        >>> x.shape, x.dtype
        ((4, 2), dtype('float32'))
    """

    def __init__(
        self,
        method: str = "tfidf",
        n_components: int = 32,
        max_features: int = 20000,
        min_df: int | float = 2,
        ngram_range: tuple[int, int] = (1, 1),
        model: str | None = None,
        batch_size: int = 64,
        random_state: int = 0,
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
        self._validate_params()

        # Fitted state (TF-IDF).
        self.vocabulary_: dict[str, int] | None = None
        self.idf_: np.ndarray | None = None
        self.components_: np.ndarray | None = None
        self.min_df_: int | float | None = None
        self._counter: CountVectorizer | None = None
        # Fitted state (sentence).
        self.embedding_dim_: int | None = None
        self._encoder: Any = None

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
        if self.method == "sentence" and self.model is None:
            raise ValueError(
                "method='sentence' needs `model`: a local sentence-transformers model "
                "directory or a hub model name."
            )
        if self.model is not None and not isinstance(self.model, str | Path):
            raise _param_error("model", "a str (model directory or hub name) or None", self.model)

    # ------------------------------------------------------------------ public API

    @property
    def is_fitted(self) -> bool:
        """Whether the block has been fitted (or restored from a fitted state)."""
        if self.method == "tfidf":
            return self.components_ is not None
        return self.embedding_dim_ is not None

    @property
    def n_features_out(self) -> int:
        """Number of output columns ``n_out``.

        Raises:
            NotFittedError: If the block is not fitted.
        """
        self._check_fitted()
        if self.method == "tfidf":
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
        prefix = "text_svd" if self.method == "tfidf" else "text_emb"
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
                (TF-IDF), or if the parameters are invalid.
            ImportError: If ``method="sentence"`` and sentence-transformers is missing.
        """
        self._validate_params()
        docs = _as_text_list(texts)
        if not docs:
            raise ValueError("TextBlock.fit needs at least one text, got 0.")
        if self.method == "tfidf":
            self._fit_tfidf(docs)
        else:
            self._fit_sentence()
        return self

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
        """
        self._check_fitted()
        docs = _as_text_list(texts)
        if self.method == "tfidf":
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
        }

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Exports the block as plain data (no pickle).

        Returns:
            ``(state, arrays)``: ``state`` is a JSON-serialisable dict (parameters, fitted
            flag, vocabulary ``term -> column`` for TF-IDF, embedding dimension and model for
            sentence); ``arrays`` maps names to numpy arrays: for a fitted TF-IDF block
            ``"idf"`` of shape ``(n_terms,)`` and ``"svd_components"`` of shape
            ``(n_out, n_terms)``, both float64; empty otherwise.
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
        if self.method == "tfidf":
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
        return state, arrays

    @classmethod
    def from_state(cls, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> TextBlock:
        """Rebuilds a block from :meth:`get_state` output.

        Args:
            state: The state dict (possibly after a JSON round trip).
            arrays: The named arrays (a dict or an ``np.load`` result of an ``.npz``).

        Returns:
            A block whose ``transform`` reproduces the original one. A sentence block loads
            its model lazily on the first ``transform``.

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
        block = cls(**params)
        if not state.get("fitted", False):
            return block
        if block.method == "tfidf":
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

    def _load_encoder(self) -> Any:
        if self._encoder is not None:
            return self._encoder
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError(_SENTENCE_IMPORT_MESSAGE) from exc
        model = str(self.model)
        if Path(model).expanduser().is_dir():
            model = str(Path(model).expanduser())
        logger.info("TextBlock: loading sentence-transformers model %s", model)
        self._encoder = SentenceTransformer(model)
        return self._encoder

    @staticmethod
    def _encoder_dim(encoder: Any) -> int | None:
        for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
            getter = getattr(encoder, name, None)
            if getter is not None:
                dim = getter()
                return None if dim is None else int(dim)
        return None

    def _fit_sentence(self) -> None:
        encoder = self._load_encoder()
        dim = self._encoder_dim(encoder)
        if dim is None:
            dim = int(self._encode(encoder, ["dimension probe"]).shape[1])
        self.embedding_dim_ = dim
        logger.info("TextBlock(sentence) fitted: model %s, dimension %d.", self.model, dim)

    def _encode(self, encoder: Any, docs: list[str]) -> np.ndarray:
        # Blocks of 64 batches: progress between them (a bar on a terminal, else log lines)
        block = 64 * self.batch_size
        starts: Iterable[int] = range(0, max(len(docs), 1), block)
        if len(docs) > block:
            starts = progress(starts, desc="sentence encoding", unit="blocks", logger=logger)
        embs = [
            encoder.encode(
                docs[start : start + block],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            for start in starts
        ]
        return np.concatenate([np.asarray(e, dtype=np.float32) for e in embs], axis=0)

    def _transform_sentence(self, docs: list[str]) -> np.ndarray:
        assert self.embedding_dim_ is not None
        if not docs:
            return np.zeros((0, self.embedding_dim_), dtype=np.float32)
        emb = self._encode(self._load_encoder(), docs)
        if emb.ndim != 2 or emb.shape[1] != self.embedding_dim_:
            raise ValueError(
                f"TextBlock: model {self.model!r} gives embeddings of shape {emb.shape}, "
                f"expected (n_samples, {self.embedding_dim_}) from the saved state."
            )
        return _l2_normalise_rows(emb).astype(np.float32)

    # ------------------------------------------------------------------ helpers

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                "This TextBlock instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using it."
            )
