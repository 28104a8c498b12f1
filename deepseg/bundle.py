"""Self-describing bundles of trained segmenters: save, load, predict; nothing pickled.

A bundle is a directory:

* ``manifest.json``: the format and deepseg versions, the method and its constructor
  arguments, the architecture (the autoencoder's constructor arguments, nanoGPT style) and the
  assignment head, the fitted feature-pipeline state, the column roles and how raw input becomes
  rows (the data config), the training-data fingerprint (see :mod:`deepseg.drift`), the
  training metrics, and the SHA-256 of every other file;
* ``weights.safetensors``: the network and head tensors (safetensors holds raw tensors only:
  reading it runs no code);
* ``pipeline.npz``: the feature pipeline's arrays, read with ``allow_pickle=False``.

:func:`load` returns a :class:`Segmenter` that rebuilds the network from the stored arguments and
computes assignments itself, without the estimator classes: DEC/IDEC's Student-t kernel, the
nearest centre (ae_kmeans, dcn, kmeans, minibatch_kmeans, pca_kmeans), Gaussian-mixture
responsibilities from the stored means, precision Cholesky factors and weights (gmm, ae_gmm),
and VaDE's mixture posterior. N2D's bundle keeps its encoder (``transform``) but cannot
``predict``: its UMAP cannot be stored without pickle. Methods that cannot assign new rows at
all (agglomerative, dbscan, hdbscan, spectral) get no bundle.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from packaging.version import InvalidVersion, Version
from torch import nn

from deepseg._version import __version__
from deepseg.drift import fingerprint as make_fingerprint
from deepseg.features.columns import require_columns
from deepseg.features.pipeline import FeaturePipeline, _jsonable
from deepseg.io import atomic_directory, atomic_write_csv, json_dumps
from deepseg.nn.heads import ENCODERS, HEADS, AssignmentNet, Head
from deepseg.nn.modules import Autoencoder, embed

logger = logging.getLogger(__name__)

FORMAT = "deepseg-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
PIPELINE_ARRAYS = "pipeline.npz"
REQUIRED_FIELDS = (
    "format",
    "format_version",
    "deepseg_version",
    "method",
    "model",
    "pipeline",
    "input",
    "fingerprint",
    "files",
)
_LOAD_ATTEMPTS = 5  # reads of a bundle that keeps being replaced under the reader
INFERENCE_BATCH = 4096  # the batch the estimators embed with: identical embeddings
_TRANSACTION_OPTIONS = (
    "id_column",
    "invoice_column",
    "product_column",
    "description_column",
    "quantity_column",
    "date_column",
    "price_column",
    "country_column",
    "reference_date",
    "cancel_prefix",
)


class BundleError(ValueError):
    """A bundle that cannot be read: names the file and the problem."""


# -- reading a fitted estimator -------------------------------------------------------------------


def _parts(estimator: Any, method: str) -> tuple[nn.Module | None, nn.Module | None, str | None]:
    """(encoder, head, why there is no head) of a fitted estimator.

    Deep estimators say it themselves (``segmenter_parts``); the classic ones are read by
    :func:`deepseg.baselines.segmenter_parts`.
    """
    own = getattr(estimator, "segmenter_parts", None)
    if callable(own):
        return own()
    from deepseg.baselines import segmenter_parts

    try:
        return segmenter_parts(estimator)
    except ValueError as exc:
        raise ValueError(f"Method '{method}': {exc}") from exc


def _state(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    tensors = module.stored_tensors() if isinstance(module, Head) else module.state_dict()
    return {f"{prefix}.{n}": v.detach().cpu().contiguous() for n, v in tensors.items()}


def model_state(estimator: Any, method: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The architecture/head description and the tensors of a fitted estimator.

    Nothing here is method-specific: the encoder and head say what they are (``kind``), how to
    rebuild them (``config``) and what they hold (their tensors).

    Raises:
        ValueError: when the method cannot assign new rows (no bundle for it).
    """
    encoder, head, reason = _parts(estimator, method)
    tensors: dict[str, torch.Tensor] = {}
    spec: dict[str, Any] = {"encoder": {"type": "identity"}, "can_predict": head is not None}
    if isinstance(encoder, Autoencoder):
        spec["encoder"] = {"type": "autoencoder", "config": dict(encoder.config)}
        tensors.update(_state("autoencoder", encoder))
    elif isinstance(encoder, Head):
        spec["encoder"] = {"type": encoder.kind, **encoder.config}
        tensors.update(_state("encoder", encoder))
    if isinstance(head, Head):
        spec["head"] = {"type": head.kind, **head.config}
        tensors.update(_state("head", head))  # with its numeric arguments: load checks them
        k: Any = head.n_clusters
    else:
        spec["head"] = {"type": "none", "reason": reason or ""}
        k = getattr(estimator, "n_clusters", None)
    spec["n_clusters"] = int(k) if k is not None else None
    return spec, tensors


