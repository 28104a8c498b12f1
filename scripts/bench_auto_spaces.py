"""Label-free signals of ``model=auto`` beyond agreement: each partition scored in every space.

A study over the partitions of ``scripts/collect_partitions.py`` (which keeps each deep
candidate's embedding, ``latent``, and n2d's UMAP embedding, ``manifold``), in the leave-one-
dataset-out protocol of ``scripts/bench_auto_lodo.py`` (imported from it: the same folds, the
same 3-point floor, the same summaries).

Spaces: the features themselves (``raw``), the pretrained autoencoder's embedding (``ae``:
ae_kmeans' latent), DEC's fine-tuned embedding (``dec``) and n2d's manifold (``manifold``).
Each candidate's partition gets a silhouette in each space (a seeded sample of at most
``--sample`` rows, the same rows for every partition). A partition scores well in its own space
by construction (n2d's in the manifold, K-Means' in the features); one that scores well in the
spaces of the others is good whoever looks, after ACE (Wang and Ye 2024, arXiv 2403.14830), which
aggregates ranks of internal indices over the candidates' spaces.

Rules (labels only score the picks):

* ``stand_in@m``: ``bench_auto_lodo``'s rule of that name (the default before stop 41: the
  candidate nearest to a winning consensus stands in);
* ``spaces``: the partition with the best mean rank over the spaces (no tunable part);
* ``anchor_spaces@m``: K-Means unless the best mean rank beats K-Means' by ``m`` ranks (as a
  share of the candidates);
* ``stand_spaces@m``: the default's decision to leave K-Means (the consensus wins by ``m`` in
  agreement), then, instead of the candidate nearest to the consensus, the candidate with the
  best mean rank over the spaces among those whose NMI with the consensus is within ``NEAR`` of
  the nearest's;
* ``near_anchor@m``: the candidate nearest to the consensus (NMI) unless K-Means' NMI with the
  consensus is within ``m`` of it (agreement does not decide);
* ``gate_spaces@m``: the default's decision to leave K-Means, then the best mean rank of all.

The same with a second internal index, the **neighbour consistency** of a partition in a space
(how often a row's 10 nearest neighbours share its segment, beyond what the segment sizes give
by chance): ``knn``, ``anchor_knn@m``, ``gate_knn@m``; and with the ranks of both indices in
every space: ``both``, ``anchor_both@m``, ``gate_both@m``, ``stand_both<near>@m``;
``stand_knn<near>@m`` chooses the stand-in by the neighbour consistency ranks alone.
``knn_raw`` and ``sil_raw`` use the features' space alone. Per-candidate signals go to
``<out>_signals.csv``.

    python scripts/bench_auto_spaces.py PARTITIONS_DIR --out spaces.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score, silhouette_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_auto_lodo import (
    CANDIDATES,
    MARGINS,
    SYNTHETIC,
    families_for,
    lodo,
    markdown,
    summary,
)

from deepseg.auto import CONSENSUS, choose, consensus_partition, score_candidates
from deepseg.metrics import acc

SPACES = {"raw": None, "ae": "ae_kmeans", "dec": "dec", "manifold": "n2d"}
#: candidates whose NMI with the consensus is within this of the nearest one's are near-ties
NEAR = [0.01, 0.02, 0.05, 0.1]
RANK_MARGINS = [0.0, 0.1, 0.2, 0.3, 0.5, 1.01]


def spaces_of(folder: Path, seed: int, X: np.ndarray) -> dict[str, np.ndarray]:
    """The feature matrix and the stored embeddings of one seed."""
    out = {"raw": X}
    for name, method in SPACES.items():
        if method is None:
            continue
        path = folder / f"{method}__{seed}.npz"
        if path.exists():
            data = np.load(path)
            key = "manifold" if name == "manifold" else "latent"
            if key in data:
                out[name] = data[key]
    return out


def silhouettes(parts: dict[str, np.ndarray], spaces: dict[str, np.ndarray], rows: np.ndarray
                ) -> pd.DataFrame:  # fmt: skip
    """Silhouette of each partition (rows) in each space (columns), on the same sample."""
    table = {}
    for space, Z in spaces.items():
        Zs = np.asarray(Z, dtype=np.float64)[rows]
        col = {}
        for name, labels in parts.items():
            lab = labels[rows]
            col[name] = silhouette_score(Zs, lab) if 1 < len(np.unique(lab)) < len(lab) else -1.0
        table[space] = col
    return pd.DataFrame(table)


def knn_consistency(parts: dict[str, np.ndarray], spaces: dict[str, np.ndarray],
                    rows: np.ndarray, n_neighbors: int = 10) -> pd.DataFrame:  # fmt: skip
    """How often a row's nearest neighbours (in each space) share its segment, beyond chance:
    (observed - expected) / (1 - expected), expected = the sum of squared segment shares."""
    from sklearn.neighbors import NearestNeighbors

    table = {}
    for space, Z in spaces.items():
        Zs = np.asarray(Z, dtype=np.float64)[rows]
        nn = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(Zs)
        idx = nn.kneighbors(Zs, return_distance=False)[:, 1:]
        col = {}
        for name, labels in parts.items():
            lab = labels[rows]
            observed = float((lab[idx] == lab[:, None]).mean())
            shares = np.unique(lab, return_counts=True)[1] / len(lab)
            expected = float((shares**2).sum())
            col[name] = (observed - expected) / max(1.0 - expected, 1e-12)
        table[space] = col
    return pd.DataFrame(table)


def mean_rank(sil: pd.DataFrame) -> pd.Series:
    """Each partition's mean rank over the spaces, scaled to [0, 1] (1: first everywhere)."""
    ranks = sil.rank(axis=0, ascending=True, method="average")  # the best has the top rank
    return (ranks.mean(axis=1) - 1) / max(len(sil) - 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("partitions", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sample", type=int, default=2000)
    args = parser.parse_args()
    families = families_for(CANDIDATES)
    rows, details = [], []
    for folder in sorted(p for p in args.partitions.iterdir() if (p / "data.npz").exists()):
        data = np.load(folder / "data.npz")
        y, k, X = data["y"], int(data["k"]), data["X"]
        seeds = sorted({int(p.stem.split("__")[1]) for p in folder.glob("kmeans__*.npz")})
        for seed in seeds:
            parts = {
                m: np.load(folder / f"{m}__{seed}.npz")["labels"]
                for m in CANDIDATES
                if (folder / f"{m}__{seed}.npz").exists()
            }
            if set(parts) != set(CANDIDATES):
                print(folder.name, seed, "incomplete, skipped", flush=True)
                continue
            order = list(parts)
            fam = {n: families[n] for n in parts}
            cons = consensus_partition(parts, fam, k, seed)
            agree = score_candidates(parts, cons)
            nmi_cons = {n: normalized_mutual_info_score(cons, p) for n, p in parts.items()}
            rng = np.random.default_rng(0)
            sample = np.sort(rng.choice(len(y), min(args.sample, len(y)), replace=False))
            spaces = spaces_of(folder, seed, X)
            sil = silhouettes(parts, spaces, sample)
            knn = knn_consistency(parts, spaces, sample)
            rank = mean_rank(sil)
            krank = mean_rank(knn)
            both = mean_rank(pd.concat([sil.add_prefix("s_"), knn.add_prefix("k_")], axis=1))
            scores = {m: acc(y, p) for m, p in parts.items()}
            scores[CONSENSUS] = acc(y, cons)
            rec = {"dataset": folder.name, "seed": seed, **scores,
                   "oracle": max(v for m, v in scores.items() if m != CONSENSUS)}  # fmt: skip
            pick = {
                "spaces": rank.idxmax(),
                "knn": krank.idxmax(),
                "both": both.idxmax(),
                "knn_raw": knn["raw"].idxmax(),
                "sil_raw": sil["raw"].idxmax(),
            }
            for m in RANK_MARGINS:
                for name, r in (("anchor_knn", krank), ("anchor_both", both)):
                    best = r.idxmax()
                    pick[f"{name}@{m:g}"] = best if r[best] - r["kmeans"] >= m - 1e-9 else "kmeans"
            for m in RANK_MARGINS:
                best = rank.idxmax()
                pick[f"anchor_spaces@{m:g}"] = (
                    best if rank[best] - rank["kmeans"] >= m - 1e-9 else "kmeans"
                )
            nearest = max(order, key=lambda n: nmi_cons[n])
            for m in [*MARGINS, 0.2, 0.3]:
                # the candidate nearest to the consensus unless K-Means is nearly as near
                lead = nmi_cons[nearest] - nmi_cons["kmeans"]
                pick[f"near_anchor@{m:g}"] = nearest if lead >= m - 1e-9 else "kmeans"
            for m in MARGINS:
                won = choose(agree, {**fam, CONSENSUS: CONSENSUS}, m, [*order, CONSENSUS])[0]
                nearest = max(order, key=lambda n: nmi_cons[n])
                pick[f"stand_in@{m:g}"] = nearest if won == CONSENSUS else won
                pick[f"gate_spaces@{m:g}"] = rank.idxmax() if won == CONSENSUS else won
                pick[f"gate_knn@{m:g}"] = krank.idxmax() if won == CONSENSUS else won
                pick[f"gate_both@{m:g}"] = both.idxmax() if won == CONSENSUS else won
                for near in NEAR:
                    close = [n for n in order if nmi_cons[n] >= nmi_cons[nearest] - near]
                    chosen = max(close, key=lambda n: (rank[n], nmi_cons[n]))
                    pick[f"stand_spaces{near:g}@{m:g}"] = chosen if won == CONSENSUS else won
                    chosen = max(close, key=lambda n: (both[n], nmi_cons[n]))
                    pick[f"stand_both{near:g}@{m:g}"] = chosen if won == CONSENSUS else won
                    chosen = max(close, key=lambda n: (krank[n], nmi_cons[n]))
                    pick[f"stand_knn{near:g}@{m:g}"] = chosen if won == CONSENSUS else won
            rec.update({r: scores[p] for r, p in pick.items()})
            rec.update({f"pick:{r}": p for r, p in pick.items()})
            rows.append(rec)
            for m in order:
                details.append({"dataset": folder.name, "seed": seed, "candidate": m,
                                "acc": scores[m], "agreement": agree.get(m),
                                "nmi_consensus": nmi_cons[m], "mean_rank": rank[m],
                                "knn_rank": krank[m], "both_rank": both[m],
                                **{f"sil_{s}": sil.loc[m, s] for s in sil.columns},
                                **{f"knn_{s}": knn.loc[m, s] for s in knn.columns}})  # fmt: skip
        print(folder.name, "done", flush=True)
    raw = pd.DataFrame(rows)
    raw.to_csv(args.out.with_suffix(".csv"), index=False)
    pd.DataFrame(details).to_csv(args.out.with_name(args.out.stem + "_signals.csv"), index=False)
    numeric = [c for c in raw if not c.startswith("pick:") and c not in ("dataset", "seed")]
    medians = raw.groupby("dataset")[numeric].median()
    real = [d for d in medians.index if d not in SYNTHETIC]
    families_of_rules = sorted({c.split("@")[0] for c in medians if "@" in c})
    table = medians[
        [*CANDIDATES, CONSENSUS, "oracle", "spaces", "knn", "both", "knn_raw", "sil_raw"]
    ].copy()
    held = {}
    for rule in families_of_rules:
        cols = [c for c in medians if c.split("@")[0] == rule]
        # the folds are chosen on the real datasets only: the synthetic shapes are not data
        h, chosen, insample = lodo(medians.loc[real], cols)
        held[rule] = (h, chosen, insample)
        table.loc[real, f"{rule} (held out)"] = h
        table.loc[real, f"{rule} margin"] = chosen.str.split("@").str[1]
    scored = table[[c for c in table if not c.endswith("margin")]].astype(float)
    gap = (scored.loc[real, "oracle"].to_numpy()[:, None] - scored.loc[real]).mean()
    ruled = [c for c in medians if "@" in c or c in ("spaces", "knn", "both")]
    lines = [
        f"# auto's signals in every space ({len(medians)} datasets, {len(real)} real)",
        "",
        f"Partitions `{args.partitions}`; silhouettes on a seeded sample of at most "
        f"{args.sample} rows. ACC, median over seeds; held out: the tunable part chosen on the "
        "other real datasets (3-point floor, as bench_auto_lodo.py).",
        "",
        markdown(table),
        "",
        "## Real datasets",
        "",
        markdown(summary(scored.loc[real].dropna(axis=1), real)),
        "",
        "## Gap to the best candidate (real datasets)",
        "",
        markdown(gap.rename("mean gap to oracle")),
        "",
        "## In-sample mean ACC of every rule (real datasets)",
        "",
        markdown(medians.loc[real, ruled].mean().rename("mean acc")),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
