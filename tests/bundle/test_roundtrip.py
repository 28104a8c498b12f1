"""Bundles reload in a fresh process and reproduce the fitted segmenter exactly."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

import deepseg
from deepseg.bundle import MANIFEST, load
from tests.bundle.conftest import AE, DEEP, PREDICTING
from tests.tolerances import EPS32, assert_f32_close


def reduction_length(trained, method: str) -> int:
    """The length of the float32 sums behind one embedding value: the feature count (PCA's
    projection), plus the hidden and latent widths for the autoencoder's layers."""
    n = trained.X.shape[1]
    return n + sum(AE["hidden_dims"]) + AE["latent_dim"] if method in DEEP else n


# Run in a fresh interpreter: nothing of the fitting process (modules, estimator classes) is
# there, only the bundle directories, the raw training table and the saved references.
FRESH = """
import json, sys
import numpy as np, pandas as pd, torch
torch.set_num_threads(1)
import deepseg
root = sys.argv[1]
frame = pd.read_parquet(f"{root}/train.parquet")
out = {}
for method in sys.argv[2:]:
    seg = deepseg.load(f"{root}/{method}")
    labels = seg.predict(frame)
    z = seg.transform(frame)
    proba = seg.predict_proba(frame)
    out[method] = {
        "labels_equal": bool((labels == np.load(f"{root}/{method}.labels.npy")).all()),
        "z_max_diff": float(np.abs(z - np.load(f"{root}/{method}.z.npy")).max()),
        "z_max_abs": float(np.abs(np.load(f"{root}/{method}.z.npy")).max()),
        "proba_rows_sum_to_1": bool(np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)),
        "estimator_module_loaded": "deepseg.deep.estimator" in sys.modules,
    }
print(json.dumps(out))
"""


def test_every_predicting_method_round_trips_in_a_fresh_process(trained):
    result = subprocess.run(
        [sys.executable, "-c", FRESH, str(trained.root), *PREDICTING],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(out) == sorted(PREDICTING)
    for method, checks in out.items():
        assert checks["labels_equal"], method
        # another process sums in another order: pca_kmeans once differed by 1.9e-6 > 1e-6
        bound = reduction_length(trained, method) * EPS32 * max(checks["z_max_abs"], 1.0)
        assert checks["z_max_diff"] <= bound, (method, checks["z_max_diff"], bound)
        assert checks["proba_rows_sum_to_1"], method
        # the bundle computes assignments itself: no estimator classes were imported
        assert not checks["estimator_module_loaded"], method


def test_soft_assignments_match_the_estimators(trained):
    for method in ("dec", "idec", "vade", "ae_gmm", "gmm"):
        seg = load(trained.bundle(method))
        est = trained.estimators[method]
        # probabilities are at most 1 and move with z by at most ~|dz| (softmax and the
        # Student-t kernel are 1-Lipschitz up to a small factor): z's bound, scale 1
        assert_f32_close(
            seg.predict_proba(trained.frame), est.predict_proba(trained.X),
            reduction_length(trained, method),
        )  # fmt: skip


def test_manifest_describes_the_segmenter(trained):
    seg = deepseg.load(trained.bundle("dec"))
    manifest = json.loads((trained.bundle("dec") / MANIFEST).read_text())
    assert manifest["deepseg_version"] == deepseg.__version__
    assert manifest["model"]["encoder"]["config"]["hidden_dims"] == [32]
    assert manifest["params"]["n_clusters"] == 4 and manifest["params"]["update_interval"] == 5
    assert manifest["input"]["kind"] == "table"
    assert manifest["input"]["data_config"]["n_samples"] == 300
    assert manifest["metrics"] == {"silhouette": 0.1}
    fp = manifest["fingerprint"]
    assert fp["n_rows"] == 300
    # the columns it segments on: every feature column but those kept to describe the segments
    # (features.profile_only, auto by default)
    roles = trained.dataset.roles
    segmenting = (set(roles.numeric) | set(roles.categorical)) - set(
        trained.pipeline.profile_only_
    )
    assert set(fp["columns"]) == segmenting
    shares = np.bincount(trained.estimators["dec"].labels_, minlength=4) / 300
    np.testing.assert_allclose(fp["segment_shares"], shares)
    assert seg.feature_names == trained.pipeline.feature_names_
    assert seg.centers.shape == (4, 4)
    assert seg.n_clusters == 4 and seg.method == "dec"


def test_unseen_categories_and_words_are_handled(trained):
    seg = load(trained.bundle("dec"))
    new = trained.frame.head(20).copy()
    new["channel"] = "carrier-pigeon"
    new["country"] = None
    new["products_text"] = "zyxwv qwerty unheardof"
    proba = seg.predict_proba(new)
    assert proba.shape == (20, 4) and np.isfinite(proba).all()


def test_missing_columns_are_listed_and_extra_ones_warned(trained, caplog):
    seg = load(trained.bundle("kmeans"))
    with pytest.raises(ValueError, match=r"\['age', 'channel'\] not found"):
        seg.predict(trained.frame.drop(columns=["age", "channel"]))
    with caplog.at_level(logging.WARNING, logger="deepseg.bundle"):
        labels = seg.predict(trained.frame.assign(unused=1.0))
    assert "unused" in caplog.text
    np.testing.assert_array_equal(labels, trained.estimators["kmeans"].labels_)


def test_methods_that_cannot_predict_get_no_bundle(trained, tmp_path):
    from deepseg.baselines import AutoEpsDBSCAN
    from deepseg.bundle import save_bundle

    est = AutoEpsDBSCAN().fit(trained.X)
    with pytest.raises(ValueError, match="cannot assign new rows"):
        save_bundle(
            tmp_path / "b", estimator=est, pipeline=trained.pipeline, dataset=trained.dataset,
            X=trained.X, method="dbscan", method_config={}, data_config={},
        )  # fmt: skip
    assert not (tmp_path / "b").exists()


def test_gmm_head_matches_scikit_learn_for_every_covariance_type():
    import torch
    from sklearn.mixture import GaussianMixture

    from deepseg.nn.heads import GaussianMixtureHead

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (100, 3)), rng.normal(3, 0.5, (100, 3))])
    for cov in ("full", "tied", "diag", "spherical"):
        gmm = GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
        head = GaussianMixtureHead.from_mixture(gmm)
        ours = head.log_prob(torch.as_tensor(X)).numpy()
        np.testing.assert_allclose(ours, gmm._estimate_weighted_log_prob(X), rtol=1e-10)
        np.testing.assert_array_equal(ours.argmax(axis=1), gmm.predict(X))