def _build_head(spec: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> nn.Module | None:
    kind = spec["type"]
    if kind == "none":
        return None
    if kind not in HEADS:
        raise ValueError(f"unknown head type {kind!r}")
    own = {k[len("head.") :]: v for k, v in tensors.items() if k.startswith("head.")}
    return HEADS[kind].from_state(spec, own).requires_grad_(False)


def _build_fixed_encoder(
    spec: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> nn.Module:
    kind = spec["type"]
    if kind == "identity":
        return nn.Identity()
    if kind not in ENCODERS:
        raise ValueError(f"unknown encoder type {kind!r}")
    own = {k[len("encoder.") :]: v for k, v in tensors.items() if k.startswith("encoder.")}
    return ENCODERS[kind].from_state(spec, own)


# -- saving --------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of a manifest's canonical JSON (sorted keys, no spaces), without the
    ``manifest_sha256`` field that stores it."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    text = json_dumps(body, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _input_spec(dataset: Any, data_config: Mapping[str, Any] | None) -> dict[str, Any]:
    config = dict(_jsonable(dict(data_config or {})))
    target = str(config.get("_target_", ""))
    if getattr(dataset, "X", None) is not None:
        return {"kind": "matrix", "n_features": int(dataset.X.shape[1]), "data_config": config}
    spec: dict[str, Any] = {
        "kind": "transactions" if target.endswith("load_transactions") else "table",
        "data_config": config,
        "columns": [str(c) for c in dataset.frame.columns],
        "dtypes": {str(c): str(t) for c, t in dataset.frame.dtypes.items()},
    }
    if spec["kind"] == "transactions":
        import inspect

        from deepseg.data.transactions import build_customer_table

        defaults = {
            name: p.default
            for name, p in inspect.signature(build_customer_table).parameters.items()
            if name in _TRANSACTION_OPTIONS
        }
        spec["transactions"] = {k: config.get(k, v) for k, v in defaults.items()}
    return spec


def _params(estimator: Any) -> dict[str, Any]:
    if not hasattr(estimator, "get_params"):
        return {}
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k != "pretrained"}
    return json.loads(json.dumps(_jsonable(params), default=repr))


def save_bundle(
    directory: str | Path,
    *,
    estimator: Any,
    pipeline: FeaturePipeline,
    dataset: Any,
    X: np.ndarray,
    method: str,
    method_config: dict[str, Any],
    data_config: dict[str, Any],
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write a fitted segmenter as a bundle directory.

    The bundle is written into a temporary sibling directory and moved into place at the end,
    so a failure never leaves a half-written bundle nor damages an earlier one at ``directory``.

    Args:
        directory: the bundle directory to create (replaced when it exists).
        estimator: the fitted estimator (``labels_`` set).
        pipeline: the fitted feature pipeline that produced ``X``.
        dataset: the training Dataset (raw table or matrix: fingerprint, columns).
        X: the training feature matrix, shape (n_samples, n_features).
        method: the method name (e.g. "dec").
        method_config: the method's config node (``_target_`` and options).
        data_config: the data config node (how raw input becomes rows).
        metrics: training metrics to record.

    Returns:
        The bundle directory.

    Raises:
        ValueError: when the method cannot assign new rows (agglomerative, dbscan, ...).
    """
    from safetensors.torch import save as save_weights

    directory = Path(directory)
    spec, tensors = model_state(estimator, method)
    labels = np.asarray(estimator.labels_)
    input_spec = _input_spec(dataset, data_config)
    roles = pipeline.roles_
    if input_spec["kind"] == "matrix":
        names = list(getattr(pipeline, "matrix_feature_names_", None) or [])
        names = names or [f"x{j}" for j in range(dataset.X.shape[1])]
        fp = make_fingerprint(
            dataset.X, numeric=names, labels=labels, n_clusters=spec["n_clusters"]
        )
    else:
        fp = make_fingerprint(
            dataset.frame,
            numeric=roles.numeric,
            categorical=roles.categorical,
            labels=labels,
            n_clusters=spec["n_clusters"],
        )
    fp["n_features_out"] = int(X.shape[1])
    pipe_state, pipe_arrays = pipeline.get_state()
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "deepseg_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "method": method,
        "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "method_config": _jsonable(dict(method_config or {})),
        "params": _params(estimator),
        "model": spec,
        "pipeline": pipe_state,
        "columns": roles.to_dict(),
        "feature_names": list(pipeline.feature_names_),
        "input": input_spec,
        "fingerprint": fp,
        "metrics": _jsonable(dict(metrics or {})),
    }
    with atomic_directory(directory) as tmp:
        # bytes, not save_file: safetensors creates its files 0600 whatever the umask
        (tmp / WEIGHTS).write_bytes(save_weights({k: v.contiguous() for k, v in tensors.items()}))
        np.savez(tmp / PIPELINE_ARRAYS, **pipe_arrays)  # type: ignore[arg-type]
        manifest["files"] = {name: _sha256(tmp / name) for name in (WEIGHTS, PIPELINE_ARRAYS)}
        manifest = json.loads(json_dumps(_jsonable(manifest), default=repr))
        manifest["manifest_sha256"] = manifest_digest(manifest)
        (tmp / MANIFEST).write_text(json_dumps(manifest, indent=1) + "\n", encoding="utf-8")
    logger.info("Wrote the %s bundle to %s", method, directory)
    return directory


def write_assignments(
    path: str | Path,
    *,
    ids: Any,
    labels: Any,
    proba: np.ndarray | None = None,
    embedding: np.ndarray | None = None,
) -> None:
    """Write ``id, segment, confidence[, z_0, ...]`` to a CSV, atomically.

    ``confidence`` is the largest soft assignment, or 1.0 without ``proba``.
    """
    atomic_write_csv(path, assignments_frame(ids, labels, proba, embedding))


def assignments_frame(
    ids: Any,
    labels: Any,
    proba: np.ndarray | None = None,
    embedding: np.ndarray | None = None,
) -> pd.DataFrame:
    """The ``id, segment, confidence[, z_0, ...]`` frame of :func:`write_assignments`."""
    labels = np.asarray(labels)
    if proba is None:
        confidence = np.ones(len(labels), dtype=np.float32)
    else:
        confidence = np.asarray(proba).max(axis=1)
    columns: dict[str, Any] = {"id": np.asarray(ids), "segment": labels, "confidence": confidence}
    if embedding is not None:
        for j in range(embedding.shape[1]):
            columns[f"z_{j}"] = embedding[:, j]
    return pd.DataFrame(columns)


# -- loading -------------------------------------------------------------------------------------


def _version(text: Any, file: Path) -> Version:
    try:
        return Version(str(text))
    except InvalidVersion:
        raise BundleError(f"{file}: deepseg_version {text!r} is not a version number.") from None


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read and validate a bundle's manifest (format, versions, required fields)."""
    directory = Path(path)
    file = directory / MANIFEST
    if not directory.is_dir():
        raise FileNotFoundError(f"Bundle not found: '{directory}' is not a directory.")
    if not file.is_file():
        raise BundleError(f"{file}: missing; '{directory}' is not a deepseg bundle.")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{file}: not valid JSON ({exc}); the bundle is corrupt.") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{file}: expected a JSON object, got {type(manifest).__name__}.")
    missing = [f for f in REQUIRED_FIELDS if f not in manifest]
    if missing:
        raise BundleError(f"{file}: missing manifest field(s) {missing}; the bundle is damaged.")
    if manifest["format"] != FORMAT:
        raise BundleError(f"{file}: format {manifest['format']!r} is not {FORMAT!r}.")
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"{file}: bundle format version {manifest['format_version']!r} is not supported; "
            f"this deepseg {__version__} reads format version {FORMAT_VERSION}. Use the "
            "deepseg version that wrote it, or retrain."
        )
    written = _version(manifest["deepseg_version"], file)
    ours = Version(__version__)
    if written.major != ours.major or written > ours:
        raise BundleError(
            f"{file}: written by deepseg {manifest['deepseg_version']}, which is incompatible "
            f"with this deepseg {__version__} (it reads bundles of the same major "
            "version, not newer than itself)."
        )
    stored = manifest.get("manifest_sha256")
    if stored is None:
        raise BundleError(
            f"{file}: no manifest checksum (manifest_sha256); written by an older deepseg or "
            "edited by hand. Retrain to get a bundle whose manifest can be verified."
        )
    if stored != manifest_digest(manifest):
        raise BundleError(
            f"{file}: manifest checksum mismatch: the manifest was edited or damaged after it "
            "was written; refusing to load it (retrain, or restore the original manifest)."
        )
    return manifest


