"""``synthetic_customers``: a generated customer table with known segments.

Every segment is the intersection of three coarser groupings, one per feature block, so that no
block alone can recover the segments but the blocks together can:

* behavioural numbers (spend, frequency, recency, ...) separate segments {0,1} / {2,3} / {4,5};
* categorical attributes (channel, contract, payment) separate {5,0} / {1,2} / {3,4};
* product words in the text field separate {0,3} / {1,4} / {2,5}.

Each block alone can reach an accuracy of about one half; any two blocks identify the segment.
Noise columns (numeric and categorical) carry no signal. The numeric features are heavy-tailed
(log-normal spend and basket size, over-dispersed counts) and a few values are missing, so the
feature pipeline has real work to do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepseg.data.base import ColumnRoles, Dataset
from deepseg.options import check_n_clusters

# Behavioural profile of each numeric group: (log spend, mean frequency, mean recency in days,
# log basket, mean return rate, mean tenure in months, mean web sessions per month)
_NUMERIC_GROUPS = [
    (7.2, 24.0, 12.0, 4.3, 0.03, 40.0, 18.0),  # loyal, high-spend, recent
    (5.9, 8.0, 55.0, 3.6, 0.08, 20.0, 7.0),  # regular, mid-spend
    (4.5, 2.0, 210.0, 3.0, 0.18, 8.0, 2.0),  # occasional, low-spend, lapsed
]

_CHANNELS = ["app", "web", "store", "phone"]
_CONTRACTS = ["annual", "monthly", "none"]
_PAYMENTS = ["card", "paypal", "invoice", "cash"]
# Per categorical group: the favoured channel, contract and payment
_CATEGORICAL_GROUPS = [
    ("app", "annual", "card"),
    ("store", "none", "cash"),
    ("web", "monthly", "paypal"),
]
_COUNTRIES = [
    "United Kingdom", "Germany", "France", "Spain", "Netherlands", "Italy", "Belgium",
    "Portugal", "Sweden", "Norway", "Iceland", "Malta",
]  # fmt: skip
_COUNTRY_WEIGHTS = np.array([40, 14, 12, 9, 7, 6, 4, 3, 2.5, 1.5, 0.6, 0.4])

_TEXT_VOCABULARIES = [
    "garden plant pot seed watering lantern outdoor bird feeder parasol herb trowel",
    "toy kids puzzle crayon doll robot dinosaur stickers baby teddy balloon game",
    "kitchen mug teapot baking spoon apron cake tin jar cutlery bowl recipe",
]
_COMMON_WORDS = "gift set pack vintage red blue white small large bag box heart christmas card"

_SEGMENT_SHARES = np.array([0.24, 0.20, 0.17, 0.15, 0.13, 0.11])


def _groups(segment: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numeric, categorical and text group of each segment (segments 0..5)."""
    base = segment % 6
    return base // 2, ((base + 1) % 6) // 2, base % 3


