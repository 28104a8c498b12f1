"""The loader of Gagolewski's clustering benchmark suite (NAME.data.gz + NAME.labelsK.gz)."""

import gzip
import re

import numpy as np
import pytest

from deepseg.data.clustering_benchmarks import available_datasets, load_clustering_benchmark
from deepseg.features.pipeline import FeaturePipeline
from tests.conftest import require_data
from tests.data.benchmark_suite_files import blobs, write_dataset


@pytest.fixture
def suite_root(tmp_path):
    X, y = blobs(10, 3, 3, seed=0)
    write_dataset(tmp_path / "toy", "clean", X, y)
    noisy = y.copy()
    noisy[[0, 11, 29]] = 0  # three reference noise points
    write_dataset(tmp_path / "toy", "noisy", X, [noisy, np.where(y == 3, 2, y)])
    return tmp_path


def test_reads_the_matrix_labels0_and_declares_numeric_columns(suite_root):
    d = load_clustering_benchmark(suite_root, battery="toy", name="clean")
    X, y = blobs(10, 3, 3, seed=0)
    assert d.name == "clean" and d.n_clusters == 3 and not d.is_matrix
    assert list(d.frame.columns) == ["x0", "x1", "x2"] and d.roles.numeric == ["x0", "x1", "x2"]
    np.testing.assert_allclose(d.frame.to_numpy(), X, rtol=1e-5)
    np.testing.assert_array_equal(d.labels, y)
    assert FeaturePipeline().fit_transform(d).shape == (30, 3)


def test_noise_label_0_is_dropped_or_kept_as_a_class(suite_root):
    dropped = load_clustering_benchmark(suite_root, battery="toy", name="noisy")
    assert len(dropped) == 27 and dropped.n_clusters == 3
    assert 0 not in dropped.labels
    assert not {0, 11, 29} & set(dropped.ids.tolist())  # ids are the rows of the files
    kept = load_clustering_benchmark(suite_root, battery="toy", name="noisy", noise="class")
    assert len(kept) == 30 and kept.n_clusters == 3  # noise is not a cluster to find
    assert (kept.labels == 0).sum() == 3


def test_another_reference_partition_by_number(suite_root):
    d = load_clustering_benchmark(suite_root, battery="toy", name="noisy", labels=1)
    assert d.n_clusters == 2 and len(d) == 30


def test_missing_dataset_battery_or_labels_name_the_file_and_the_choices(suite_root, tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape("Did you mean 'noisy'?")) as err:
        load_clustering_benchmark(suite_root, battery="toy", name="nosy")
    assert str(suite_root / "toy" / "nosy.data.gz") in str(err.value)
    assert "Datasets in" in str(err.value) and "clean, noisy" in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"Battery 'tyo' not found.*Did you mean 'toy'"):
        load_clustering_benchmark(suite_root, battery="tyo", name="clean")
    with pytest.raises(FileNotFoundError, match=r"noisy\.labels5\.gz.*noisy\.labels0\.gz"):
        load_clustering_benchmark(suite_root, battery="toy", name="noisy", labels=5)
    (suite_root / "toy" / "clean.labels0.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"clean\.labels0\.gz' does not exist"):
        load_clustering_benchmark(suite_root, battery="toy", name="clean")
    with pytest.raises(FileNotFoundError, match=re.escape("does not exist. Set data.path")):
        load_clustering_benchmark(tmp_path / "nowhere", battery="toy", name="clean")
    assert available_datasets(suite_root, "toy") == ["clean", "noisy"]


def test_malformed_files_and_options_are_refused(suite_root):
    folder = suite_root / "toy"
    with gzip.open(folder / "short.data.gz", "wt") as fh:
        fh.write("1 2\n3 4\n5 6\n")
    with gzip.open(folder / "short.labels0.gz", "wt") as fh:
        fh.write("1\n2\n")
    with pytest.raises(ValueError, match=re.escape("3 rows in short.data.gz but 2 labels")):
        load_clustering_benchmark(suite_root, battery="toy", name="short")
    with gzip.open(folder / "short.labels0.gz", "wt") as fh:
        fh.write("1\n1.5\n2\n")
    with pytest.raises(ValueError, match="integers >= 0"):
        load_clustering_benchmark(suite_root, battery="toy", name="short")
    with pytest.raises(ValueError, match="'noise' parameter"):
        load_clustering_benchmark(suite_root, battery="toy", name="clean", noise="keep")


def test_the_real_uci_wine():
    root = require_data("clustering_benchmarks_v1")
    d = load_clustering_benchmark(root, battery="uci", name="wine")
    assert d.frame.shape == (178, 13) and d.n_clusters == 3
    assert np.bincount(d.labels).tolist() == [0, 59, 71, 48]
    assert available_datasets(root, "uci") == [
        "ecoli", "glass", "ionosphere", "sonar", "statlog", "wdbc", "wine", "yeast",
    ]  # fmt: skip
