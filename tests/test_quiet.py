"""A fit from Python prints nothing (issue 33): no Lightning banners, tips or warnings.

Run in a fresh interpreter, so that the logging and warnings state is Python's default, as in
a notebook or a script, not pytest's.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

FIT_DEC_AND_AUTO = textwrap.dedent(
    """
    import logging
    import sys

    from sklearn.datasets import make_blobs

    from deepseg import DEC, AutoCluster

    if sys.argv[1:] == ["info"]:
        logging.basicConfig(level=logging.INFO)
    X, _ = make_blobs(300, centers=3, n_features=6, random_state=0)
    tiny = {
        "autoencoder": {"hidden_dims": [16], "latent_dim": 3},
        "pretrain": {"epochs": 2, "min_steps": 0},
    }
    DEC(n_clusters=3, epochs=2, random_state=0, **tiny).fit(X)
    candidates = {
        "kmeans": {"_target_": "sklearn.cluster.KMeans", "n_init": 2},
        "dec": {"_target_": "deepseg.deep.dec.DEC", "epochs": 2, **tiny},
    }
    AutoCluster(n_clusters=3, candidates=candidates, random_state=0).fit(X)
    """
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", FIT_DEC_AND_AUTO, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_fits_from_python_print_nothing():
    proc = _run()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == ""


def test_the_logging_level_turns_the_messages_on():
    proc = _run("info")
    assert proc.returncode == 0, proc.stderr
    assert "`Trainer.fit` stopped" in proc.stderr  # Lightning's own summary line
    assert "auto: chose" in proc.stderr  # deepseg's
