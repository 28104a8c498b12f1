"""Deep clustering estimators with the scikit-learn interface.

Every estimator runs the same skeleton: pretrain an autoencoder (or take a pretrained one),
embed the data, initialise the clusters in the embedding, then (for methods that have one) the
clustering phase, a LightningModule from :mod:`deepseg.models` run by a Lightning Trainer.
``labels_`` is always the method's own assignment: DEC's is the argmax of its soft assignment,
never a K-Means re-run on the embedding (that is the separate method ``AEKMeans``).

Grouped options keep the signatures short and identical across methods:

* ``autoencoder``: architecture (hidden_dims, latent_dim, activation, norm, dropout);
* ``pretrain``: pretraining (epochs, batch_size, lr, weight_decay, noise, noise_level);
* ``trainer``: lightning.Trainer options (accelerator, devices, strategy, precision, ...).

Starting from a trained network: ``encoder_from`` is the path of a deepseg bundle whose
autoencoder (encoder and decoder) the fit starts from, with no pretraining epochs (it wins over
``pretrained``, an Autoencoder object); ``freeze_encoder=True`` keeps the encoder's weights
fixed during the clustering phase (only the centres / prior, and the decoder when the method
reconstructs, are trained). Its input dimension must match X.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.utils.validation import check_is_fitted

from deepseg.cluster.baselines import GMMClusterer
from deepseg.cluster.training import (
    embed,
    make_trainer,
    pretrain_autoencoder,
    seed_all,
)
from deepseg.data.module import TensorDataModule
from deepseg.models.base import ClusteringModule
from deepseg.models.callbacks import EpochTimer
from deepseg.models.dcn import DCNModule
from deepseg.models.dec import DECModule
from deepseg.nn.modules import Autoencoder

logger = logging.getLogger(__name__)

# How DEC, IDEC and DCN place their first centres (see DeepClusterer._init_clusters)
_INITS = ("kmeans", "umap")


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


def _check_X(X: Any, owner: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"{owner} expects X of shape (n_samples, n_features); got {X.shape}.")
    if not np.isfinite(X).all():
        raise ValueError(f"{owner}: X holds NaN or infinite values.")
    return X


class DeepClusterer(ClusterMixin, TransformerMixin, BaseEstimator):
    """Shared fit skeleton of the deep estimators (not used directly).

    Subclasses set ``_module_class`` for a clustering phase (or None), and may override
    ``_init_clusters`` and ``_module_kwargs``.
    """

    _module_class: ClassVar[Any] = None  # a ClusteringModule subclass, or None
    uses_autoencoder: ClassVar[bool] = True

    n_clusters: int
    autoencoder: Mapping[str, Any] | None
    pretrain: Mapping[str, Any] | None
    trainer: Mapping[str, Any] | None
    pretrained: Autoencoder | None
    encoder_from: str | None
    freeze_encoder: bool
    random_state: int | None

    # -- validation ----------------------------------------------------------------------------

    def _validate_params(self, n_samples: int) -> int:
        k = self.n_clusters
        name = type(self).__name__
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
            raise ValueError(
                f"The 'n_clusters' parameter of {name} must be an int in the range [2, inf). "
                f"Got {k!r} instead."
            )
        if k > n_samples:
            raise ValueError(
                f"The 'n_clusters' parameter of {name} must be <= n_samples={n_samples}. Got {k}."
            )
        init = getattr(self, "init", "kmeans")
        if init not in _INITS:
            raise ValueError(
                f"The 'init' parameter of {name} must be one of {list(_INITS)}. Got {init!r} "
                "instead."
            )
        if init == "umap":
            from deepseg.cluster.n2d import _import_umap

            _import_umap()  # a missing extra fails before pretraining
        if self.random_state is None:
            return int(np.random.default_rng().integers(2**31 - 1))
        return int(self.random_state)

    # -- the skeleton --------------------------------------------------------------------------

    def fit(self, X: Any, y: object = None) -> DeepClusterer:
        """Pretrain (unless ``pretrained`` is given), embed, initialise, cluster.

        Args:
            X: array of shape (n_samples, n_features).
            y: ignored; deep clustering never sees labels.
        """
        X = _check_X(X, type(self).__name__)
        seed = self._validate_params(X.shape[0])
        ae = self._starting_autoencoder(X, seed)
        seed_all(seed)
        ae.train()
        z = embed(ae, X)
        init = self._init_clusters(z, seed)
        self.module_: ClusteringModule | None = None
        if self._module_class is not None:
            saved = _freeze(ae.encoder) if self.freeze_encoder else None
            try:
                self.module_ = self._run_clustering_phase(ae, X, init, seed)
            finally:
                if saved is not None:
                    _unfreeze(ae.encoder, saved)
            ae = self.module_.autoencoder
        self.autoencoder_ = ae.cpu().eval()
        self.n_features_in_ = X.shape[1]
        self.labels_ = self.predict(X)
        return self

    def _starting_autoencoder(self, X: np.ndarray, seed: int) -> Autoencoder:
        """The network the fit starts from: a bundle's (``encoder_from``), ``pretrained``, or
        a newly pretrained one. Only the last runs pretraining epochs."""
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
            return pretrain_autoencoder(X, self.autoencoder, self.pretrain, self.trainer, seed)
        if ae.config["input_dim"] != X.shape[1]:
            raise ValueError(
                f"{source} expects {ae.config['input_dim']} features; X has "
                f"{X.shape[1]}. Build the features with the same pipeline (data and features "
                "config) as the run that trained it."
            )
        return ae

    def _init_clusters(self, z: np.ndarray, seed: int) -> np.ndarray:
        """Initial centres in the embedding, shape (n_clusters, latent_dim).

        ``init="kmeans"`` (the papers'): K-Means centres, 20 restarts. ``init="umap"``: the
        embedding's means over the clusters that N2D finds in it (UMAP, then a Gaussian
        mixture), which follow the embedding's manifold rather than its Euclidean spread.
        """
        if getattr(self, "init", "kmeans") == "umap":
            from deepseg.cluster.n2d import make_umap_gmm

            latent = make_umap_gmm(self.n_clusters, seed).fit(z)
            labels = np.asarray(latent.named_steps["gmm"].labels_)
            rng = np.random.default_rng(seed)
            centres = np.empty((self.n_clusters, z.shape[1]), dtype=np.float32)
            for j in range(self.n_clusters):
                members = z[labels == j]
                # an empty component (rare) starts at a random row
                centres[j] = members.mean(0) if len(members) else z[rng.integers(len(z))]
            return centres
        km = KMeans(self.n_clusters, n_init=20, random_state=seed).fit(z)
        return km.cluster_centers_.astype(np.float32)

    def _module_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def _run_clustering_phase(
        self, ae: Autoencoder, X: np.ndarray, init: np.ndarray, seed: int
    ) -> ClusteringModule:
        opts = self._module_kwargs()
        batch_size = int(opts.pop("batch_size"))
        epochs = int(opts.pop("epochs"))
        dm = TensorDataModule(X, batch_size=batch_size, seed=seed)
        timer = EpochTimer()
        trainer = make_trainer(epochs, self.trainer, timer)
        assert self._module_class is not None
        module = self._module_class(centers=torch.from_numpy(init), autoencoder=ae, X=dm.X, **opts)
        start = time.perf_counter()
        trainer.fit(module, datamodule=dm)
        self.cluster_seconds_ = time.perf_counter() - start
        self.epoch_seconds_ = list(timer.epoch_seconds)
        self.n_epochs_ = int(trainer.current_epoch)
        self.n_steps_ = int(trainer.global_step)
        self.stopped_early_ = bool(module.stopped_early)
        return module

    # -- inference -----------------------------------------------------------------------------

    def transform(self, X: Any) -> np.ndarray:
        """Embeddings of shape (n_samples, latent_dim)."""
        check_is_fitted(self, "autoencoder_")
        return embed(self.autoencoder_, _check_X(X, type(self).__name__))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Soft assignments of shape (n_samples, n_clusters)."""
        check_is_fitted(self, "module_")
        assert self.module_ is not None
        z = torch.from_numpy(self.transform(X))
        head = self.module_.cpu()
        with torch.no_grad():
            return head.assign(z).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The method's own segment of each row."""
        return self.predict_proba(X).argmax(axis=1)