@pytest.mark.slow
def test_n2d_bundle_embeds_but_refuses_to_predict(trained, tmp_path):
    pytest.importorskip("umap")
    from deepseg.bundle import save_bundle
    from deepseg.deep import N2D
    from tests.bundle.conftest import AE, PRETRAIN, TRAINER

    est = N2D(4, autoencoder=AE, pretrain=PRETRAIN, trainer=TRAINER, random_state=0)
    est.fit(trained.X)
    save_bundle(
        tmp_path / "n2d", estimator=est, pipeline=trained.pipeline, dataset=trained.dataset,
        X=trained.X, method="n2d", method_config={}, data_config={},
    )  # fmt: skip
    seg = load(tmp_path / "n2d")
    assert_f32_close(
        seg.transform(trained.frame), est.transform(trained.X), reduction_length(trained, "dec")
    )
    with pytest.raises(ValueError, match="UMAP"):
        seg.predict(trained.frame)
    from deepseg.tasks.predict import run_predict

    trained.frame.to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(ValueError, match="deepseg-embed works"):
        run_predict(tmp_path / "n2d", tmp_path / "new.csv", tmp_path / "out.csv")
    run_predict(tmp_path / "n2d", tmp_path / "new.csv", tmp_path / "z.csv", embed_only=True)
    z = np.loadtxt(tmp_path / "z.csv", delimiter=",", skiprows=1, usecols=range(1, 5))
    # written with 7 significant digits (%.7g): half a unit in the 7th digit, relative
    np.testing.assert_allclose(z, est.transform(trained.X), rtol=5e-7 + 1e-6, atol=1e-6)


def test_a_matrix_bundle_takes_the_raw_matrix(tmp_path):
    from sklearn.cluster import KMeans

    from deepseg.bundle import save_bundle
    from deepseg.data.images import load_digits
    from deepseg.features.pipeline import FeaturePipeline
    from deepseg.tasks.predict import run_predict

    dataset = load_digits()
    pipeline = FeaturePipeline()
    X = pipeline.fit_transform(dataset)
    est = KMeans(10, n_init=2, random_state=0).fit(X)
    save_bundle(
        tmp_path / "b", estimator=est, pipeline=pipeline, dataset=dataset, X=X,
        method="kmeans", method_config={}, data_config={"_target_": "x.load_digits"},
    )  # fmt: skip
    seg = load(tmp_path / "b")
    assert seg.input_kind == "matrix"
    np.testing.assert_array_equal(seg.predict(dataset.X), est.labels_)
    with pytest.raises(ValueError, match="expected a matrix with 64 columns"):
        seg.predict(dataset.X[:, :10])
    import pandas as pd

    pd.DataFrame(dataset.X).to_csv(tmp_path / "pixels.csv", index=False)
    out = tmp_path / "out.csv"
    run_predict(tmp_path / "b", tmp_path / "pixels.csv", out, chunk_size=500, drift=True)
    frame = pd.read_csv(out)
    np.testing.assert_array_equal(frame["segment"], est.labels_)
    assert frame["id"].tolist() == list(range(len(X)))
    assert not json.loads((tmp_path / "out.drift.json").read_text())["resegment_advised"]


def test_write_assignments_and_an_earlier_bundle_survives_a_failed_save(trained, tmp_path):
    import pandas as pd

    from deepseg.baselines import AutoEpsDBSCAN
    from deepseg.bundle import save_bundle, write_assignments

    proba = np.array([[0.2, 0.8], [0.9, 0.1]])
    write_assignments(tmp_path / "a.csv", ids=["x", "y"], labels=[1, 0], proba=proba,
                      embedding=np.array([[1.0, 2.0], [3.0, 4.0]]))  # fmt: skip
    frame = pd.read_csv(tmp_path / "a.csv")
    assert list(frame.columns) == ["id", "segment", "confidence", "z_0", "z_1"]
    assert frame["confidence"].tolist() == [0.8, 0.9]
    write_assignments(tmp_path / "b.csv", ids=[1, 2], labels=[0, 0])
    assert pd.read_csv(tmp_path / "b.csv")["confidence"].tolist() == [1.0, 1.0]

    import shutil

    target = tmp_path / "bundle"
    shutil.copytree(trained.bundle("kmeans"), target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with pytest.raises(ValueError):
        save_bundle(
            target, estimator=AutoEpsDBSCAN().fit(trained.X), pipeline=trained.pipeline,
            dataset=trained.dataset, X=trained.X, method="dbscan", method_config={},
            data_config={},
        )  # fmt: skip
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    # and a successful save replaces it whole
    save_bundle(target, estimator=trained.estimators["gmm"], pipeline=trained.pipeline,
                dataset=trained.dataset, X=trained.X, method="gmm", method_config={},
                data_config={})  # fmt: skip
    assert load(target).method == "gmm"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv", "bundle"]
