"""A disk cache of sentence embeddings, keyed by the model's fingerprint and the text's hash.

Embedding a corpus is the slowest step of text clustering on a CPU; a sweep, a benchmark over
seeds, ``auto``'s candidates and a re-run all embed the same documents. The cache keeps each
document's embedding once: one folder per model fingerprint, holding append-only ``.npz`` chunks
of ``keys`` (the 16-byte BLAKE2b digest of each text, as uint8 rows) and ``embeddings``
(float32). Chunks are written to a temporary name and renamed, so that concurrent processes never
read a half-written chunk (at worst two processes both embed and store a document). Nothing is
pickled.

The default folder is ``$DEEPSEG_CACHE_DIR``, else ``$XDG_CACHE_HOME/deepseg/embeddings``, else
``~/.cache/deepseg/embeddings``: a user cache shared by every run of the user, so that a second
run of the same benchmark embeds nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

import numpy as np

__all__ = ["EmbeddingCache", "default_cache_dir", "text_keys"]

logger = logging.getLogger(__name__)

KEY_BYTES = 16


def default_cache_dir() -> Path:
    """The default embedding cache folder (``DEEPSEG_CACHE_DIR``, else the user cache)."""
    env = os.environ.get("DEEPSEG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return root / "deepseg" / "embeddings"


def text_keys(texts: list[str]) -> np.ndarray:
    """The content hash of each text.

    Args:
        texts: ``n_samples`` strings.

    Returns:
        uint8 array of shape ``(n_samples, 16)``: the BLAKE2b digest of each UTF-8 text.

    Example:
        >>> text_keys(["a", "a", "b"]).shape
        (3, 16)
    """
    out = np.empty((len(texts), KEY_BYTES), dtype=np.uint8)
    for i, text in enumerate(texts):
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=KEY_BYTES).digest()
        out[i] = np.frombuffer(digest, dtype=np.uint8)
    return out


class EmbeddingCache:
    """The cached embeddings of one model.

    Args:
        root: the cache folder (one sub-folder per model fingerprint).
        fingerprint: the model's fingerprint (hex string).
    """

    def __init__(self, root: str | Path, fingerprint: str) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.directory = self.root / fingerprint[:40]

    def _chunks(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("chunk-*.npz"))

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The cached embeddings of these keys.

        Args:
            keys: uint8 array of shape ``(n, 16)`` from :func:`text_keys`.

        Returns:
            ``(found, embeddings)``: ``found`` is a bool array of shape ``(n,)``; ``embeddings``
            is a float32 array of shape ``(n, dim)`` whose rows are valid where ``found`` (None
            when nothing is cached).
        """
        wanted = {bytes(k): i for i, k in enumerate(keys)}
        found = np.zeros(len(keys), dtype=bool)
        out: np.ndarray | None = None
        for chunk in self._chunks():
            try:
                with np.load(chunk, allow_pickle=False) as npz:
                    chunk_keys, emb = npz["keys"], npz["embeddings"]
            except (OSError, ValueError, KeyError) as exc:  # a damaged chunk is skipped
                logger.warning("Embedding cache: skipping unreadable %s (%s)", chunk, exc)
                continue
            for row, key in enumerate(chunk_keys):
                i = wanted.get(bytes(key))
                if i is None or found[i]:
                    continue
                if out is None:
                    out = np.zeros((len(keys), emb.shape[1]), dtype=np.float32)
                if emb.shape[1] != out.shape[1]:
                    continue
                out[i] = emb[row]
                found[i] = True
            if found.all():
                break
        return found, out

    def add(self, keys: np.ndarray, embeddings: np.ndarray) -> None:
        """Stores embeddings; a failure to write is logged, never raised.

        Args:
            keys: uint8 array of shape ``(n, 16)``.
            embeddings: float32 array of shape ``(n, dim)``.
        """
        if len(keys) == 0:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            meta = self.directory / "model.json"
            if not meta.exists():
                meta.write_text(json.dumps({"fingerprint": self.fingerprint}) + "\n")
            name = f"chunk-{uuid.uuid4().hex}.npz"
            tmp = self.directory / f".{name}.tmp.npz"
            np.savez(
                tmp, keys=np.asarray(keys, np.uint8), embeddings=np.asarray(embeddings, np.float32)
            )
            os.replace(tmp, self.directory / name)
        except OSError as exc:
            logger.warning("Embedding cache: could not write to %s (%s)", self.directory, exc)