def make_synthetic_customers(
    n_samples: int = 5000,
    n_clusters: int = 6,
    random_state: int = 0,
    missing_rate: float = 0.02,
    text_signal: float = 0.45,
    name: str = "synthetic_customers",
) -> Dataset:
    """Generate the synthetic customer table.

    Args:
        n_samples: number of customers.
        n_clusters: number of segments. The design is built for 6; other values reuse the same
            three groupings (segment ``s`` behaves like segment ``s % 6``), so only 6 is fully
            identifiable.
        random_state: seed; the same seed gives the identical table.
        missing_rate: share of missing values injected into some numeric columns.
        text_signal: probability that a product word comes from the segment's vocabulary rather
            than from the shared one.
        name: dataset name.

    Returns:
        A Dataset with a frame of numeric, categorical and text columns and labels 0..k-1.
    """
    if not isinstance(n_samples, int | np.integer) or n_samples < 1:
        raise ValueError(
            "The 'n_samples' parameter of make_synthetic_customers must be an int in the range "
            f"[1, inf). Got {n_samples!r} instead."
        )
    # the design has at least two segments
    check_n_clusters(n_clusters, owner="make_synthetic_customers", at_least=2)
    rng = np.random.default_rng(random_state)
    shares = np.resize(_SEGMENT_SHARES, n_clusters)
    shares = shares / shares.sum()
    segment = rng.choice(n_clusters, size=n_samples, p=shares)
    g_num, g_cat, g_txt = _groups(segment)

    prof = np.array(_NUMERIC_GROUPS)[g_num]
    spend = rng.lognormal(prof[:, 0], 0.45)
    frequency = rng.negative_binomial(4, 4 / (4 + prof[:, 1])) + 1
    recency = rng.gamma(2.0, prof[:, 2] / 2.0)
    basket = rng.lognormal(prof[:, 3], 0.35)
    return_rate = rng.beta(2.0, 2.0 * (1 - prof[:, 4]) / prof[:, 4])
    tenure = rng.gamma(3.0, prof[:, 5] / 3.0)
    sessions = rng.poisson(rng.gamma(2.0, prof[:, 6] / 2.0))

    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(n_samples)],
            "total_spend": spend.round(2),
            "frequency": frequency.astype(np.int64),
            "recency_days": recency.round(1),
            "avg_basket_value": basket.round(2),
            "return_rate": return_rate.round(4),
            "tenure_months": tenure.round(1),
            "web_sessions": sessions.astype(np.int64),
            # Noise: no relation to the segments
            "age": rng.normal(42, 12, n_samples).clip(18, 90).round(0),
            "noise_score": rng.lognormal(0.0, 1.0, n_samples).round(3),
            "noise_uniform": rng.uniform(0, 1, n_samples).round(4),
        }
    )
    for col in ("avg_basket_value", "return_rate", "tenure_months"):
        mask = rng.random(n_samples) < missing_rate
        frame.loc[mask, col] = np.nan

    fav = np.array(_CATEGORICAL_GROUPS, dtype=object)[g_cat]
    frame["channel"] = _pick_favoured(rng, _CHANNELS, fav[:, 0], 0.7)
    frame["contract"] = _pick_favoured(rng, _CONTRACTS, fav[:, 1], 0.75)
    frame["payment"] = _pick_favoured(rng, _PAYMENTS, fav[:, 2], 0.65)
    frame["country"] = rng.choice(
        _COUNTRIES, size=n_samples, p=_COUNTRY_WEIGHTS / _COUNTRY_WEIGHTS.sum()
    )
    frame["newsletter"] = rng.choice(["yes", "no"], size=n_samples)  # noise

    vocabularies = [v.split() for v in _TEXT_VOCABULARIES]
    common = _COMMON_WORDS.split()
    n_words = rng.integers(5, 13, size=n_samples)
    texts = []
    for i in range(n_samples):
        own = rng.random(n_words[i]) < text_signal
        words = np.where(
            own,
            rng.choice(vocabularies[g_txt[i]], size=n_words[i]),
            rng.choice(common, size=n_words[i]),
        )
        texts.append(" ".join(words))
    frame["products_text"] = texts

    roles = ColumnRoles(
        id="customer_id",
        numeric=[
            "total_spend",
            "frequency",
            "recency_days",
            "avg_basket_value",
            "return_rate",
            "tenure_months",
            "web_sessions",
            "age",
            "noise_score",
            "noise_uniform",
        ],
        categorical=["channel", "contract", "payment", "country", "newsletter"],
        text=["products_text"],
    )
    ids = frame.pop("customer_id").to_numpy(dtype=object)
    return Dataset(
        name=name,
        ids=ids,
        frame=frame,
        labels=segment.astype(np.int64),
        roles=roles,
        n_clusters=n_clusters,
    )


def _pick_favoured(
    rng: np.random.Generator, options: list[str], favoured: np.ndarray, p_favoured: float
) -> np.ndarray:
    """Each row takes its favoured option with probability p, else a uniform draw."""
    other = rng.choice(options, size=len(favoured))
    return np.where(rng.random(len(favoured)) < p_favoured, favoured, other)
