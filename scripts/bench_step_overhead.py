"""What deepseg's training loop costs on top of a bare PyTorch loop doing the same steps.

In one process, interleaved: deepseg's pretraining (:func:`pretrain_autoencoder`, a Lightning
Trainer) and a bare loop of the same network, optimiser, batch size and batch order, each run for
two step counts. The cost of a step is the slope, (time of the long run - time of the short run)
/ (extra steps), so the fixed set-up of a fit (the Trainer's, the network's) is left out and
per-epoch work is included (on a 200-row table an epoch is one step). The ratio of the slopes
is deepseg's step as a multiple of the bare loop's: from the fastest of the repeats of each run
(noise on a shared machine only adds time), and as a check the median over the repeats. The
clustering phase (DEC's) is measured the same way against a bare DEC loop.

Cases: the default network on a 784-column input (MNIST's width) and on a 200-row customer table
(``synthetic_customers`` with 200 rows). Timings on a shared machine are noisy: each measurement
is repeated and the median taken; compare ratios, not seconds.

Usage:
    OMP_NUM_THREADS=1 python scripts/bench_step_overhead.py --out step_overhead.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from deepseg.deep import DEC
from deepseg.deep.skeleton import build_autoencoder, pretrain_autoencoder, resolve_for_input
from deepseg.losses import kl_clustering_loss, reconstruction_loss, target_distribution
from deepseg.nn.heads import StudentTAssignment


def order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The batch order of an epoch, drawn as deepseg's IndexBatchSampler draws it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))


def bare_pretrain(X: np.ndarray, epochs: int, batch_size: int, seed: int) -> float:
    """Seconds of a plain PyTorch pretraining loop over ``epochs`` epochs (network built
    outside the timing)."""
    ae_opts, _ = resolve_for_input(X.shape[1], None, None)
    torch.manual_seed(seed)
    ae = build_autoencoder(X.shape[1], ae_opts).train()
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3)
    X_t = torch.from_numpy(X)
    start = time.perf_counter()
    for epoch in range(epochs):
        for idx in torch.split(order(len(X), seed, epoch), batch_size):
            x = X_t[idx]
            loss = reconstruction_loss(ae(x)[1], x)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def deepseg_pretrain(X: np.ndarray, epochs: int, batch_size: int, seed: int) -> float:
    start = time.perf_counter()
    pretrain_autoencoder(
        X,
        pretrain={"epochs": epochs, "min_steps": 0, "max_steps": 0, "batch_size": batch_size},
        random_state=seed,
    )
    return time.perf_counter() - start


def bare_dec(X: np.ndarray, epochs: int, batch_size: int, seed: int, k: int) -> float:
    """Seconds of a plain DEC clustering loop (SGD, target refreshed every 140 steps)."""
    ae_opts, _ = resolve_for_input(X.shape[1], None, None)
    torch.manual_seed(seed)
    ae = build_autoencoder(X.shape[1], ae_opts).train()
    X_t = torch.from_numpy(X)
    head = StudentTAssignment(torch.randn(k, ae.latent_dim), 1.0)
    ae.decoder.requires_grad_(False)
    for module in ae.modules():  # deepseg's clustering phase runs without dropout
        if isinstance(module, torch.nn.Dropout):
            module.eval()
    opt = torch.optim.SGD([*ae.encoder.parameters(), *head.parameters()], lr=0.01, momentum=0.9)
    step = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        for idx in torch.split(order(len(X), seed, epoch), batch_size):
            if step % 140 == 0:
                with torch.no_grad():
                    q = torch.cat([head(ae.encode(c)) for c in torch.split(X_t, 4096)])
                    p = target_distribution(q)
            loss = kl_clustering_loss(head(ae.encode(X_t[idx])), p[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    return time.perf_counter() - start


def deepseg_dec(model: DEC, X: np.ndarray) -> float:
    model.fit(X)
    return model.cluster_seconds_


def paired(
    bare_run, ours_run, epochs: tuple[int, int], steps_per_epoch: int, repeats: int
) -> dict:
    """Per-step times of the bare loop and deepseg, from runs of ``epochs`` (short, long)
    epochs, interleaved so that both see the same load. A step's time is the slope between the
    fastest short and the fastest long run (noise on a shared machine only adds time), and,
    as a check, the median of the slopes of each repeat."""
    short, long = epochs
    runs: dict[str, list[float]] = {"bare_short": [], "ours_short": [], "bare_long": [],
                                    "ours_long": []}  # fmt: skip
    for _ in range(repeats):
        runs["bare_short"].append(bare_run(short))
        runs["ours_short"].append(ours_run(short))
        runs["bare_long"].append(bare_run(long))
        runs["ours_long"].append(ours_run(long))
    extra = (long - short) * steps_per_epoch

    def ms(who: str, pick) -> float:
        return 1e3 * (pick(runs[f"{who}_long"]) - pick(runs[f"{who}_short"])) / extra

    per_repeat = [(ol - os_) / (bl - bs) for bs, os_, bl, ol in zip(*runs.values(), strict=True)]
    return {
        "bare_ms_per_step": ms("bare", min),
        "deepseg_ms_per_step": ms("ours", min),
        "ratio": ms("ours", min) / ms("bare", min),
        "ratio_median_of_repeats": statistics.median(per_repeat),
        "ratios_of_repeats": per_repeat,
        "runs_s": runs,
        "steps": [short * steps_per_epoch, long * steps_per_epoch],
    }


def measure(name: str, X: np.ndarray, epochs: tuple[int, int], repeats: int, seed: int) -> dict:
    batch = 256
    steps_per_epoch = -(-len(X) // batch)
    out: dict = {"rows": len(X), "columns": X.shape[1], "steps_per_epoch": steps_per_epoch}
    out["pretrain"] = paired(
        lambda e: bare_pretrain(X, e, batch, seed),
        lambda e: deepseg_pretrain(X, e, batch, seed),
        epochs,
        steps_per_epoch,
        repeats,
    )
    ae = pretrain_autoencoder(X, pretrain={"epochs": 1, "min_steps": 0}, random_state=seed)

    def ours_dec(e: int) -> float:
        return deepseg_dec(DEC(4, pretrained=ae, epochs=e, tol=0.0, random_state=seed), X)

    out["dec_clustering"] = paired(
        lambda e: bare_dec(X, e, batch, seed, 4), ours_dec, epochs, steps_per_epoch, repeats
    )
    print(f"{name}: pretrain x{out['pretrain']['ratio']:.3f} "
          f"(median x{out['pretrain']['ratio_median_of_repeats']:.3f}), "
          f"dec x{out['dec_clustering']['ratio']:.3f} "
          f"(median x{out['dec_clustering']['ratio_median_of_repeats']:.3f})")  # fmt: skip
    return out


def customer_table(n: int) -> np.ndarray:
    from deepseg.data.synthetic import make_synthetic_customers
    from deepseg.features.pipeline import FeaturePipeline

    data = make_synthetic_customers(n_samples=n)
    return FeaturePipeline().fit_transform(data).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="step_overhead.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--wide-rows", type=int, default=2048)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cases = {
        # pixels in [0, 1]: the timing does not depend on the values
        "default_network_784_columns": (
            rng.random((args.wide_rows, 784), dtype=np.float32),
            (1, 7),
        ),
        "table_200_rows": (customer_table(200), (50, 200)),
    }
    results: dict = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cases": {},
    }
    for name, (X, epochs) in cases.items():
        results["cases"][name] = measure(name, X, epochs, args.repeats, args.seed)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