def check_manifest_against_weights(
    manifest: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], file: Path
) -> None:
    """Refuse a manifest whose model description disagrees with the weights.

    The head checks its own config against its stored tensors
    (:meth:`~deepseg.nn.heads.Head.check_state`) and says how many clusters they hold; here
    ``n_clusters`` (the model's and the estimator parameters') is checked against that. The
    weights are covered by their checksum, so an edited manifest cannot silently change the
    assignments.

    Raises:
        BundleError: naming the field, the manifest value and the weights' value.
    """
    where = f"{file.parent / MANIFEST}"
    model = manifest["model"]
    if not isinstance(model, dict) or not isinstance(model.get("head") or {}, dict):
        raise BundleError(f"{where}: the 'model' field is not an object with a 'head'.")
    head = model.get("head") or {}
    head_class = HEADS.get(str(head.get("type")))
    if head_class is None:
        return
    own = {k[len("head.") :]: v for k, v in tensors.items() if k.startswith("head.")}
    try:
        rows = head_class.check_state(head, own)
    except KeyError as exc:
        raise BundleError(f"{file}: tensor 'head.{exc.args[0]}' is missing.") from None
    except ValueError as exc:
        raise BundleError(
            f"{where}: model.head.{exc}; the manifest was edited. Refusing to load it."
        ) from None
    claims = {"model.n_clusters": model.get("n_clusters")}
    if "n_clusters" in (manifest.get("params") or {}):
        claims["params.n_clusters"] = manifest["params"]["n_clusters"]
    for field, value in claims.items():
        if value != rows:
            raise BundleError(
                f"{where}: {field}={value!r} does not match the weights, which hold {rows} "
                "centres; the manifest was edited. Refusing to load it."
            )


