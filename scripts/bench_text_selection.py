"""How ``model=auto`` chooses on directions (embedded text), held out one corpus at a time.

Reads the candidates' partitions that ``scripts/collect_partitions.py --suite text`` kept, refines
every one with the second view (the default options, as ``deepseg-suite`` does), and scores
label-free rules by the refined ACC of the partition each rule picks: the silhouette alone (the
rule before issue 31's last change) and :func:`deepseg.auto.choose_on_directions` (near-ties in
cosine silhouette go to the most evenly sized partition) for a grid of ``near``, whose value is
chosen on three corpora and scored on the fourth. Labels score the picks; no rule reads them.

    python scripts/collect_partitions.py --out PARTS --suite text --seeds 0 1 2 \\
        --methods kmeans gmm agglomerative spectral ae_kmeans dec idec n2d agglomerative_cosine
    python scripts/bench_text_selection.py PARTS --out text_selection.csv

Writes ``--out`` (one row per corpus, seed and candidate: silhouette, evenness, ACC before and
after the second view; refined labels are cached beside the partitions) and ``<out>_rules.csv``,
also printed: per corpus the median over seeds of K-Means, each rule, the held-out rule, and
the best candidate per seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from deepseg.auto import choose_on_directions, cosine_silhouette, evenness
from deepseg.cli.common import config_dir
from deepseg.features.pipeline import FeaturePipeline
from deepseg.metrics import evaluate
from deepseg.tasks.common import to_container
from deepseg.tasks.run import embedded_documents, load_dataset, refine_labels
from deepseg.tasks.suite import benchmark_config, selected_datasets

ORDER = ["kmeans", "gmm", "agglomerative", "spectral", "ae_kmeans", "dec", "idec", "n2d",
         "agglomerative_cosine"]  # fmt: skip
GRID = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2]


def documents_of(data_dir: str) -> dict[str, tuple[list[str], dict]]:
    """Each text corpus's documents and second-view options, as the suite embeds them."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="suite", overrides=["suite=text", f"paths.data_dir={data_dir}"])
    out = {}
    for key, entry in selected_datasets(cfg).items():
        bench = benchmark_config(cfg, entry)
        dataset = load_dataset(to_container(bench.data))
        pipeline = FeaturePipeline(**to_container(bench.features))
        pipeline.fit_transform(dataset)
        out[key] = (embedded_documents(pipeline, dataset), to_container(bench.second_view))
    return out


def rows_of(parts: Path, data_dir: str) -> pd.DataFrame:
    rows = []
    for key, (docs, options) in documents_of(data_dir).items():
        data = np.load(parts / key / "data.npz")
        X, y, k = data["X"], data["y"], int(data["k"])
        for path in sorted((parts / key).glob("*__*.npz")):
            method, seed = path.stem.rsplit("__", 1)
            if method not in ORDER or ".tmp" in path.name:
                continue
            labels = np.load(path)["labels"]
            cache = path.with_name(f"{path.stem}.refined.npy")
            if cache.exists():
                refined = np.load(cache)
            else:
                refined, _ = refine_labels(X, docs, labels, options, int(seed))
                np.save(cache, refined)
            rows.append({
                "corpus": key, "method": method, "seed": int(seed), "k": k,
                "silhouette": cosine_silhouette(X, labels, int(seed)),
                "evenness": evenness(labels, k),
                "acc": evaluate(X, labels, y, metrics=["acc"])["acc"],
                "acc_refined": evaluate(X, refined, y, metrics=["acc"])["acc"],
            })  # fmt: skip
    return pd.DataFrame(rows)


def pick(group: pd.DataFrame, near: float | None) -> pd.Series:
    """The candidate a rule picks in one (corpus, seed): None is the silhouette alone."""
    order = [m for m in ORDER if m in set(group["method"])]
    g = group.set_index("method")
    sil = g["silhouette"].to_dict()
    if near is None:
        chosen = max(order, key=lambda m: (sil[m], -order.index(m)))
    else:
        chosen = choose_on_directions(sil, g["evenness"].to_dict(), order, near)[0]
    return g.loc[chosen]


def medians(table: pd.DataFrame, near: float | None, corpora: list[str]) -> dict[str, float]:
    out = {}
    for corpus in corpora:
        part = table[table["corpus"] == corpus]
        out[corpus] = float(np.median([pick(g, near)["acc_refined"]
                                       for _, g in part.groupby("seed")]))  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("partitions", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data-dir", default="../shared/data")
    args = parser.parse_args()
    table = rows_of(args.partitions, args.data_dir)
    table.to_csv(args.out, index=False)
    corpora = list(dict.fromkeys(table["corpus"]))
    kmeans = {c: float(table[(table.corpus == c) & (table.method == "kmeans")]["acc_refined"]
                       .median()) for c in corpora}  # fmt: skip
    lines = {"kmeans (refined)": kmeans, "silhouette alone": medians(table, None, corpora)}
    for near in GRID:
        lines[f"near={near:g}"] = medians(table, near, corpora)
    held, chosen = {}, {}
    for corpus in corpora:  # near chosen on the other corpora: their mean refined ACC
        train = [c for c in corpora if c != corpus]
        best = max(GRID, key=lambda d: (np.mean(list(medians(table, d, train).values())), -d))
        chosen[corpus] = best
        held[corpus] = medians(table, best, [corpus])[corpus]
    lines["held out (near chosen on the other corpora)"] = held
    lines["best candidate per seed"] = {
        c: float(np.median([g["acc_refined"].max()
                            for _, g in table[table.corpus == c].groupby("seed")]))
        for c in corpora
    }  # fmt: skip
    frame = pd.DataFrame(lines).T.round(3)
    frame.to_csv(args.out.with_name(f"{args.out.stem}_rules.csv"), index_label="rule")
    print(frame.to_string())
    print("near chosen per held-out corpus:", chosen)


if __name__ == "__main__":
    main()