class _LatentClusterer(DeepClusterer):
    """Autoencoder embedding, then a classic clusterer in latent space (no clustering phase)."""

    def _make_latent_model(self, seed: int) -> Any:
        raise NotImplementedError

    def _init_clusters(self, z: np.ndarray, seed: int) -> np.ndarray:
        self.latent_model_ = self._make_latent_model(seed).fit(z)
        return np.zeros((0,), dtype=np.float32)

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "latent_model_")
        z = self.transform(X)
        if hasattr(self.latent_model_, "predict_proba"):
            return self.latent_model_.predict_proba(z)
        labels = self.latent_model_.predict(z)
        return np.eye(self.n_clusters, dtype=np.float32)[labels]


class AEKMeans(_LatentClusterer):
    """K-Means on an autoencoder's embedding (``ae_kmeans``).

    Args:
        n_clusters: number of clusters.
        n_init: K-Means restarts.
        autoencoder, pretrain, trainer: grouped options (see module docstring).
        pretrained: an already trained Autoencoder to start from (pretraining is skipped).
        encoder_from, freeze_encoder: see the module docstring.
        random_state: seed.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        n_init: int = 20,
        autoencoder: Mapping[str, Any] | None = None,
        pretrain: Mapping[str, Any] | None = None,
        trainer: Mapping[str, Any] | None = None,
        pretrained: Autoencoder | None = None,
        encoder_from: str | None = None,
        freeze_encoder: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.autoencoder = autoencoder
        self.pretrain = pretrain
        self.trainer = trainer
        self.pretrained = pretrained
        self.encoder_from = encoder_from
        self.freeze_encoder = freeze_encoder
        self.random_state = random_state

    def _make_latent_model(self, seed: int) -> Any:
        return KMeans(self.n_clusters, n_init=self.n_init, random_state=seed)


class AEGMM(_LatentClusterer):
    """A Gaussian mixture on an autoencoder's embedding (``ae_gmm``).

    Args:
        n_clusters: number of components.
        covariance_type: GMM covariance type.
        autoencoder, pretrain, trainer: grouped options (see module docstring).
        pretrained: an already trained Autoencoder to start from.
        encoder_from, freeze_encoder: see the module docstring.
        random_state: seed.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        covariance_type: str = "full",
        autoencoder: Mapping[str, Any] | None = None,
        pretrain: Mapping[str, Any] | None = None,
        trainer: Mapping[str, Any] | None = None,
        pretrained: Autoencoder | None = None,
        encoder_from: str | None = None,
        freeze_encoder: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.covariance_type = covariance_type
        self.autoencoder = autoencoder
        self.pretrain = pretrain
        self.trainer = trainer
        self.pretrained = pretrained
        self.encoder_from = encoder_from
        self.freeze_encoder = freeze_encoder
        self.random_state = random_state

    def _make_latent_model(self, seed: int) -> Any:
        return GMMClusterer(
            self.n_clusters, covariance_type=self.covariance_type, n_init=3, random_state=seed
        )


