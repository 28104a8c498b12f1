"""The base of every deep clustering estimator: one parameter table, one fit flow.

Every estimator runs the same flow: check every parameter, pretrain an autoencoder (or take a
pretrained one), embed the data, initialise the clusters in the embedding, then (for methods
that have one) the clustering phase, a LightningModule run by a Lightning Trainer (see
:mod:`deepseg.deep.skeleton`). ``labels_`` is always the method's own assignment: DEC's is the
argmax of its soft assignment, never a K-Means re-run on the embedding (that is the separate
method ``AEKMeans``).

Parameters are dataclass fields, each declared once with its default and constraint
(:mod:`deepseg.deep.params`); the options every deep method shares are declared here, on
:class:`DeepClusterer`:

* ``autoencoder``: architecture (hidden_dims, latent_dim, activation, norm, dropout);
* ``pretrain``: pretraining (epochs, min_steps, max_budget_epochs, max_steps, batch_size, lr,
  lr_schedule, weight_decay, noise, noise_level);
* ``trainer``: lightning.Trainer options (accelerator, devices, strategy, precision, ...);
* ``pretrained``: an Autoencoder to start from (no pretraining);
* ``encoder_from``: the path of a deepseg bundle whose autoencoder (encoder and decoder) the fit
  starts from, with no pretraining epochs (it wins over ``pretrained``);
* ``freeze_encoder``: keep the encoder's weights fixed during the clustering phase (only the
  centres / prior, and the decoder when the method reconstructs, are trained);
* ``checkpoint``: checkpoint options (dir, every_n_epochs, every_n_seconds, keep; see
  :mod:`deepseg.deep.checkpoint`): with a ``dir``, each training phase writes checkpoints there
  and a fit of the same data, options and seed resumes from the newest one (no files without);
* ``random_state``: the seed of pretraining, initialisation and the clustering phase;
* ``max_steps``: the clustering phase's step budget on large data: at most ceil(max_steps /
  steps an epoch) epochs (20,000 steps; 0 for no cap).

Unset grouped options take the defaults declared in :mod:`deepseg.options`, which the packaged
configs' ``autoencoder`` and ``pretrain`` groups are generated from, so ``DEC().fit(X)`` and
``deepseg-train model=dec`` build the same model. ``n_clusters`` and ``random_state`` take their
constraints from the same declarations.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from deepseg.deep import params as P
from deepseg.deep import skeleton
from deepseg.deep.checkpoint import phase_checkpoint, trainer_key
from deepseg.deep.init import INITS, initial_centers, require_umap
from deepseg.nn.modules import Autoencoder
from deepseg.options import N_CLUSTERS, RANDOM_STATE, Checked, check_n_clusters
from deepseg.validation import fit_input, new_input

logger = logging.getLogger(__name__)


def _freeze(encoder: torch.nn.Module) -> list[tuple[torch.nn.Module, float | None]]:
    """No gradients for the encoder, and batch-norm running statistics left as they are.

    Returns:
        The batch-norm layers and their momenta, for :func:`_unfreeze`.
    """
    encoder.requires_grad_(False)
    saved: list[tuple[torch.nn.Module, float | None]] = []
    for module in encoder.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            saved.append((module, module.momentum))
            module.momentum = 0.0
    return saved


def _unfreeze(encoder: torch.nn.Module, saved: list[tuple[torch.nn.Module, float | None]]) -> None:
    encoder.requires_grad_(True)
    for module, momentum in saved:
        module.momentum = momentum  # type: ignore[assignment]


AUTOENCODER_OR_NONE = P.AnyOf((P.InstanceOf((Autoencoder,), "an Autoencoder"), P.NONE))
INIT = P.Options(INITS)


@dataclasses.dataclass(eq=False, repr=False)
class DeepClusterer(ClusterMixin, TransformerMixin, BaseEstimator):
    """Shared parameters and fit flow of the deep estimators (not used directly).

    Subclasses declare their own parameters as :func:`~deepseg.deep.params.param` fields, set
    ``_module_class`` for a clustering phase (or None) and implement ``_module_kwargs`` and
    ``_head``; they may override ``_init_clusters``.
    """

    _module_class: ClassVar[Any] = None  # a ClusteringModule subclass, or None
    uses_autoencoder: ClassVar[bool] = True
    needs_umap: ClassVar[bool] = False  # N2D: umap-learn is checked before pretraining

    n_clusters: int = dataclasses.field(  # positional, as in scikit-learn's KMeans
        default=8, metadata={"constraint": N_CLUSTERS.constraint}
    )
    autoencoder: Mapping[str, Any] | None = P.param(None, P.MAPPING_OR_NONE)
    pretrain: Mapping[str, Any] | None = P.param(None, P.MAPPING_OR_NONE)
    trainer: Mapping[str, Any] | None = P.param(None, P.MAPPING_OR_NONE)
    pretrained: Autoencoder | None = P.param(None, AUTOENCODER_OR_NONE)
    encoder_from: str | None = P.param(None, P.PATH_OR_NONE)
    freeze_encoder: bool = P.param(False, P.BOOL)
    checkpoint: Mapping[str, Any] | None = P.param(None, P.MAPPING_OR_NONE)
    random_state: int | None = P.param(None, RANDOM_STATE.constraint)
    #: The clustering phase runs at most ceil(max_steps / steps an epoch) of its epochs (0: no
    #: cap): see :func:`deepseg.deep.skeleton.capped_epochs`.
    max_steps: int = P.param(20_000, P.NON_NEGATIVE_INT)

    # -- validation ----------------------------------------------------------------------------

    def check_params(self, n_samples: int) -> int:
        """Check every parameter (and the grouped options) before any work; return the seed.

        Raises:
            ValueError: naming the parameter, the expectation and the value.
            ImportError: when ``init="umap"`` (or N2D) needs umap-learn, missing.
        """
        return self._checked(n_samples)[0]

    def checked_groups(self, n_samples: int) -> dict[str, Checked]:
        """:meth:`check_params`, returning the ``autoencoder`` and ``pretrain`` options merged
        with their defaults and checked (:class:`deepseg.options.Checked`).

        A job that checks before its shared pretraining (:func:`deepseg.tasks.run.run_one`)
        sets them back with ``set_params``: the same options, which neither the pretraining
        nor ``fit`` checks again.
        """
        _, autoencoder, pretrain = self._checked(n_samples)
        return {"autoencoder": autoencoder, "pretrain": pretrain}

    def _checked(self, n_samples: int) -> tuple[int, Checked, Checked]:
        """:meth:`check_params`, returning the seed and the autoencoder and pretraining options
        merged with their defaults and checked: ``fit`` passes them on, so that pretraining
        does not check them again."""
        P.validate(self)
        check_n_clusters(self.n_clusters, n_samples, owner=type(self).__name__)
        autoencoder, pretrain = skeleton.check_options(
            self.autoencoder, self.pretrain, self.trainer, self.checkpoint
        )
        if self.needs_umap or getattr(self, "init", "kmeans") == "umap":
            require_umap()  # a missing extra fails before pretraining
        if self.random_state is None:
            seed = int(np.random.default_rng().integers(2**31 - 1))
        else:
            seed = int(self.random_state)
        return seed, autoencoder, pretrain

    # -- the flow ------------------------------------------------------------------------------

    def fit(self, X: Any, y: object = None) -> DeepClusterer:
        """Check, pretrain (unless a network is given), embed, initialise, cluster.

        Args:
            X: array of shape (n_samples, n_features).
            y: ignored; deep clustering never sees labels.
        """
        # two rows at least: batch normalisation needs two to train
        X = fit_input(self, X, dtype=np.float32, min_samples=2)
        seed, autoencoder, pretrain = self._checked(X.shape[0])
        ae = self._starting_autoencoder(X, seed, autoencoder, pretrain)
        skeleton.seed_all(seed)
        ae.train()
        z = skeleton.embed(ae, X)
        init = self._init_clusters(z, seed)
        self.module_: skeleton.ClusteringModule | None = None
        if self._module_class is not None:
            saved = _freeze(ae.encoder) if self.freeze_encoder else None
            try:
                with skeleton.quiet_lightning():
                    self.module_ = self._run_clustering_phase(ae, X, init, seed)
            finally:
                if saved is not None:
                    _unfreeze(ae.encoder, saved)
            ae = self.module_.autoencoder
        self.autoencoder_ = ae.cpu().eval()
        self.labels_ = self._proba(skeleton.embed(self.autoencoder_, X)).argmax(axis=1)
        return self

    def _starting_autoencoder(
        self, X: np.ndarray, seed: int, autoencoder: Checked, pretrain: Checked
    ) -> Autoencoder:
        """The network the fit starts from: a bundle's (``encoder_from``), ``pretrained``, or
        a newly pretrained one (with the checked ``autoencoder`` and ``pretrain`` options).
        Only the last runs pretraining epochs."""
        source: str | None = None
        if self.encoder_from is not None:
            from deepseg.bundle import load_autoencoder

            ae = load_autoencoder(self.encoder_from)  # a fresh copy: fine-tuning leaves it alone
            source = f"The encoder_from bundle '{self.encoder_from}'"
            logger.info(
                "Starting from the autoencoder of %s (no pretraining; its architecture %s "
                "replaces the autoencoder options)",
                self.encoder_from,
                ae.config,
            )
        elif self.pretrained is not None:
            ae = copy.deepcopy(self.pretrained)  # the clustering phase fine-tunes it
            source = "The pretrained autoencoder"
        else:
            return skeleton.pretrain_autoencoder(
                X, autoencoder, pretrain, self.trainer, seed, checkpoint=self.checkpoint
            )
        if ae.config["input_dim"] != X.shape[1]:
            raise ValueError(
                f"{source} expects {ae.config['input_dim']} features; X has "
                f"{X.shape[1]}. Build the features with the same pipeline (data and features "
                "config) as the run that trained it."
            )
        return ae

    def _init_clusters(self, z: np.ndarray, seed: int) -> np.ndarray:
        """Initial centres in the embedding, shape (n_clusters, latent_dim); see
        :func:`deepseg.deep.init.initial_centers`."""
        return initial_centers(z, self.n_clusters, getattr(self, "init", "kmeans"), seed)

    def _module_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def _run_clustering_phase(
        self, ae: Autoencoder, X: np.ndarray, init: np.ndarray, seed: int
    ) -> skeleton.ClusteringModule:
        opts = self._module_kwargs()
        batch_size = int(opts.pop("batch_size"))
        epochs = int(opts.pop("epochs"))
        capped = skeleton.capped_epochs(epochs, len(X), batch_size, self.max_steps)
        if capped != epochs:
            logger.info(
                "Clustering phase: %d epochs, not %d (max_steps=%d at %d rows)",
                capped,
                epochs,
                self.max_steps,
                len(X),
            )
            epochs = capped
        if "update_interval" in opts:
            interval = skeleton.refresh_interval(opts["update_interval"], len(X), batch_size)
            if interval != opts["update_interval"]:
                logger.info(
                    "Whole-data refresh every %d steps, not %d: at most %d an epoch of %d rows",
                    interval,
                    opts["update_interval"],
                    skeleton.MAX_REFRESHES_PER_EPOCH,
                    len(X),
                )
            opts["update_interval"] = interval
        dm = skeleton.TensorDataModule(X, batch_size=batch_size, seed=seed)
        timer = skeleton.EpochTimer()
        # The phase resumes only from a checkpoint of the same start: data, weights, centres,
        # options and seed
        saver = phase_checkpoint(
            self.checkpoint,
            "cluster",
            method=type(self).__name__,
            X=X,
            start=ae.state_dict(),
            init=init,
            options={**opts, "batch_size": batch_size, "epochs": epochs},
            freeze_encoder=self.freeze_encoder,
            seed=seed,
            trainer=trainer_key(self.trainer),
        )
        resume = saver.resume(epochs) if saver is not None else None
        assert self._module_class is not None
        module = self._module_class(
            centers=torch.from_numpy(init),
            autoencoder=ae,
            X=dm.X,
            capture_step=skeleton.capture_step(self.trainer),
            **opts,
        )
        start = time.perf_counter()
        if resume is not None and resume.done:
            skeleton.restore_finished(module, resume, timer)
            self.n_epochs_ = resume.epochs_done
            self.n_steps_ = int(resume.checkpoint["deepseg"]["global_step"])
        else:
            trainer = skeleton.make_trainer(epochs, self.trainer, timer, saver)
            trainer.fit(
                module,
                datamodule=dm,
                ckpt_path=None if resume is None else resume.path,
                weights_only=True,
            )
            self.n_epochs_ = int(trainer.current_epoch)
            self.n_steps_ = int(trainer.global_step)
        self.cluster_seconds_ = time.perf_counter() - start
        self.epoch_seconds_ = list(timer.epoch_seconds)
        self.stopped_early_ = bool(module.stopped_early)
        return module

    # -- inference -----------------------------------------------------------------------------

    def _check_input(self, X: Any) -> np.ndarray:
        return new_input(self, X, dtype=np.float32, fitted="autoencoder_")

    def transform(self, X: Any) -> np.ndarray:
        """Embeddings of shape (n_samples, latent_dim)."""
        X = self._check_input(X)
        return skeleton.embed(self.autoencoder_, X)

    def _head(self) -> torch.nn.Module | None:
        """The fitted assignment head (a :mod:`deepseg.nn.heads` module), None if it has none."""
        raise NotImplementedError

    def _proba(self, z: np.ndarray) -> np.ndarray:
        """Soft assignments of embedded rows ``z``, shape (n_samples, n_clusters)."""
        head = self._head()
        if head is None:
            raise ValueError(f"{type(self).__name__} has no assignment head.")
        with torch.no_grad():
            return head.cpu()(torch.from_numpy(z)).numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Soft assignments of shape (n_samples, n_clusters)."""
        return self._proba(self.transform(X))

    def predict(self, X: Any) -> np.ndarray:
        """The method's own segment of each row."""
        return self.predict_proba(X).argmax(axis=1)

    def segmenter_parts(self) -> tuple[torch.nn.Module, torch.nn.Module | None, str | None]:
        """What a bundle stores: (encoder, head or None, why there is no head)."""
        check_is_fitted(self, "autoencoder_")
        return self.autoencoder_, self._head(), None