def _check_file(directory: Path, name: str, manifest: Mapping[str, Any]) -> Path:
    file = directory / name
    if not file.is_file():
        raise BundleError(f"{file}: missing from the bundle.")
    expected = manifest["files"].get(name)
    if expected is None:
        raise BundleError(f"{directory / MANIFEST}: no checksum recorded for {name}.")
    if _sha256(file) != expected:
        raise BundleError(
            f"{file}: checksum mismatch (the file is corrupt, truncated or was replaced); "
            "refusing to load it."
        )
    return file


def _read_weights(file: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    # safetensors parses a JSON header and raw buffers: a pickle payload is never executed
    try:
        return load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise BundleError(
            f"{file}: not a valid safetensors weights file ({exc}); the bundle is corrupt."
        ) from exc


def _build_autoencoder(
    spec: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], file: Path
) -> Autoencoder:
    try:
        ae = Autoencoder(**spec["config"])
        state = {
            k[len("autoencoder.") :]: v for k, v in tensors.items() if k.startswith("autoencoder.")
        }
        ae.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, KeyError) as exc:
        raise BundleError(
            f"{file}: the weights do not fit the architecture in the manifest ({exc})."
        ) from exc
    return ae.eval()


class Segmenter:
    """A trained segmenter read from a bundle: raw input -> features -> embedding -> segment.

    It takes the same raw input as training: a frame with the training columns (extra columns
    are ignored with a warning; missing ones raise an error listing them), a transaction log
    when the features were built from transactions (or the per-customer table built from one),
    or a matrix for matrix datasets. Unseen categories and unknown words go through the fitted
    pipeline, which pools / ignores them.

    Attributes:
        manifest: the bundle's manifest.
        path: the bundle directory.
        pipeline: the fitted feature pipeline.
        autoencoder: the network (deep methods), else None.
        net: encoder plus assignment head (an :class:`AssignmentNet`); None when the method
            cannot predict (n2d).
    """

    def __init__(
        self,
        manifest: dict[str, Any],
        pipeline: FeaturePipeline,
        encoder: nn.Module,
        head: nn.Module | None,
        autoencoder: Autoencoder | None = None,
        path: Path | None = None,
    ) -> None:
        self.manifest = manifest
        self.pipeline = pipeline
        self.encoder = encoder.eval()
        self.head = None if head is None else head.eval()
        self.autoencoder = autoencoder
        self.path = path
        self.net = None if head is None else AssignmentNet(self.encoder, head).eval()

    # -- manifest info -------------------------------------------------------------------------

    @property
    def method(self) -> str:
        return str(self.manifest["method"])

    @property
    def n_clusters(self) -> int | None:
        return self.manifest["model"].get("n_clusters")

    @property
    def can_predict(self) -> bool:
        return bool(self.manifest["model"].get("can_predict", True))

    @property
    def input_kind(self) -> str:
        """The kind of raw input: "table", "transactions" or "matrix"."""
        return str(self.manifest["input"]["kind"])

    @property
    def id_column(self) -> str | None:
        return self.pipeline.roles_.id

    @property
    def input_columns(self) -> list[str]:
        """The raw columns the pipeline reads (tables; the customer table for transactions)."""
        return list(self.pipeline.roles_.feature_columns())

    @property
    def feature_names(self) -> list[str]:
        """Names of the pipeline's output features (the model's inputs)."""
        return list(self.pipeline.feature_names_)

    @property
    def fingerprint(self) -> dict[str, Any]:
        return dict(self.manifest["fingerprint"])

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.manifest.get("metrics") or {})

    @property
    def centers(self) -> np.ndarray | None:
        """Cluster centres / mixture means in the assignment space, shape (k, latent_dim)."""
        centers = getattr(self.head, "centers_", None)
        return None if centers is None else centers.detach().double().numpy()

    def __repr__(self) -> str:
        return (
            f"Segmenter(method={self.method!r}, n_clusters={self.n_clusters}, "
            f"input={self.input_kind!r}, features={len(self.feature_names)})"
        )

    # -- raw input -> features -----------------------------------------------------------------

    def prepare(self, data: Any, warn_extra: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Ids and feature matrix of raw input.

        Returns:
            (ids of shape (n,), features of shape (n, n_features_out), float32).
        """
        kind = self.input_kind
        if kind == "matrix":
            return self._prepare_matrix(data)
        if not isinstance(data, pd.DataFrame):
            raise TypeError(
                f"This {self.method} bundle was trained on a table; expected a pandas DataFrame, "
                f"got {type(data).__name__}."
            )
        columns = self.input_columns
        if kind == "transactions" and not all(c in data.columns for c in columns):
            data = self.customer_table(data)
        require_columns(data, columns, f"Input for the {self.method} bundle")
        id_col = self.id_column
        if warn_extra:
            extra = [c for c in data.columns if c not in columns and c != id_col]
            if extra:
                logger.warning(
                    "Ignoring %d extra column(s) not used in training: %s", len(extra), extra[:10]
                )
        ids = (
            data[id_col].to_numpy()
            if id_col is not None and id_col in data.columns
            else np.arange(len(data))
        )
        return ids, self.pipeline.transform(data[columns])

    def customer_table(self, log: pd.DataFrame) -> pd.DataFrame:
        """A transaction log turned into the per-customer table, with the training options."""
        from deepseg.data.transactions import build_customer_table

        options = dict(self.manifest["input"].get("transactions") or {})
        table = build_customer_table(log, **options)
        id_col = self.id_column
        if id_col is not None and id_col != options.get("id_column") and options.get("id_column"):
            table = table.rename(columns={options["id_column"]: id_col})
        return table

    def _prepare_matrix(self, data: Any) -> tuple[np.ndarray, np.ndarray]:
        n_in = int(self.manifest["input"]["n_features"])
        if isinstance(data, pd.DataFrame):
            names = list(getattr(self.pipeline, "matrix_feature_names_", None) or [])
            if names and all(n in data.columns for n in names):
                data = data[names]
            elif data.shape[1] != n_in:
                raise ValueError(
                    f"Input for the {self.method} bundle: expected {n_in} numeric columns "
                    f"(or the columns {names[:5]}...); got {data.shape[1]}."
                )
            data = data.to_numpy(dtype=np.float32)
        X = np.asarray(data)
        if X.ndim != 2 or X.shape[1] != n_in:
            raise ValueError(
                f"Input for the {self.method} bundle: expected a matrix with {n_in} columns; "
                f"got shape {X.shape}."
            )
        return np.arange(len(X)), self.pipeline.transform(X)

    # -- features -> embedding / assignments ---------------------------------------------------

    @torch.no_grad()
    def embed_features(self, X: np.ndarray) -> np.ndarray:
        """Embeddings of a feature matrix, shape (n, latent_dim)."""
        return embed(self.encoder, X, INFERENCE_BATCH)

    @torch.no_grad()
    def assign_features(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, soft assignments) of a feature matrix."""
        if self.head is None:
            raise ValueError(
                f"The {self.method} bundle at '{self.path}' cannot predict segments: "
                + str(self.manifest["model"]["head"].get("reason", ""))
            )
        z = self.embed_features(X)
        z_t = torch.from_numpy(z)
        proba = torch.cat([self.head(c) for c in torch.split(z_t, 1 << 16)]) if len(z) else None
        if proba is None:
            return z, np.zeros((0, int(self.n_clusters or 0)), dtype=np.float32)
        return z, proba.float().numpy()

    def transform(self, data: Any) -> np.ndarray:
        """Embeddings of raw input, shape (n, latent_dim) (for kmeans/gmm: the features,
        for pca_kmeans: the PCA projection)."""
        return self.embed_features(self.prepare(data)[1])

    def predict_proba(self, data: Any) -> np.ndarray:
        """Soft assignments of raw input, shape (n, n_clusters) (one-hot for hard methods)."""
        return self.assign_features(self.prepare(data)[1])[1]

    def predict(self, data: Any) -> np.ndarray:
        """Segment of each row of raw input, shape (n,)."""
        return self.predict_proba(data).argmax(axis=1)


def _inode(directory: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def load(path: str | Path) -> Segmenter:
    """Load a bundle written by :func:`save_bundle`. Never unpickles or runs bundle code.

    A bundle replaced while it is being read (``save_bundle`` swaps the whole directory) is
    read again, so the result is the old bundle or the new one, never a mix of their files.

    Raises:
        FileNotFoundError: when ``path`` is not a directory.
        BundleError (a ValueError): incompatible version, missing manifest field, corrupt or
            truncated files, a manifest edited after it was written; the message names the file
            and the problem.
    """
    directory = Path(path)
    for attempt in range(_LOAD_ATTEMPTS):
        before = _inode(directory)
        try:
            return _load(directory)
        except (BundleError, FileNotFoundError):
            if attempt + 1 == _LOAD_ATTEMPTS or _inode(directory) == before:
                raise
            logger.info("The bundle %s was replaced while being read; reading it again", path)
    raise AssertionError("unreachable")


def _load(directory: Path) -> Segmenter:
    manifest = read_manifest(directory)
    weights_file = _check_file(directory, WEIGHTS, manifest)
    arrays_file = _check_file(directory, PIPELINE_ARRAYS, manifest)
    tensors = _read_weights(weights_file)
    check_manifest_against_weights(manifest, tensors, weights_file)
    try:
        with np.load(arrays_file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as exc:
        raise BundleError(f"{arrays_file}: unreadable ({exc}); the bundle is corrupt.") from exc
    try:
        pipeline = FeaturePipeline.from_state(manifest["pipeline"], arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(
            f"{directory / MANIFEST}: the 'pipeline' field is invalid ({exc!r})."
        ) from exc
    model = manifest["model"]
    try:
        encoder_spec, head_spec = model["encoder"], model["head"]
    except (KeyError, TypeError) as exc:
        raise BundleError(f"{directory / MANIFEST}: field 'model' lacks {exc}.") from exc
    autoencoder = None
    encoder: nn.Module
    try:
        if encoder_spec["type"] == "autoencoder":
            autoencoder = _build_autoencoder(encoder_spec, tensors, weights_file)
            encoder = autoencoder.encoder
        else:
            encoder = _build_fixed_encoder(encoder_spec, tensors)
        head = _build_head(head_spec, tensors)
    except KeyError as exc:
        raise BundleError(f"{weights_file}: tensor {exc} is missing.") from exc
    return Segmenter(manifest, pipeline, encoder, head, autoencoder, directory)


def load_autoencoder(path: str | Path) -> Autoencoder:
    """The trained autoencoder of a bundle (for ``encoder_from``), in eval mode, on the CPU.

    Raises:
        ValueError: when the bundle has no autoencoder (a classic method's bundle).
    """
    segmenter = load(path)
    if segmenter.autoencoder is None:
        raise ValueError(
            f"encoder_from: the bundle '{path}' ({segmenter.method}) holds no autoencoder; "
            "use the bundle of a deep method (ae_kmeans, ae_gmm, dec, idec, dcn, vade, n2d)."
        )
    return segmenter.autoencoder
