"""The public API: discoverable, light to import, and free of global side effects."""

from __future__ import annotations

import json
import subprocess
import sys

import deepseg

PUBLIC = ["DEC", "IDEC", "DCN", "VaDE", "N2D", "AEKMeans", "AEGMM", "AutoCluster",
          "SelfTraining", "load", "save_bundle", "choose_k", "profile_segments", "evaluate",
          "acc", "nmi", "ari"]  # fmt: skip


def test_dir_lists_the_public_names():
    names = dir(deepseg)
    for name in PUBLIC:
        assert name in names, name
        assert name in deepseg.__all__, name
    assert set(deepseg.__all__) <= set(names)


def test_auto_is_public_with_the_packaged_candidates():
    from deepseg import AutoCluster
    from deepseg.auto import AutoCluster as Defined

    assert AutoCluster is Defined
    auto = AutoCluster()
    names = list(auto._nodes())
    assert names[0] == "kmeans"  # the anchor of the default criterion
    assert {"gmm", "agglomerative", "spectral", "dec", "idec", "n2d"} <= set(names)
    assert "agglomerative_cosine" in auto._nodes(cosine=True)
    # the deep candidates keep Python's trainer defaults (no progress bar)
    assert all("trainer" not in node for node in auto._nodes().values())


def test_every_public_name_resolves_to_what_it_promises():
    for name in deepseg.__all__:
        assert getattr(deepseg, name) is not None, name
    assert deepseg.DEC().get_params()["n_clusters"] == 8
    assert deepseg.load.__module__ == "deepseg.bundle"


def test_import_is_light_and_changes_no_global_state():
    code = (
        "import json, logging, sys, warnings\n"
        "before = [repr(f) for f in warnings.filters]\n"
        "levels = {n: logging.getLogger(n).level for n in "
        "('lightning.pytorch.utilities.rank_zero', 'lightning.pytorch.accelerators.cuda')}\n"
        "import deepseg\n"
        "names = dir(deepseg)\n"
        "light = 'torch' not in sys.modules and 'sklearn' not in sys.modules\n"
        "after_light = [repr(f) for f in warnings.filters]\n"
        # the heavy parts too, against the libraries they import (which add filters themselves)
        "import torch, lightning, sklearn.cluster, scipy.stats, pandas, hydra\n"
        "third_party = [repr(f) for f in warnings.filters]\n"
        "import deepseg.deep, deepseg.bundle, deepseg.tasks.run, deepseg.tasks.benchmark\n"
        "heavy_same = [repr(f) for f in warnings.filters] == third_party\n"
        "levels_after = {n: logging.getLogger(n).level for n in levels}\n"
        "print(json.dumps([light, before == after_light, heavy_same, levels == levels_after,"
        " 'DEC' in names]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, True, True, True, True]
