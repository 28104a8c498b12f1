"""ClustPy's DEC and deepseg's DEC side by side, in one run, on the same MNIST features.

Records, for each: wall time and ACC (ClustPy's ``labels_`` is K-Means re-run on its final
embedding; its own DEC assignment is ``dec_labels_``: both are reported). Then, with ClustPy's
architecture, epochs and batch size, deepseg's time per epoch next to a bare PyTorch loop doing
the same work (mean epoch times, without the Trainer's set-up), and deepseg's achieved GFLOP/s
next to the best matmul GFLOP/s torch reaches here.

ClustPy needs torchvision; install the ``bench`` extra in an environment where torchvision
imports (see the README). Without ClustPy the script still measures deepseg and the bare loop.

Usage:
    python scripts/bench_clustpy_dec.py --data-dir ../shared/data/mnist --out docs/bench_dec.md
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
from deepseg.deep.skeleton import embed
from deepseg.features.pipeline import FeaturePipeline
from deepseg.losses import kl_clustering_loss, reconstruction_loss, target_distribution
from deepseg.metrics import acc
from deepseg.nn.heads import StudentTAssignment
from deepseg.nn.modules import Autoencoder

PAPER_AE = {"hidden_dims": [500, 500, 2000], "latent_dim": 10}


def best_matmul_gflops(
    sizes: tuple[int, ...] = (512, 1024, 2048, 4096), repeats: int = 5
) -> float:
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best


def train_flops_per_sample(ae: Autoencoder, decoder: bool = True) -> float:
    """Forward + backward multiply-adds of the linear layers (x2 for flops, x3 for fwd+bwd)."""
    mods = list(ae.encoder.modules()) + (list(ae.decoder.modules()) if decoder else [])
    macs = sum(m.in_features * m.out_features for m in mods if isinstance(m, torch.nn.Linear))
    return 3 * 2 * macs


def bare_loop(X: np.ndarray, epochs_pre: int, epochs_dec: int, batch_size: int, seed: int) -> dict:
    """The same work as deepseg's DEC, written as a plain PyTorch loop."""
    torch.manual_seed(seed)
    X_t = torch.from_numpy(X)
    ae = Autoencoder(X.shape[1], **PAPER_AE)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    pre_epochs = []
    for _ in range(epochs_pre):
        start = time.perf_counter()
        for idx in torch.split(torch.randperm(len(X_t), generator=g), batch_size):
            x = X_t[idx]
            loss = reconstruction_loss(ae(x)[1], x)
            opt.zero_grad()
            loss.backward()
            opt.step()
        pre_epochs.append(time.perf_counter() - start)
    z = embed(ae, X)
    from sklearn.cluster import KMeans

    centers = KMeans(10, n_init=20, random_state=seed).fit(z).cluster_centers_
    head = StudentTAssignment(torch.from_numpy(centers).float(), 1.0)
    ae.decoder.requires_grad_(False)
    opt = torch.optim.SGD([*ae.encoder.parameters(), *head.parameters()], lr=0.01, momentum=0.9)
    p = torch.zeros(len(X_t), 10)
    step = 0
    dec_epochs = []
    for _ in range(epochs_dec):
        start = time.perf_counter()
        for idx in torch.split(torch.randperm(len(X_t), generator=g), batch_size):
            if step % 140 == 0:
                with torch.no_grad():
                    q = torch.cat([head(ae.encode(c)) for c in torch.split(X_t, 4096)])
                    p = target_distribution(q)
            loss = kl_clustering_loss(head(ae.encode(X_t[idx])), p[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        dec_epochs.append(time.perf_counter() - start)
    return {
        "pretrain_s_per_epoch": float(np.mean(pre_epochs)),
        "dec_s_per_epoch": float(np.mean(dec_epochs)),
    }


def deepseg_same_work(X: np.ndarray, epochs_pre: int, epochs_dec: int, batch_size: int, seed: int):
    from deepseg.deep.skeleton import EpochTimer, pretrain_autoencoder

    timer = EpochTimer()
    start = time.perf_counter()
    ae = pretrain_autoencoder(
        X, PAPER_AE, {"epochs": epochs_pre, "min_steps": 0, "batch_size": batch_size},
        random_state=seed,
        timer=timer,
    )  # fmt: skip
    pre_total = time.perf_counter() - start
    model = DEC(
        10, pretrained=ae, epochs=epochs_dec, batch_size=batch_size, tol=0.0, random_state=seed
    )
    model.fit(X)
    # Mean epoch times, as for the bare loop; the totals add the Trainer's set-up (and, for
    # the clustering phase, exclude the embedding and K-Means initialisation)
    return {
        "pretrain_s_per_epoch": float(np.mean(timer.epoch_seconds)),
        "dec_s_per_epoch": float(np.mean(model.epoch_seconds_)),
        "pretrain_s_total": pre_total,
        "dec_s_total": model.cluster_seconds_,
        "ae": ae,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--n-samples", type=int, default=None, help="subset of the 10,000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clustpy-epochs", type=int, nargs=2, default=[100, 150])
    parser.add_argument("--timing-epochs", type=int, nargs=2, default=[5, 5])
    parser.add_argument("--skip-clustpy", action="store_true")
    parser.add_argument("--out", default="bench_dec.json")
    args = parser.parse_args()

    data = load_mnist(args.data_dir, split="test", n_samples=args.n_samples)
    X = FeaturePipeline().fit_transform(data)
    y = data.labels
    results: dict = {
        "n_samples": len(X),
        "seed": args.seed,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }

    if not args.skip_clustpy:
        try:
            from clustpy.deep import DEC as ClustPyDEC
        except ImportError as exc:
            results["clustpy"] = f"not run: {exc}"
        else:
            pre, clu = args.clustpy_epochs
            start = time.perf_counter()
            cp = ClustPyDEC(
                10, pretrain_epochs=pre, clustering_epochs=clu, batch_size=256,
                random_state=args.seed,
            ).fit(X)  # fmt: skip
            results["clustpy"] = {
                "epochs": [pre, clu],
                "seconds": time.perf_counter() - start,
                "acc_labels_": acc(y, cp.labels_),
                "acc_dec_labels_": acc(y, cp.dec_labels_),
            }

    start = time.perf_counter()
    ours = DEC(10, random_state=args.seed).fit(X)
    results["deepseg_default"] = {
        "seconds": time.perf_counter() - start,
        "acc": acc(y, ours.labels_),
        "params": {k: v for k, v in ours.get_params().items() if k != "pretrained"},
        "clustering_steps": ours.n_steps_,
        "stopped_early": ours.stopped_early_,
    }

    pre, dec = args.timing_epochs
    bare = bare_loop(X, pre, dec, 256, args.seed)
    same = deepseg_same_work(X, pre, dec, 256, args.seed)
    ae = same.pop("ae")
    flops_pre = train_flops_per_sample(ae) * len(X)
    results["per_epoch"] = {
        "bare_pytorch": bare,
        "deepseg": same,
        "pretrain_overhead": same["pretrain_s_per_epoch"] / bare["pretrain_s_per_epoch"] - 1,
        "dec_overhead": same["dec_s_per_epoch"] / bare["dec_s_per_epoch"] - 1,
        "deepseg_pretrain_gflops": flops_pre / same["pretrain_s_per_epoch"] / 1e9,
        "best_matmul_gflops": best_matmul_gflops(),
    }
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
