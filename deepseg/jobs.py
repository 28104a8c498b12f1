"""The job store every command shares: finished jobs by content hash, their locks, checkpoints.

A job is one fit whose result is decided by a JSON description (the method's options, the data,
the features, k, the seed, ...) and by the *contents* of its input files. Its key is a hash of
both (:meth:`JobStore.job`). A finished job stores its results row in ``<dir>/<key>.json``; a
later job with the same key (the re-run of an interrupted ``deepseg-train -m``,
``deepseg-benchmark`` or ``deepseg-suite``) is not run again: it takes the stored row, with
``resumed_from`` naming the run dir that produced it. The same command on a file whose contents
changed runs again, and the log says why (:meth:`JobStore.why_not_done`). Failed jobs store
nothing, so they run again.

Partitions: a finished job also keeps the method's own labels (before any second-view
refinement; the row says what the refinement did) in ``<dir>/<key>.labels.npy``, written
atomically before its record, which names the file with its SHA-256 and row count. Labels are
served (:meth:`JobStore.stored_labels`, to ``auto``'s candidates in a benchmark) only through a
valid finished record whose hash they match: a record without labels (older stores) is still
a finished row, whose partition cannot be served; labels without a record, or of another
write, are ignored, and storing a record without labels removes a stale labels file.

Checkpoints: a deep job writes its training checkpoints into ``<dir>/<key>/checkpoints/``
(:mod:`deepseg.deep.checkpoint`), so the re-run of a job killed mid-training resumes from its last
checkpoint rather than from epoch 0. They are removed when the job's record is stored, and when
``resume=false`` starts the job over.

The store is shared safely: a job holds ``<dir>/<key>.lock`` (an OS file lock through
``filelock``, freed when its process dies) from the look-up to the stored record, so two
commands started together on one store run every job once; records are written atomically as
strict JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepseg._version import __version__
from deepseg.io import (
    atomic_write_bytes,
    atomic_write_json,
    content_fingerprint,
    exclusive_lock,
    json_dumps,
)

logger = logging.getLogger(__name__)

# Trainer options that do not change a job's result, left out of its hash.
TRAINER_COSMETIC = ("enable_progress_bar", "logger", "default_root_dir")
# Method options that do not change a job's result: where its checkpoints go.
METHOD_COSMETIC = ("checkpoint",)
# The code a job's result depends on, part of every job's key: another version of deepseg runs
# its jobs again rather than serve rows its own code would not give. ``results`` is raised by
# every change that alters what a job computes between releases (2: auto's near-tie rule on
# directions).
CODE_VERSION = {"deepseg": __version__, "results": 2}


def _dumps(obj: Any) -> str:
    return json_dumps(obj, sort_keys=True, default=str)


def _short_hash(obj: Any) -> str:
    return hashlib.sha256(_dumps(obj).encode()).hexdigest()[:16]


def method_identity(method_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A method's options without those that do not change its result (progress bars, loggers,
    checkpoint directories)."""
    out = {k: v for k, v in method_cfg.items() if k not in METHOD_COSMETIC}
    if isinstance(out.get("trainer"), dict):
        out["trainer"] = {k: v for k, v in out["trainer"].items() if k not in TRAINER_COSMETIC}
    return out


def features_identity(features: Any) -> Any:
    """The features' options as they decide a job: ``text.precision: auto`` is written as
    what it resolves to here, so that a store shared by a CPU with AMX (bfloat16) and one
    without (float32) does not serve one's rows and labels to the other."""
    text = features.get("text") if isinstance(features, dict) else None
    if isinstance(text, dict) and text.get("precision") == "auto":
        from deepseg.features.text import resolve_precision

        text = {**text, "precision": resolve_precision("auto")}
    if isinstance(text, dict) and text.get("method", "auto") == "auto":
        # auto embeds sentences only where a sentence model is installed: a store shared with
        # a machine without one (TF-IDF) serves neither's rows to the other
        text = {**text, "sentence_model": _sentence_model_available(text.get("model"))}
    return features if text is None else {**features, "text": text}


