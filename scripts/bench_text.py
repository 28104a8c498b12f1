"""Text past the embedding: auto's choice on directions and the second view, on collected
partitions.

For each text corpus of ``suite=text`` and each seed, this reads the candidates' partitions that
``scripts/collect_partitions.py --suite text`` saved, fits the cosine candidate
(average-linkage agglomerative clustering on cosine distance), chooses among them as
``model=auto`` does on directions (the highest cosine silhouette, :func:`deepseg.auto.
cosine_silhouette`), and refines K-Means' partition and the choice with the second view
(:func:`deepseg.refine.second_view`, the benchmark's defaults). Labels only score.

    python scripts/collect_partitions.py --suite text --out PARTS
    python scripts/bench_text.py PARTS --out text.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from deepseg.auto import cosine_silhouette
from deepseg.baselines import LimitedAgglomerative
from deepseg.cli.common import config_dir
from deepseg.features.pipeline import FeaturePipeline
from deepseg.metrics import acc
from deepseg.refine import second_view
from deepseg.tasks.common import to_container
from deepseg.tasks.run import load_dataset
from deepseg.tasks.suite import selected_datasets

COSINE = "agglomerative_cosine"
#: relative margins by which a candidate's cosine silhouette must beat K-Means' (anchored rule)
MARGINS = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2]


def anchored(sil: dict[str, float], margin: float) -> str:
    """K-Means unless the highest cosine silhouette beats its own by ``margin`` (relative)."""
    top = max(sil, key=lambda n: sil[n])
    if top != "kmeans" and sil[top] >= sil["kmeans"] + margin * abs(sil["kmeans"]):
        return top
    return "kmeans"


def lodo(table: pd.DataFrame) -> pd.DataFrame:
    """Each dataset held out: the margin with the best mean refined ACC on the others (the
    smallest on ties), applied to the held-out dataset."""
    med = table.groupby(["dataset", "margin"])["refined"].median().unstack()
    rows = []
    for held in med.index:
        others = med.drop(index=held).mean()
        best = others[others >= others.max() - 1e-12].index.min()
        rows.append({"dataset": held, "margin": best, "held_out": med.loc[held, best]})
    return pd.DataFrame(rows)


def documents(entry: dict) -> list[str]:
    dataset = load_dataset(entry["data"])
    assert dataset.frame is not None
    return FeaturePipeline._text(dataset.frame, list(dataset.roles.text))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("parts", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    with initialize_config_dir(config_dir(), version_base=None):
        cfg = compose("suite", overrides=["suite=text"])
    sv_opts = {k: v for k, v in to_container(cfg.second_view).items() if k != "enabled"}
    rows: list[dict] = []
    margin_rows: list[dict] = []
    for key, entry in selected_datasets(cfg).items():
        folder = args.parts / key
        if not (folder / "data.npz").exists():
            print(key, "no partitions: skipped", flush=True)
            continue
        data = np.load(folder / "data.npz")
        X, y, k = data["X"], data["y"], int(data["k"])
        docs = documents(entry)
        for seed in args.seeds:
            parts = {
                f.name.split("__")[0]: np.load(f)["labels"]
                for f in sorted(folder.glob(f"*__{seed}.npz"))
            }
            if "kmeans" not in parts:
                continue
            start = time.perf_counter()
            parts[COSINE] = LimitedAgglomerative(
                k, linkage="average", metric="cosine", random_state=seed
            ).fit_predict(X)
            cosine_seconds = time.perf_counter() - start
            sil = {n: cosine_silhouette(X, p, seed) for n, p in parts.items()}
            chosen = max(sil, key=lambda n: sil[n])
            start = time.perf_counter()
            refined = second_view(X, docs, parts[chosen], random_state=seed, **sv_opts)
            sv_seconds = time.perf_counter() - start
            refined_km = second_view(X, docs, parts["kmeans"], random_state=seed, **sv_opts)
            accs = {n: acc(y, p) for n, p in parts.items()}
            done = {chosen: acc(y, refined.labels), "kmeans": acc(y, refined_km.labels)}
            for margin in MARGINS:
                pick = anchored(sil, margin)
                if pick not in done:
                    done[pick] = acc(
                        y, second_view(X, docs, parts[pick], random_state=seed, **sv_opts).labels
                    )
                margin_rows.append(
                    {"dataset": key, "seed": seed, "margin": margin, "chosen": pick,
                     "acc": accs[pick], "refined": done[pick]}
                )  # fmt: skip
            best = max(accs, key=lambda n: accs[n])
            rows.append(
                {
                    "dataset": key, "seed": seed, "candidates": len(parts),
                    "kmeans": accs["kmeans"], "kmeans+sv": acc(y, refined_km.labels),
                    "chosen": chosen, "auto": accs[chosen], "auto+sv": acc(y, refined.labels),
                    "moved": refined.moved, "rounds": refined.n_iter,
                    "best": best, "best_acc": accs[best],
                    "cosine_seconds": cosine_seconds, "sv_seconds": sv_seconds,
                }
            )  # fmt: skip
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    lines = [table.to_csv(index=False)]
    if not table.empty:
        med = table.groupby("dataset", sort=False)[
            ["kmeans", "kmeans+sv", "auto", "auto+sv", "best_acc", "moved", "rounds"]
        ].median()
        med.insert(0, "seeds", table.groupby("dataset", sort=False).size())
        lines += ["", "medians over seeds:", med.round(3).to_csv()]
    if margin_rows:
        margins = pd.DataFrame(margin_rows)
        lines += ["", "anchored rule (K-Means unless beaten by a relative margin), medians:"]
        lines.append(
            margins.groupby(["dataset", "margin"])[["acc", "refined"]].median().round(3).to_csv()
        )
        lines += ["", "margin chosen leaving one dataset out:", lodo(margins).round(3).to_csv()]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
