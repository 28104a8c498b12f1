"""Where the time of deep clustering goes on one device: MNIST 70,000 with the defaults.

Per phase: features, pretraining (shared by the methods: the same defaults and seed give the same
network), and for each method its initialisation in the embedding (the embedding pass plus
K-Means, the Gaussian mixture, or n2d's UMAP and mixture) and its clustering phase; time, steps
and steps/s of each training phase, ACC of each method, the device's name and memory, and the
peak memory the run used. Then the cost of one pretraining step at batch 256 of the default
network, for a bare PyTorch loop on the same device, deepseg, and deepseg with
``trainer.capture_step`` (CUDA only). Everything goes to one JSON file.

It runs on any device Lightning's ``accelerator=auto`` picks; on a CPU use a small ``--n`` to
smoke-test it (see below).

Usage:
    python scripts/bench_gpu.py --data-dir ../shared/data/mnist --out bench_gpu.json
    python scripts/bench_gpu.py --n 2000 --methods dec ae_kmeans --pretrain-epochs 2 \
        --step-steps 16 --out smoke.json   # a smoke test on a CPU
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
import torch

from deepseg.deep import AEGMM, DCN, DEC, IDEC, N2D, AEKMeans, VaDE
from deepseg.deep.skeleton import (
    EpochTimer,
    build_autoencoder,
    pretrain_autoencoder,
    pretrain_epochs,
    resolve_for_input,
)
from deepseg.losses import reconstruction_loss
from deepseg.metrics import acc

METHODS = {"dec": DEC, "idec": IDEC, "dcn": DCN, "vade": VaDE, "ae_kmeans": AEKMeans,
           "ae_gmm": AEGMM, "n2d": N2D}  # fmt: skip


def device_info() -> dict:
    info = {"torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads()}  # fmt: skip
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            type="cuda",
            name=props.name,
            memory_gb=props.total_memory / 1e9,
            cuda=torch.version.cuda,
            bf16=torch.cuda.is_bf16_supported(),
        )
    else:
        info["type"] = "cpu"
    return info


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def rate(seconds: float, steps: int) -> dict:
    return {
        "seconds": seconds,
        "steps": steps,
        "steps_per_s": steps / seconds if seconds > 0 else None,
        "ms_per_step": 1e3 * seconds / steps if steps else None,
    }


def step_cost(X: np.ndarray, trainer: dict, steps: int, seed: int) -> dict:
    """ms per pretraining step at batch 256: a bare loop on the device, deepseg, and deepseg
    with capture_step; each from the slope between ``steps`` and twice as many steps, so that
    set-up and compilation are left out."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch = 256
    steps_per_epoch = -(-len(X) // batch)
    epochs_short = max(2, -(-steps // steps_per_epoch))  # the first epoch is left out

    def bare(epochs: int) -> float:
        ae_opts, _ = resolve_for_input(X.shape[1], None, None)
        torch.manual_seed(seed)
        ae = build_autoencoder(X.shape[1], ae_opts).to(device).train()
        opt = torch.optim.Adam(ae.parameters(), lr=1e-3)
        X_t = torch.from_numpy(X).to(device)
        sync()
        start = time.perf_counter()
        for epoch in range(epochs):
            g = torch.Generator().manual_seed(seed + epoch)
            for idx in torch.split(torch.randperm(len(X), generator=g).to(device), batch):
                x = X_t[idx]
                loss = reconstruction_loss(ae(x)[1], x)
                opt.zero_grad()
                loss.backward()
                opt.step()
        sync()
        return time.perf_counter() - start

    def ours(epochs: int, capture: bool) -> float:
        timer = EpochTimer()
        pretrain_autoencoder(
            X,
            pretrain={"epochs": epochs, "min_steps": 0, "max_steps": 0, "batch_size": batch},
            trainer={**trainer, "capture_step": capture},
            random_state=seed,
            timer=timer,
        )
        # epoch times, without the Trainer's set-up (and, with capture, without the first
        # epoch, which compiles)
        return float(sum(timer.epoch_seconds[1:]))

    out: dict = {"batch_size": batch, "rows": len(X)}
    short, long = epochs_short, 2 * epochs_short
    extra = (long - short) * steps_per_epoch
    out["bare_ms"] = 1e3 * (bare(long) - bare(short)) / extra
    out["deepseg_ms"] = 1e3 * (ours(long, False) - ours(short, False)) / extra
    if device.type == "cuda":
        out["deepseg_capture_ms"] = 1e3 * (ours(long, True) - ours(short, True)) / extra
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--n", type=int, default=None, help="a seeded subset of the 70,000")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="32-true", help="e.g. bf16-mixed")
    parser.add_argument("--capture-step", action="store_true", help="trainer.capture_step")
    parser.add_argument("--step-steps", type=int, default=500, help="0 skips the step cost")
    parser.add_argument(
        "--pretrain-epochs", type=int, default=None, help="for smoke tests (default: defaults)"
    )
    parser.add_argument("--out", default="bench_gpu.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from deepseg.data.images import load_mnist
    from deepseg.features.pipeline import FeaturePipeline

    trainer = {"precision": args.precision, "capture_step": args.capture_step}
    results: dict = {"device": device_info(), "seed": args.seed, "trainer": trainer}
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    data = load_mnist(args.data_dir, split="all", n_samples=args.n, random_state=args.seed)
    X = FeaturePipeline().fit_transform(data).astype(np.float32)
    results["n_samples"] = len(X)
    results["features"] = {"seconds": time.perf_counter() - start}

    pretrain = None
    if args.pretrain_epochs is not None:
        pretrain = {"epochs": args.pretrain_epochs, "min_steps": 0}
    results["pretrain_options"] = pretrain
    pre_opts = resolve_for_input(X.shape[1], None, pretrain)[1]
    steps = pretrain_epochs(len(X), pretrain, X.shape[1]) * -(-len(X) // pre_opts["batch_size"])
    sync()
    start = time.perf_counter()
    ae = pretrain_autoencoder(X, pretrain=pretrain, trainer=trainer, random_state=args.seed)
    sync()
    results["pretrain"] = rate(time.perf_counter() - start, steps)

    results["methods"] = {}
    for name in args.methods:
        cls = METHODS[name]
        if name == "n2d":
            try:
                import umap  # noqa: F401
            except ImportError as exc:
                results["methods"][name] = f"not run: {exc}"
                continue
        model = cls(n_clusters=10, pretrained=ae, trainer=trainer, random_state=args.seed)
        sync()
        start = time.perf_counter()
        model.fit(X)
        sync()
        total = time.perf_counter() - start
        row: dict = {"fit_seconds": total, "acc": acc(data.labels, model.labels_)}
        if hasattr(model, "cluster_seconds_"):
            row["cluster"] = rate(model.cluster_seconds_, int(model.n_steps_))
            row["cluster"]["stopped_early"] = bool(model.stopped_early_)
            row["init_seconds"] = total - model.cluster_seconds_
        else:  # the latent model: the embedding pass, then K-Means / GMM / UMAP + GMM
            row["init_seconds"] = total
        results["methods"][name] = row
        print(f"{name}: {json.dumps(row)}")
    if args.step_steps > 0:
        results["pretrain_step"] = step_cost(X, trainer, args.step_steps, args.seed)
    if torch.cuda.is_available():
        results["device"]["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
