"""bf16 autocast against float32 on this machine: pretraining and DEC epoch times and ACC.

Runs the same pretraining (and a short DEC clustering phase) twice, with
``trainer.precision=32-true`` and ``bf16-mixed``, and records the mean epoch time of each phase
(without the Trainer's set-up) and the ACC of the result. Writes JSON.

Usage:
    python scripts/bench_precision.py --data-dir ../shared/data/mnist --out bench_precision.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from deepseg.data.images import load_mnist
from deepseg.deep import DEC
from deepseg.deep.skeleton import EpochTimer, pretrain_autoencoder
from deepseg.features.pipeline import FeaturePipeline
from deepseg.metrics import acc

AUTOENCODER = {"hidden_dims": [500, 500, 2000], "latent_dim": 10}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--n-samples", type=int, default=None, help="subset of the 10,000")
    parser.add_argument("--epochs", type=int, nargs=2, default=[5, 5], help="pretrain, DEC")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench_precision.json")
    args = parser.parse_args()

    data = load_mnist(args.data_dir, split="test", n_samples=args.n_samples)
    X = FeaturePipeline().fit_transform(data)
    results: dict = {
        "n_samples": len(X),
        "epochs": args.epochs,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cpu_bf16": bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)()),
    }
    for precision in ("32-true", "bf16-mixed"):
        trainer = {"precision": precision}
        timer = EpochTimer()
        start = time.perf_counter()
        ae = pretrain_autoencoder(
            X,
            AUTOENCODER,
            {"epochs": args.epochs[0], "min_steps": 0, "batch_size": 256},
            trainer,
            random_state=args.seed,
            timer=timer,
        )
        pretrain_total = time.perf_counter() - start
        model = DEC(
            10, pretrained=ae, epochs=args.epochs[1], tol=0.0, trainer=trainer, random_state=0
        ).fit(X)
        results[precision] = {
            "pretrain_s_per_epoch": float(np.mean(timer.epoch_seconds)),
            "pretrain_s_total": pretrain_total,
            "dec_s_per_epoch": float(np.mean(model.epoch_seconds_)),
            "acc": acc(data.labels, model.labels_),
        }
        print(precision, results[precision], flush=True)
    for phase in ("pretrain_s_per_epoch", "dec_s_per_epoch"):
        results[f"bf16_speedup_{phase}"] = results["32-true"][phase] / results["bf16-mixed"][phase]
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
