"""Deep methods on MNIST: the table of docs/benchmarks.md.

Two settings, as in the issue and the papers:
* the 10,000 test images, 3 seeds (median reported), one pretrained autoencoder per seed shared by
  every method;
* all 70,000 images, one seed, one shared pretrained autoencoder.

Labels only score the results. Writes a Markdown table and the raw rows (CSV).

Usage:
    python scripts/bench_mnist.py --setting test --out docs/mnist_test
    python scripts/bench_mnist.py --setting all --seeds 0 --out docs/mnist_all
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from deepseg.data.images import load_mnist
from deepseg.deep import DCN, DEC, IDEC, AEKMeans
from deepseg.deep.skeleton import pretrain_autoencoder
from deepseg.features.pipeline import FeaturePipeline
from deepseg.metrics import acc, ari, nmi
from deepseg.tasks.common import git_commit

AUTOENCODER = {"hidden_dims": [500, 500, 2000], "latent_dim": 10}


def methods() -> dict[str, type]:
    out: dict[str, type] = {"ae_kmeans": AEKMeans, "dec": DEC, "idec": IDEC, "dcn": DCN}
    try:
        import umap  # noqa: F401

        from deepseg.deep import N2D

        out["n2d"] = N2D
    except ImportError:
        pass
    return out


def markdown(table: pd.DataFrame) -> str:
    header = ["method", *table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([str(i), *map(str, row)]) + " |" for i, row in table.iterrows()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--setting", choices=["test", "all"], default="test")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pretrain-epochs", type=int, default=50)
    parser.add_argument("--pretrain-lr-schedule", choices=["constant", "cosine"], default="cosine")
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument(
        "--init",
        choices=["kmeans", "umap"],
        default="kmeans",
        help="first centres of dec, idec and dcn (umap: N2D's clusters; needs the umap extra)",
    )
    parser.add_argument("--out", default="mnist_bench")
    args = parser.parse_args()

    data = load_mnist(args.data_dir, split=args.setting)
    X = FeaturePipeline().fit_transform(data)
    available = methods()
    chosen = args.methods or list(available)
    commit = git_commit()  # of the code this run imported, not of whatever is checked out later
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        pretrain = {
            "epochs": args.pretrain_epochs,
            "batch_size": 256,
            "lr_schedule": args.pretrain_lr_schedule,
        }
        ae = pretrain_autoencoder(X, AUTOENCODER, pretrain, random_state=seed)
        pretrain_seconds = time.perf_counter() - start
        for name in chosen:
            start = time.perf_counter()
            # the methods that place centres (dec, idec, dcn) take init
            extra = {"init": args.init} if "init" in available[name]().get_params() else {}
            model = available[name](n_clusters=10, pretrained=ae, random_state=seed, **extra)
            model.fit(X)
            labels = model.labels_
            rows.append(
                {
                    "setting": args.setting,
                    "n_samples": len(X),
                    "method": name,
                    "seed": seed,
                    "acc": acc(data.labels, labels),
                    "nmi": nmi(data.labels, labels),
                    "ari": ari(data.labels, labels),
                    "seconds": time.perf_counter() - start,
                    "pretrain_seconds": pretrain_seconds,
                    "pretrain_epochs": args.pretrain_epochs,
                    "pretrain_lr_schedule": args.pretrain_lr_schedule,
                    "params": json.dumps(
                        {k: v for k, v in model.get_params().items() if k != "pretrained"},
                        default=str,
                    ),
                    "git_commit": commit,
                }
            )
            print(rows[-1], flush=True)
            pd.DataFrame(rows).to_csv(f"{args.out}.csv", index=False)
    frame = pd.DataFrame(rows)
    table = frame.groupby("method")[["acc", "nmi", "ari", "seconds"]].median()
    table["seeds"] = frame.groupby("method").size()
    command = "python scripts/bench_mnist.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items()
        if v is not None
    )
    text = (
        f"MNIST {args.setting} ({len(X):,} images), median over seeds {args.seeds}, one shared "
        f"pretrained autoencoder per seed ({args.pretrain_epochs} epochs, "
        f"{args.pretrain_lr_schedule} learning rate, "
        f"{np.median(frame['pretrain_seconds']):.0f} s).\n\n"
        f"Command: `{command}`\n\n" + markdown(table.round(3)) + "\n"
    )
    Path(f"{args.out}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