def _sentence_model_available(model: Any) -> bool:
    import importlib.util

    from deepseg.features.text import packaged_model_dir

    if importlib.util.find_spec("sentence_transformers") is None:
        return False
    return model is not None or packaged_model_dir() is not None


def input_fingerprints(
    data_cfg: Mapping[str, Any], method_cfg: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Content fingerprints (:func:`deepseg.io.content_fingerprint`) of a job's input files:
    ``data.path`` and a starting bundle (``model.encoder_from``), where set."""
    out = {}
    for name, node, key in (("data.path", data_cfg, "path"), ("model.encoder_from", method_cfg,
                                                                 "encoder_from")):  # fmt: skip
        value = node.get(key)
        if value:
            out[name] = content_fingerprint(value)
    return out


def describe_inputs(inputs: Mapping[str, Mapping[str, Any]]) -> str:
    """One line about a job's input files (count, bytes, hash)."""
    parts = [
        f"{name}: {fp['n_files']} file(s), {fp['bytes']} bytes, sha256 {fp['sha256'][:12]}"
        for name, fp in inputs.items()
    ]
    return "; ".join(parts) or "no input files (generated data)"


@dataclass(frozen=True)
class Job:
    """One job of the store.

    Attributes:
        key: the hash of ``config``, of the inputs' contents and of the code version
            (:data:`CODE_VERSION`): the record's name.
        config_hash: the hash of ``config`` alone (equal for the same command on other data).
        config: what decides the job's result, apart from the input files.
        inputs: the input files' fingerprints.
    """

    key: str
    config_hash: str
    config: dict[str, Any]
    inputs: dict[str, dict[str, Any]]


class JobStore:
    """Finished jobs' rows, locks and checkpoints in one directory (see the module docstring).

    Args:
        directory: the store; None keeps nothing (every job runs, no locks, no checkpoints).
        resume: False runs every job again (and removes its old checkpoints first).
        checkpoint: the ``checkpoint`` node (``enabled``, ``every_n_epochs``, ...); None or
            ``enabled: false``: no checkpoints.
    """

    def __init__(
        self,
        directory: str | Path | None,
        *,
        resume: bool = True,
        checkpoint: Mapping[str, Any] | None = None,
    ) -> None:
        self.directory = Path(directory) if directory else None
        self.resume = bool(resume)
        self.checkpoint = dict(checkpoint or {})

    # -- identity ------------------------------------------------------------------------------

    @staticmethod
    def job(
        config: Mapping[str, Any], inputs: Mapping[str, Mapping[str, Any]] | None = None
    ) -> Job:
        """The job of ``config`` on the input files ``inputs`` (their fingerprints)."""
        fingerprints = {k: dict(v) for k, v in (inputs or {}).items()}
        content = {name: fp["sha256"] for name, fp in fingerprints.items()}
        return Job(
            key=_short_hash({"config": config, "inputs": content, "code": CODE_VERSION}),
            config_hash=_short_hash(config),
            config=dict(config),
            inputs=fingerprints,
        )

    # -- paths ---------------------------------------------------------------------------------

    def record_path(self, job: Job) -> Path | None:
        return None if self.directory is None else self.directory / f"{job.key}.json"

    def labels_path(self, job: Job) -> Path | None:
        """Where ``job``'s partition is kept beside its record (None: no store)."""
        return None if self.directory is None else self.directory / f"{job.key}.labels.npy"

    def checkpoint_dir(self, job: Job) -> Path | None:
        """Where ``job`` keeps its training checkpoints (None: no store, or checkpoints off).

        Beside the job's record rather than in its run dir: every run of a command gets a new
        run dir, while a re-run of the same job finds its key, and the job's lock covers them."""
        if (
            self.directory is None
            or not self.checkpoint
            or not self.checkpoint.get("enabled", True)
        ):
            return None
        return self.directory / job.key / "checkpoints"

    def checkpoint_options(self, job: Job) -> dict[str, Any] | None:
        """The deep estimators' ``checkpoint`` option for ``job`` (None: no checkpoints)."""
        directory = self.checkpoint_dir(job)
        if directory is None:
            return None
        opts = {k: v for k, v in self.checkpoint.items() if k != "enabled"}
        return {**opts, "dir": str(directory)}

    def remove_checkpoints(self, job: Job, why: str) -> None:
        directory = self.checkpoint_dir(job)
        job_dir = None if directory is None else directory.parent
        if job_dir is None or not job_dir.is_dir():
            return
        shutil.rmtree(job_dir, ignore_errors=True)
        logger.info("Removed the checkpoints of job %s (%s): %s", job.key, why, job_dir)

    # -- records -------------------------------------------------------------------------------

    def load(self, job: Job) -> dict[str, Any] | None:
        """The stored record of ``job`` when it finished before, or None."""
        path = self.record_path(job)
        if path is None or not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("Ignoring the unreadable job record %s: %s", path, exc)
            return None
        row = record.get("row") if isinstance(record, dict) else None
        return record if isinstance(row, dict) and row.get("status") == "ok" else None

    def why_not_done(self, job: Job) -> str:
        """Why ``job`` has no finished record: new, or the same config on changed input."""
        if self.directory is not None and self.directory.is_dir():
            paths = sorted(self.directory.glob("*.json"), key=lambda p: -p.stat().st_mtime)
            for path in paths:
                try:
                    record = json.loads(path.read_text())
                except (OSError, json.JSONDecodeError):
                    continue
                if not isinstance(record, dict) or record.get("config_hash") != job.config_hash:
                    continue
                before = record.get("inputs") or {}
                changed = [
                    f"{name} (was {before.get(name, {}).get('bytes')} bytes, sha256 "
                    f"{str(before.get(name, {}).get('sha256'))[:12]}; now {fp['bytes']} bytes, "
                    f"sha256 {fp['sha256'][:12]})"
                    for name, fp in job.inputs.items()
                    if (before.get(name) or {}).get("sha256") != fp["sha256"]
                ]
                if changed:
                    where = record.get("run_dir")
                    return f"the input changed since the run in {where}: {', '.join(changed)}"
        return f"no finished record of this config on this input ({describe_inputs(job.inputs)})"

    def store(
        self,
        job: Job,
        row: Mapping[str, Any],
        run_dir: str | Path,
        labels: np.ndarray | None = None,
    ) -> None:
        """Store the row of a finished job (atomically), then drop its checkpoints.

        With ``labels`` (the method's own partition), they are written first, atomically, to
        :meth:`labels_path`, and the record names them (file, rows, SHA-256); without, a stale
        labels file of an earlier write is removed."""
        path = self.record_path(job)
        labels_path = self.labels_path(job)
        if path is None or labels_path is None:
            return
        record: dict[str, Any] = {
            "job_hash": job.key,
            "config_hash": job.config_hash,
            "inputs": job.inputs,
            "run_dir": str(run_dir),
            "finished": time.time(),
            "row": dict(row),
        }
        data = None
        if labels is not None:
            try:
                data = _npy_bytes(np.asarray(labels))
            except ValueError as exc:  # e.g. object labels: the row is stored without them
                logger.warning("Job %s: its labels are not kept (%s); the row is.", job.key, exc)
        if data is not None:
            atomic_write_bytes(labels_path, data)
            record["labels"] = {
                "file": labels_path.name,
                "n_samples": int(np.asarray(labels).shape[0]),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        atomic_write_json(path, record, default=str)
        if data is None:  # after the record: no record ever names a missing file
            labels_path.unlink(missing_ok=True)
        # the record now answers a re-run; a failed job keeps them for its next attempt
        self.remove_checkpoints(job, "finished")

    def stored_labels(self, job: Job, n_samples: int | None = None) -> np.ndarray | None:
        """The partition ``job`` stored when it finished (the method's own labels), or None:
        ``resume`` off, no finished record, a record without labels (an older store), or
        labels that do not match their record (another write, a damaged file) or that have
        not ``n_samples`` rows. Why is logged, except for a job never run."""
        if not self.resume:
            return None
        record = self.load(job)
        if record is None:
            return None
        meta = record.get("labels")
        path = self.labels_path(job)
        if not isinstance(meta, dict) or path is None:
            logger.info("Job %s stored no labels (an older record): they cannot be served.",
                        job.key)  # fmt: skip
            return None
        try:
            data = path.read_bytes()
        except OSError as exc:
            logger.warning("Ignoring the labels of job %s: %s", job.key, exc)
            return None
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            logger.warning("Ignoring the labels of job %s: %s does not match its record.",
                           job.key, path)  # fmt: skip
            return None
        try:
            labels = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError) as exc:
            logger.warning("Ignoring the unreadable labels of job %s: %s", job.key, exc)
            return None
        if labels.ndim != 1 or (n_samples is not None and labels.shape[0] != n_samples):
            logger.warning(
                "Ignoring the labels of job %s: shape %s, for %s rows.",
                job.key, labels.shape, n_samples,
            )  # fmt: skip
            return None
        return labels

    def finished_row(self, job: Job, what: str) -> dict[str, Any] | None:
        """The row of ``job`` when it finished before and ``resume`` is on, with
        ``resumed_from``; else None, after logging why the job runs (``what`` names it)."""
        if not self.resume:
            logger.info("Running %s (job %s): resume=false.", what, job.key)
            self.remove_checkpoints(job, "resume=false starts over")
            return None
        record = self.load(job)
        if record is None:
            logger.info("Running %s (job %s): %s.", what, job.key, self.why_not_done(job))
            return None
        row = dict(record["row"])
        row["resumed_from"] = record.get("run_dir", "")
        logger.info(
            "%s: already done in %s (job %s: same config, same input: %s); not run again.",
            what, row["resumed_from"], job.key, describe_inputs(job.inputs),
        )  # fmt: skip
        return row

    # -- locks ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, job: Job) -> Iterator[None]:
        """Hold ``<dir>/<key>.lock`` (nothing without a store): one process at a time looks
        up, runs and records a job. The lock dies with its process; its file stays beside the
        record, except that a job that stored nothing (bad input) in a store it created leaves
        no new store directory behind."""
        path = self.record_path(job)
        if path is None:
            yield
            return
        created = not path.parent.exists()
        lock_file = path.with_suffix(".lock")

        def waiting() -> None:
            logger.info(
                "Job %s is being run by another process; waiting for it to finish.", job.key
            )

        try:
            with exclusive_lock(lock_file, on_wait=waiting):
                try:
                    yield
                finally:
                    if created and not path.exists():
                        lock_file.unlink(missing_ok=True)  # while still holding it
        finally:
            if created and not path.exists():
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # only when empty: another job's records stay


#: what a job's fit gives back: its results row (``status`` "ok" or "failed") and the method's
#: own partition, kept beside the record when it exists
Fitted = tuple[dict[str, Any], "np.ndarray | None"]


@dataclass(frozen=True)
class Work:
    """One job for :func:`run_jobs`: the job, how the log names it, and how to run it.

    Attributes:
        job: the job (its key decides whether it already finished).
        name: how the log names it ("kmeans (seed 0)").
        fit: runs the job: ``fit(job) -> (row, labels)``; only called when the job has no
            finished record (or ``rerun``). It may raise: nothing is stored, the lock is freed.
        rerun: run it even when a record exists (a fit whose estimator is needed, e.g. the
            report's); its row replaces the record.
    """

    job: Job
    name: str
    fit: Callable[[Job], Fitted]
    rerun: bool = False


def run_jobs(
    store: JobStore, works: Iterable[Work], run_dir: str | Path
) -> Iterator[dict[str, Any]]:
    """The job loop of every command (train, benchmark, suite, choose-k): for each job in
    turn, hold its lock, take its finished row from ``store`` or run its ``fit`` and store the
    row (and the labels) when it is ok, then yield the row.

    A generator: the next :class:`Work` is drawn from ``works`` only when the previous job is
    done, so a caller may build each job from the rows before it (a benchmark's methods from
    the k that its choose-k job gave). A killed command leaves the jobs it finished in the
    store and, for a deep fit, its checkpoints: the same command runs only the rest.
    """
    for work in works:
        with store.lock(work.job):
            row = None if work.rerun else store.finished_row(work.job, work.name)
            if row is None:
                row, labels = work.fit(work.job)
                if row.get("status") == "ok":
                    store.store(work.job, row, run_dir, labels=labels)
        yield row


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
