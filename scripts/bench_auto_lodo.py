"""Leave-one-dataset-out scores of ``model=auto``'s label-free rules over stored partitions.

Reads the partitions of ``scripts/collect_partitions.py`` (``DIR/<dataset>/data.npz`` and
``DIR/<dataset>/<method>__<seed>.npz``). Per dataset and seed, each rule picks one candidate
partition without labels, with :mod:`deepseg.auto`'s own functions (the consensus partition
included, as ``AutoCluster`` computes it):

* ``agreement``: the highest mean NMI with the other candidates;
* ``family_agreement``: the same, one vote per family;
* ``safe_agreement@m``: the best classic candidate unless another beats it by ``m``;
* ``safe_family@m``: the same with one vote per family;
* ``anchor@m`` (``anchor_agreement``): the first classic candidate unless the candidate with
  the highest agreement beats it by ``m``;
* ``stand_in@m`` (the rule before stop 41): the same, but when the consensus wins, the
  candidate nearest to it (NMI) is picked instead;
* ``stand_family@m`` (the default: ``anchor_agreement`` with ``stand_in``): the same, but the
  stand-in is chosen family first (``deepseg.auto.nearest_family``: the family whose members
  agree most with the consensus on average, then its nearest member);
* ``kmeans`` and every candidate alone; ``oracle``: the best candidate by ACC (no run can know it).

The margin of each ``@m`` rule is its tunable part. It is chosen **leave one dataset out**:
for each dataset, among the margins never more than ``FLOOR`` (3 points) below K-Means on any
of the other datasets, the one with the highest mean ACC over them (ties to the larger, safer
margin), and that margin's ACC on the held-out one. The held-out table is the one that
decides; the in-sample one (one margin for all, chosen on all) is printed beside it.
Labels only score the picks. ACC is the median over seeds.

    python scripts/bench_auto_lodo.py PARTITIONS_DIR --out auto_lodo.md [--candidates ...]
        [--no-consensus]
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from deepseg.auto import (
    CLASSIC,
    CONSENSUS,
    TOLERANCE,
    _nmi_matrix,
    choose,
    consensus_partition,
    family_of,
    highest,
    nearest_family,
    nearest_to,
    score_candidates,
)
from deepseg.cli.common import config_dir
from deepseg.metrics import acc
from deepseg.tasks.common import to_container

CANDIDATES = ["kmeans", "gmm", "agglomerative", "spectral", "ae_kmeans", "dec", "idec", "n2d"]
#: a fold keeps only rules never more than this below K-Means on its training datasets
FLOOR = 0.03
MARGINS = [0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 1.0]
#: the synthetic sets of the development suite; the others are the real ones the issue scores
SYNTHETIC = {"synthetic_customers", "atom", "chainlink", "hepta", "tetra", "mk3", "mk4",
             "trapped_lovers"}  # fmt: skip


def family_agreement_scores(
    partitions: dict[str, np.ndarray], families: dict[str, str]
) -> dict[str, float]:
    """Each partition's agreement with the other families, one vote per family (a rule that
    lost the held-out comparison; ``deepseg.auto`` keeps only the one that won).

    A partition's mean NMI with the members of each other family is averaged over those
    families; all of one family: the plain mean NMI; a partition alone gets 1.0.
    """
    names, matrix = _nmi_matrix(partitions)
    if len(names) == 1:
        return {names[0]: 1.0}
    if len({families[n] for n in names}) == 1:
        return score_candidates(partitions)
    out = {}
    for i, name in enumerate(names):
        votes = []
        for family in dict.fromkeys(families[n] for n in names):
            if family == families[name]:
                continue
            members = [j for j, n in enumerate(names) if families[n] == family]
            votes.append(float(matrix[i, members].mean()))
        out[name] = float(np.mean(votes))
    return out


def choose_variant(
    scores: dict[str, float], families: dict[str, str], rule: str, margin: float, order: list[str]
) -> str:
    """The candidate a rule picks: ``anchor_agreement`` (deepseg.auto's), ``safe_agreement``
    (the best classic candidate unless the best of the other families beats it by ``margin``)
    or ``agreement`` (the highest score)."""
    if rule == "anchor_agreement":
        return choose(scores, families, margin, order)[0]
    names = [n for n in order if n in scores]
    classic = [n for n in names if families[n] == CLASSIC]
    other = [n for n in names if families[n] != CLASSIC]
    if rule == "safe_agreement" and classic and other:
        safe, bold = highest(scores, classic)[0], highest(scores, other)[0]
        return bold if scores[bold] - scores[safe] >= margin - TOLERANCE else safe
    return highest(scores, names)[0]


def families_for(names: list[str]) -> dict[str, str]:
    """Each method's family, from its packaged config (``<model>_umap``: init=umap)."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="benchmark")
    nodes = {**to_container(cfg.baseline), **to_container(cfg.model or {})}
    out = {}
    for name in names:
        base = name[: -len("_umap")] if name.endswith("_umap") else name
        node = copy.deepcopy(nodes[base])
        if name.endswith("_umap"):
            node["init"] = "umap"
        out[name] = family_of(name, node)
    return out


def picks(parts: dict[str, np.ndarray], families: dict[str, str], k: int, seed: int,
          consensus: bool) -> dict[str, str]:  # fmt: skip
    """The candidate each rule picks for one dataset and seed, as AutoCluster scores them."""
    fam = {n: families[n] for n in parts}
    order = list(parts)
    plain = score_candidates(parts)
    by_family = family_agreement_scores(parts, fam)
    if consensus:
        cons = consensus_partition(parts, fam, k, seed)
        plain = score_candidates(parts, cons)
        both = family_agreement_scores({**parts, CONSENSUS: cons}, {**fam, CONSENSUS: CONSENSUS})
        by_family[CONSENSUS] = both[CONSENSUS]
        parts[CONSENSUS] = cons
        fam[CONSENSUS] = CONSENSUS
        order.append(CONSENSUS)
    out = {
        "agreement": choose_variant(plain, fam, "agreement", 0.0, order),
        "family_agreement": choose_variant(by_family, fam, "agreement", 0.0, order),
    }
    for m in MARGINS:
        out[f"safe_agreement@{m:g}"] = choose_variant(plain, fam, "safe_agreement", m, order)
        out[f"safe_family@{m:g}"] = choose_variant(by_family, fam, "safe_agreement", m, order)
        out[f"anchor@{m:g}"] = choose_variant(plain, fam, "anchor_agreement", m, order)
        if consensus:  # a stand-in for a winning consensus: the nearest, or family first (default)
            won = out[f"anchor@{m:g}"]
            out[f"stand_in@{m:g}"] = nearest_to(cons, parts, order)[0] if won == CONSENSUS else won
            by_fam = nearest_family(cons, parts, fam, order)[0] if won == CONSENSUS else won
            out[f"stand_family@{m:g}"] = by_fam
    return out


def lodo(
    medians: pd.DataFrame, cols: list[str], floor: float | None = FLOOR
) -> tuple[pd.Series, pd.Series, str]:
    """Held-out ACC per dataset when each fold picks, among ``cols``, the rule with the best
    mean ACC over the other datasets (ties to the safer: larger margin, then listed first);
    the rule each fold picked; the rule picked on all datasets (in-sample).

    With ``floor``, a fold first keeps the rules that are never more than ``floor`` below
    K-Means on its own (training) datasets, the issue's safety bar, and picks the best mean
    among those (among all, if none clears it)."""

    def key(c: str, frame: pd.DataFrame) -> tuple[bool, float, float, int]:
        margin = float(c.split("@")[1]) if "@" in c else 0.0
        worst = float((frame[c] - frame["kmeans"]).min())
        safe = floor is None or worst >= -floor - 1e-9
        return (safe, round(float(frame[c].mean()), 6), margin, -cols.index(c))

    held, chosen = {}, {}
    for d in medians.index:
        train = medians.drop(index=d)
        best = max(cols, key=lambda c, t=train: key(c, t))
        held[d], chosen[d] = medians.loc[d, best], best
    return pd.Series(held), pd.Series(chosen), max(cols, key=lambda c: key(c, medians))


def markdown(frame: pd.DataFrame | pd.Series) -> str:
    """A pipe table (without the optional tabulate package)."""
    frame = frame.to_frame() if isinstance(frame, pd.Series) else frame

    def cell(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    head = ["", *map(str, frame.columns)]
    rows = [[str(i), *map(cell, r)] for i, r in zip(frame.index, frame.to_numpy().tolist())]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def summary(table: pd.DataFrame, rows: list[str], against: str = "kmeans") -> pd.DataFrame:
    """Mean ACC, datasets within 1 point of K-Means, worst gap, for a set of datasets."""
    part = table.loc[rows]
    gap = part.sub(part[against], axis=0)
    return pd.DataFrame({
        "mean acc": part.mean(),
        "vs kmeans": gap.mean(),
        "within 1 pt": (gap >= -0.01).sum().astype(str) + f"/{len(rows)}",
        "worst gap": gap.min(),
    }).T  # fmt: skip


def sections(per_dataset: pd.DataFrame, scored: pd.DataFrame, real: list[str]) -> list[str]:
    """The report's per-dataset table and its summaries over the real and all datasets."""
    return [
        "## Per dataset", "", markdown(per_dataset), "",
        "## Real datasets", "", markdown(summary(scored, real)), "",
        "## All datasets", "", markdown(summary(scored, list(scored.index))), "",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("partitions", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--candidates", nargs="*", default=CANDIDATES)
    parser.add_argument("--no-consensus", action="store_true")
    args = parser.parse_args()
    families = families_for(args.candidates)
    rows, incomplete = [], []
    for folder in sorted(p for p in args.partitions.iterdir() if (p / "data.npz").exists()):
        data = np.load(folder / "data.npz")
        y, k = data["y"], int(data["k"])
        seeds = sorted({int(p.stem.split("__")[1]) for p in folder.glob("kmeans__*.npz")})
        for seed in seeds:
            parts = {
                m: np.load(folder / f"{m}__{seed}.npz")["labels"]
                for m in args.candidates
                if (folder / f"{m}__{seed}.npz").exists()
            }
            missing = sorted(set(args.candidates) - set(parts))
            if missing:  # as AutoCluster does with a failed candidate: the others choose
                print(folder.name, seed, "without", missing, flush=True)
                incomplete.append(f"{folder.name} seed {seed} without {', '.join(missing)}")
            if len(parts) < 2:
                continue
            chosen = picks(parts, families, k, seed, not args.no_consensus)
            scores = {m: acc(y, labels) for m, labels in parts.items()}
            record = {"dataset": folder.name, "seed": seed, **scores,
                      "oracle": max(scores[m] for m in parts if m != CONSENSUS)}  # fmt: skip
            record.update({rule: scores[pick] for rule, pick in chosen.items()})
            record.update({f"pick:{rule}": pick for rule, pick in chosen.items()})
            rows.append(record)
        print(folder.name, "done", flush=True)
    raw = pd.DataFrame(rows)
    raw.to_csv(args.out.with_suffix(".csv"), index=False)
    numeric = [c for c in raw if not c.startswith("pick:") and c not in ("dataset", "seed")]
    medians = raw.groupby("dataset")[numeric].median()

    def family(prefix: str) -> list[str]:
        return [c for c in medians if c.startswith(prefix + "@")]

    held_safe, margins_safe, in_safe = lodo(medians, family("safe_agreement"))
    held_fam, margins_fam, in_fam = lodo(medians, family("safe_family"))
    held_anchor, margins_anchor, in_anchor = lodo(medians, family("anchor"))
    held_anchor_mean, margins_anchor_mean, _ = lodo(medians, family("anchor"), floor=None)
    held_stand, margins_stand, in_stand = lodo(medians, family("stand_in"))
    held_sfam, margins_sfam, in_sfam = lodo(medians, family("stand_family"))
    every = ["agreement", "family_agreement", *family("safe_agreement"), *family("safe_family"),
             *family("anchor"), *family("stand_in"), *family("stand_family")]  # fmt: skip
    held_any, rule_any, in_any = lodo(medians, every)
    table = medians[[*args.candidates, *([CONSENSUS] if CONSENSUS in medians else []),
                     "oracle", "agreement", "family_agreement"]].copy()  # fmt: skip
    table["safe_agreement (held out)"] = held_safe
    table["margin"] = margins_safe
    table["safe_family (held out)"] = held_fam
    table["margin (family)"] = margins_fam
    table["any rule (held out)"] = held_any
    table["rule"] = rule_any
    table["anchor (held out)"] = held_anchor
    table["margin (anchor)"] = margins_anchor
    table["stand_in (held out)"] = held_stand
    table["margin (stand_in)"] = margins_stand
    table["stand_family (held out)"] = held_sfam
    table["margin (stand_family)"] = margins_sfam
    table["anchor (held out, best mean only)"] = held_anchor_mean
    table["margin (anchor, best mean only)"] = margins_anchor_mean
    table[f"safe_agreement in-sample ({in_safe})"] = medians[in_safe]
    table[f"anchor in-sample ({in_anchor})"] = medians[in_anchor]
    table[f"stand_in in-sample ({in_stand})"] = medians[in_stand]
    table[f"stand_family in-sample ({in_sfam})"] = medians[in_sfam]
    table[f"safe_family in-sample ({in_fam})"] = medians[in_fam]
    margin_columns = ("margin", "margin (family)", "margin (anchor)", "margin (stand_in)",
                      "margin (stand_family)",
                      "margin (anchor, best mean only)")  # fmt: skip
    for name in margin_columns:
        table[name] = table[name].str.split("@").str[1]
    table[f"any rule in-sample ({in_any})"] = medians[in_any]
    scored = table.drop(columns=[*margin_columns, "rule"]).astype(float)
    real = [d for d in scored.index if d not in SYNTHETIC]
    counts = raw.groupby("dataset").size()
    lines = [
        f"# model=auto, leave one dataset out ({len(scored)} datasets, {len(real)} real)",
        "",
        f"Partitions: `{args.partitions}`; candidates {args.candidates}; consensus "
        f"{not args.no_consensus}. ACC, median over seeds (seeds per dataset: "
        f"{ {d: int(n) for d, n in counts.items()} }). Scored without a missing candidate: "
        f"{incomplete or 'none'}.",
        "",
        "Held-out columns: each fold picks the margin (or, for 'any rule', the rule and its "
        "margin) on the other datasets; the held-out dataset is scored with that pick. A fold "
        f"keeps the rules never more than {FLOOR:g} below K-Means on its own datasets and "
        "picks the best mean ACC among them; 'best mean only' skips that filter.",
        "",
        *sections(table, scored, real),
        "## Every margin, mean ACC in-sample (all datasets)",
        "",
        markdown(medians[[c for c in medians if "@" in c]].mean().rename("mean acc")),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
