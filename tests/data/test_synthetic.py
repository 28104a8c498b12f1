import numpy as np
import pytest
from sklearn.cluster import KMeans

from deepseg.data.synthetic import make_synthetic_customers
from deepseg.features.blocks import NumericBlock
from deepseg.features.pipeline import FeaturePipeline
from deepseg.metrics import acc


def test_same_seed_same_table_and_defaults():
    a = make_synthetic_customers(n_samples=300, random_state=7)
    b = make_synthetic_customers(n_samples=300, random_state=7)
    c = make_synthetic_customers(n_samples=300, random_state=8)
    assert a.frame.equals(b.frame)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not a.frame.equals(c.frame)
    full = make_synthetic_customers()
    assert len(full) == 5000 and full.n_clusters == 6
    assert sorted(np.unique(full.labels)) == list(range(6))
    assert len(set(full.ids)) == 5000


def test_blocks_and_realistic_values():
    d = make_synthetic_customers(n_samples=2000, random_state=0)
    assert d.roles.numeric and d.roles.categorical and d.roles.text == ["products_text"]
    spend = d.frame["total_spend"]
    skew = ((spend - spend.mean()) ** 3).mean() / spend.std() ** 3
    assert skew > 1.0  # heavy right tail (measured 1.44 for this seed)
    block = NumericBlock(d.roles.numeric).fit(d.frame)
    logged = {c for c, m in zip(d.roles.numeric, block.log_mask_) if m}
    assert {"total_spend", "frequency", "recency_days"} <= logged
    assert (spend > 0).all()
    assert d.frame["return_rate"].between(0, 1).all() or d.frame["return_rate"].isna().any()
    assert d.frame[["avg_basket_value", "return_rate"]].isna().any().all()  # some missing
    # noise columns carry no segment signal
    means = d.frame.groupby(d.labels)["noise_uniform"].mean()
    assert means.max() - means.min() < 0.08


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_bad_n_samples(bad):
    with pytest.raises(ValueError, match="'n_samples' parameter of make_synthetic_customers"):
        make_synthetic_customers(n_samples=bad)


def _kmeans_acc(dataset, weights, method):
    pipe = FeaturePipeline(
        numeric={"weight": weights[0]},
        categorical={"weight": weights[1]},
        text={"weight": weights[2], "method": method},
    )
    X = pipe.fit_transform(dataset)
    labels = KMeans(dataset.n_clusters, n_init=10, random_state=0).fit_predict(X)
    return acc(dataset.labels, labels)


# TF-IDF in the default run; the default text method (sentence embeddings of 5,000 texts, about
# 40 s on a cold embedding cache) in the slow one
@pytest.mark.parametrize("method", ["tfidf", pytest.param("auto", marks=pytest.mark.slow)])
def test_every_block_carries_part_of_the_signal(method):
    """KMeans on the full pipeline reaches ACC >= 0.9; any single block alone scores lower."""
    d = make_synthetic_customers(random_state=1)
    full = _kmeans_acc(d, (1, 1, 1), method)
    alone = {
        "numeric": _kmeans_acc(d, (1, 0, 0), method),
        "categorical": _kmeans_acc(d, (0, 1, 0), method),
        "text": _kmeans_acc(d, (0, 0, 1), method),
    }
    # measured (seeds 0-2): full 0.983-0.986, each block alone 0.47-0.49
    assert full >= 0.9
    for block, score in alone.items():
        assert score < full - 0.2, (block, score, full)
