"""A small selector learned across datasets: does it choose better than ``model=auto``'s rule?

Issue 32 asked for this if hand-made rules plateau. Each candidate partition of a dataset and
seed is described by label-free signals, taken relative to K-Means' on the same dataset and
seed (the per-candidate signals of ``scripts/bench_auto_spaces.py``, ``<out>_signals.csv``:
agreement, NMI with the consensus, silhouette and neighbour-consistency ranks and values in
each candidate's space) and by the candidate's name. A regressor learns the candidate's ACC
minus K-Means' from the other datasets; on the held-out dataset the candidate with the highest
predicted gain is picked, unless its prediction beats K-Means' by no more than ``tau`` (then
K-Means stays).

Everything is fitted **leave one dataset out**: for each held-out dataset the regressor sees
only the others. ``tau`` is the tunable part: each ``<model>@<tau>`` column is one fixed value,
and the ``<model> (tau held out)`` column chooses it per fold by a nested leave-one-out over
the fold's own datasets (best mean ACC, never more than 3 points below K-Means on them, as
``bench_auto_lodo``; ties to the larger tau). Labels only train the selector on the other
datasets and score the picks.

    python scripts/bench_auto_selector.py SIGNALS_CSV --out selector.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_auto_lodo import FLOOR, SYNTHETIC, sections

SIGNALS = ["agreement", "nmi_consensus", "mean_rank", "knn_rank", "both_rank", "sil_raw",
           "knn_raw", "sil_ae", "knn_ae", "sil_dec", "knn_dec", "sil_manifold",
           "knn_manifold"]  # fmt: skip
TAUS = [0.0, 0.01, 0.02, 0.05]
ANCHOR = "kmeans"


def design(signals: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset, seed and candidate: its signals minus K-Means', its name one-hot,
    and (for training and scoring only) its ACC and its gain over K-Means."""
    names = sorted(signals["candidate"].unique())
    rows = []
    for (dataset, seed), group in signals.groupby(["dataset", "seed"]):
        anchor = group[group["candidate"] == ANCHOR].iloc[0]
        for _, row in group.iterrows():
            x = {f"d_{s}": row[s] - anchor[s] for s in SIGNALS if s in group}
            x.update({f"is_{n}": float(row["candidate"] == n) for n in names})
            x.update(dataset=dataset, seed=seed, candidate=row["candidate"], acc=row["acc"],
                     gain=row["acc"] - anchor["acc"])  # fmt: skip
            rows.append(x)
    return pd.DataFrame(rows)


def regressor(kind: str) -> object:
    if kind == "ridge":
        return Ridge(alpha=1.0)
    if kind == "forest":
        return RandomForestRegressor(100, min_samples_leaf=5, random_state=0, n_jobs=1)
    return GradientBoostingRegressor(n_estimators=100, max_depth=2, learning_rate=0.05,
                                     subsample=0.8, random_state=0)  # fmt: skip


def held_out(table: pd.DataFrame, columns: list[str], kind: str, datasets: list[str]
             ) -> pd.DataFrame:  # fmt: skip
    """ACC (median over seeds) of each tau's pick on each dataset, the selector fitted on the
    others in ``datasets``."""
    out = {}
    for dataset in datasets:
        train = table[table["dataset"].isin(datasets) & (table["dataset"] != dataset)]
        test = table[table["dataset"] == dataset].copy()
        mean, std = train[columns].mean(), train[columns].std().replace(0.0, 1.0)
        model = regressor(kind).fit((train[columns] - mean) / std, train["gain"])
        test["pred"] = model.predict((test[columns] - mean) / std)
        row = {}
        for tau in TAUS:
            accs = []
            for _, group in test.groupby("seed"):
                best = group.loc[group["pred"].idxmax()]
                anchor = group[group["candidate"] == ANCHOR].iloc[0]
                accs.append(best["acc"] if best["pred"] - anchor["pred"] > tau else anchor["acc"])
            row[f"{kind}@{tau:g}"] = float(np.median(accs))
        out[dataset] = row
    return pd.DataFrame(out).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("signals", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", nargs="*", default=["ridge", "forest", "boosting"])
    args = parser.parse_args()
    table = design(pd.read_csv(args.signals))
    columns = [c for c in table if c.startswith(("d_", "is_"))]
    datasets = sorted(table["dataset"].unique())
    medians = table.groupby(["dataset", "candidate"])["acc"].median().unstack()
    result = pd.DataFrame({ANCHOR: medians[ANCHOR]})
    result["oracle"] = table.groupby(["dataset", "seed"])["acc"].max().groupby("dataset").median()
    for kind in args.models:
        fixed = held_out(table, columns, kind, datasets)
        result = result.join(fixed)
        chosen = {}
        for dataset in datasets:  # tau per fold, by a nested leave-one-out on the fold's own
            inner = held_out(table, columns, kind, [d for d in datasets if d != dataset])
            worst = inner.sub(result.loc[inner.index, ANCHOR], axis=0).min()
            safe = [c for c in inner if worst[c] >= -FLOOR - 1e-9] or list(inner)
            best = max(safe, key=lambda c, i=inner: (round(float(i[c].mean()), 6),
                                                     float(c.split("@")[1])))  # fmt: skip
            chosen[dataset] = best
            result.loc[dataset, f"{kind} (tau held out)"] = fixed.loc[dataset, best]
        result[f"tau ({kind})"] = pd.Series(chosen).str.split("@").str[1]
        print(kind, "done", flush=True)
    scored = result.drop(columns=[c for c in result if c.startswith("tau (")]).astype(float)
    real = [d for d in scored.index if d not in SYNTHETIC]
    lines = [
        f"# A learned selector, leave one dataset out ({len(scored)} datasets, {len(real)} real)",
        "",
        f"Signals: `{args.signals}`. ACC, median over seeds; every column is held out (the "
        "selector never sees the dataset it picks for); `(tau held out)` also chooses tau on "
        "the fold's own datasets.",
        "",
        *sections(result, scored, real),
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines[-12:]))


if __name__ == "__main__":
    main()
