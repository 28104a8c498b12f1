"""DEC / IDEC on scikit-learn's digits across pretraining settings (docs/benchmarks.md).

Each setting pretrains one autoencoder per seed, shared by ae_kmeans, dec and idec (IDEC at each
``--idec-rec-weights`` value). Labels only score the results. One torch thread. Writes JSON lines.

Usage:
    python scripts/bench_digits_deep.py --out digits_deep.jsonl \\
        --settings '[{"dropout": 0.0, "min_steps": 3000, "lr_schedule": "cosine"}]'
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from sklearn.metrics import silhouette_score

from deepseg.data.images import load_digits
from deepseg.deep import DEC, IDEC, AEKMeans
from deepseg.deep.skeleton import pretrain_autoencoder
from deepseg.features.pipeline import FeaturePipeline
from deepseg.metrics import acc
from deepseg.tasks.common import git_commit

AE_KEYS = ("hidden_dims", "latent_dim", "dropout", "norm", "activation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default='[{"dropout": 0.2}]', help="JSON list of dicts")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--idec-rec-weights", type=float, nargs="+", default=[10.0])
    parser.add_argument("--out", default="digits_deep.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_digits()
    X = FeaturePipeline().fit_transform(data)
    commit = git_commit()
    out = Path(args.out)
    for setting in json.loads(args.settings):
        ae_opts = {"hidden_dims": [256, 256, 512], "latent_dim": 10, "dropout": 0.2}
        ae_opts.update({k: v for k, v in setting.items() if k in AE_KEYS})
        pretrain = {"epochs": 30, "min_steps": 600, "batch_size": 256}
        pretrain.update({k: v for k, v in setting.items() if k not in AE_KEYS})
        for seed in args.seeds:
            start = time.perf_counter()
            ae = pretrain_autoencoder(X, ae_opts, pretrain, random_state=seed)
            row = {"setting": setting, "seed": seed, "git_commit": commit}
            row["pretrain_seconds"] = round(time.perf_counter() - start, 1)
            km = AEKMeans(10, pretrained=ae, random_state=seed).fit(X)
            row["ae_kmeans"] = acc(data.labels, km.labels_)
            row["silhouette_embedding"] = float(silhouette_score(km.transform(X), km.labels_))
            row["dec"] = acc(data.labels, DEC(10, pretrained=ae, random_state=seed).fit(X).labels_)
            for w in args.idec_rec_weights:
                model = IDEC(10, rec_weight=w, pretrained=ae, random_state=seed).fit(X)
                row[f"idec_rec_weight_{w:g}"] = acc(data.labels, model.labels_)
            print(json.dumps(row), flush=True)
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
