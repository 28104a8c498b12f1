"""Embedding throughput (documents/s) of the packaged sentence model on the text corpora.

Three paths timed side by side in one process, two runs each, every distinct text of a corpus:
before (float32 PyTorch through sentence-transformers, batches of 64, as when issue 31 was
filed), float32 with deepseg's token-budget batches, and deepseg's default now (``precision=auto``
with token-budget batches). Writes one CSV row per (corpus, path, run) and prints the ratios.

    python scripts/bench_embedding_throughput.py --out throughput.csv \
        [--only tweet ag_news_sentence banking77 clinc150]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).parent))
from bench_text import documents

from deepseg.cli.common import config_dir
from deepseg.features.text import TextBlock, packaged_model_dir
from deepseg.tasks.suite import selected_datasets

BEFORE = "before: float32, batches of 64"


def docs_per_second(embed, docs: list[str]) -> float:
    start = time.perf_counter()
    embed(docs)
    return len(docs) / (time.perf_counter() - start)


def main() -> None:
    from sentence_transformers import SentenceTransformer

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--only", nargs="*", default=["tweet", "ag_news_sentence", "banking77", "clinc150"]
    )
    args = parser.parse_args()
    with initialize_config_dir(config_dir(), version_base=None):
        entries = selected_datasets(compose("suite", overrides=["suite=text"]))
    before_model = SentenceTransformer(str(packaged_model_dir()))
    rows = []
    for key in args.only:
        docs = sorted(set(documents(entries[key])))
        now = TextBlock(method="sentence", cache=False).fit(docs[:10])
        f32 = TextBlock(method="sentence", cache=False, precision="float32").fit(docs[:10])
        paths = {
            BEFORE: lambda d: before_model.encode(d, batch_size=64, normalize_embeddings=True),
            "float32, token batches": f32.transform,
            f"now: {now.precision_}, token batches": now.transform,
        }
        for embed in paths.values():  # warm-up
            embed(docs[:200])
        for run in range(2):
            for name, embed in paths.items():
                rate = docs_per_second(embed, docs)
                rows.append({"corpus": key, "documents": len(docs), "path": name, "run": run,
                             "documents_per_s": round(rate, 1)})  # fmt: skip
        table = pd.DataFrame([r for r in rows if r["corpus"] == key])
        mean = table.groupby("path", sort=False)["documents_per_s"].mean()
        for name, rate in mean.items():
            print(f"{key} ({len(docs)}): {name}: {rate:.0f}/s, {rate / mean[BEFORE]:.2f}x",
                  flush=True)  # fmt: skip
    pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"wrote {args.out} ({np.round(len(rows))} rows)")


if __name__ == "__main__":
    main()