class DEC(DeepClusterer):
    """Deep Embedded Clustering (Xie et al. 2016).

    Args:
        n_clusters: number of clusters.
        alpha: Student-t degrees of freedom.
        update_interval: steps between recomputations of the target distribution.
        tol: stop when fewer than this share of labels changed between two updates.
        epochs: maximum epochs of the clustering phase.
        batch_size: clustering-phase batch size.
        lr: clustering-phase learning rate.
        optimizer: "sgd" (momentum 0.9, as in the paper) or "adam".
        rec_weight: weight of the reconstruction loss against the clustering loss (0 for DEC;
            IDEC uses 10).
        init: first centres: "kmeans" (K-Means in the embedding, as in the paper) or "umap"
            (means of the clusters that UMAP + a Gaussian mixture find in the embedding, as
            N2D; needs the 'umap' extra).
        autoencoder, pretrain, trainer: grouped options (see module docstring).
        pretrained: an already trained Autoencoder to start from.
        encoder_from, freeze_encoder: see the module docstring.
        random_state: seed.
    """

    _module_class = DECModule

    def __init__(
        self,
        n_clusters: int = 8,
        alpha: float = 1.0,
        update_interval: int = 140,
        tol: float = 1e-3,
        epochs: int = 50,
        batch_size: int = 256,
        lr: float = 0.01,
        optimizer: str = "sgd",
        rec_weight: float = 0.0,
        init: str = "kmeans",
        autoencoder: Mapping[str, Any] | None = None,
        pretrain: Mapping[str, Any] | None = None,
        trainer: Mapping[str, Any] | None = None,
        pretrained: Autoencoder | None = None,
        encoder_from: str | None = None,
        freeze_encoder: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.alpha = alpha
        self.update_interval = update_interval
        self.tol = tol
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.rec_weight = rec_weight
        self.init = init
        self.autoencoder = autoencoder
        self.pretrain = pretrain
        self.trainer = trainer
        self.pretrained = pretrained
        self.encoder_from = encoder_from
        self.freeze_encoder = freeze_encoder
        self.random_state = random_state

    def _module_kwargs(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "tol": self.tol,
            "update_interval": self.update_interval,
            "lr": self.lr,
            "optimizer": self.optimizer,
            "rec_weight": self.rec_weight,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
        }


class IDEC(DEC):
    """Improved DEC (Guo et al. 2017): DEC plus the reconstruction loss, which keeps the
    embedding's local structure. Same arguments as :class:`DEC`, with ``rec_weight=10`` and
    Adam at ``lr=0.001`` by default.

    The paper minimises ``L_rec + gamma * L_cluster`` with ``gamma = 0.1``; deepseg's step
    minimises ``L_cluster + rec_weight * L_rec``, so the paper's balance is ``rec_weight = 1 /
    gamma = 10`` (the overall factor of 10 is immaterial to Adam)."""

    def __init__(
        self,
        n_clusters: int = 8,
        alpha: float = 1.0,
        update_interval: int = 140,
        tol: float = 1e-3,
        epochs: int = 50,
        batch_size: int = 256,
        lr: float = 1e-3,
        optimizer: str = "adam",
        rec_weight: float = 10.0,
        init: str = "kmeans",
        autoencoder: Mapping[str, Any] | None = None,
        pretrain: Mapping[str, Any] | None = None,
        trainer: Mapping[str, Any] | None = None,
        pretrained: Autoencoder | None = None,
        encoder_from: str | None = None,
        freeze_encoder: bool = False,
        random_state: int | None = None,
    ) -> None:
        super().__init__(
            n_clusters=n_clusters,
            alpha=alpha,
            update_interval=update_interval,
            tol=tol,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            rec_weight=rec_weight,
            init=init,
            autoencoder=autoencoder,
            pretrain=pretrain,
            trainer=trainer,
            pretrained=pretrained,
            encoder_from=encoder_from,
            freeze_encoder=freeze_encoder,
            random_state=random_state,
        )


class DCN(DeepClusterer):
    """Deep Clustering Network (Yang et al. 2017).

    Args:
        n_clusters: number of clusters.
        cluster_weight: weight of the k-means loss (lambda / 2).
        rec_weight: weight of the reconstruction loss.
        epochs: epochs of the clustering phase.
        batch_size: clustering-phase batch size.
        lr: Adam learning rate.
        init: first centres, "kmeans" or "umap" (see :class:`DEC`).
        autoencoder, pretrain, trainer: grouped options (see module docstring).
        pretrained: an already trained Autoencoder to start from.
        encoder_from, freeze_encoder: see the module docstring.
        random_state: seed.
    """

    _module_class = DCNModule

    def __init__(
        self,
        n_clusters: int = 8,
        cluster_weight: float = 0.05,
        rec_weight: float = 1.0,
        epochs: int = 50,
        batch_size: int = 256,
        lr: float = 1e-4,
        init: str = "kmeans",
        autoencoder: Mapping[str, Any] | None = None,
        pretrain: Mapping[str, Any] | None = None,
        trainer: Mapping[str, Any] | None = None,
        pretrained: Autoencoder | None = None,
        encoder_from: str | None = None,
        freeze_encoder: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.cluster_weight = cluster_weight
        self.rec_weight = rec_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.init = init
        self.autoencoder = autoencoder
        self.pretrain = pretrain
        self.trainer = trainer
        self.pretrained = pretrained
        self.encoder_from = encoder_from
        self.freeze_encoder = freeze_encoder
        self.random_state = random_state

    def _module_kwargs(self) -> dict[str, Any]:
        return {
            "cluster_weight": self.cluster_weight,
            "rec_weight": self.rec_weight,
            "lr": self.lr,
            "optimizer": "adam",
            "update_interval": 10**9,  # DCN updates its centres every step, in cluster_loss
            "batch_size": self.batch_size,
            "epochs": self.epochs,
        }
