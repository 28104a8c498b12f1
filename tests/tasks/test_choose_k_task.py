"""deepseg-choose-k's latent space uses the deep methods' autoencoder and pretraining options."""

from __future__ import annotations

import pandas as pd
from hydra import compose, initialize_config_dir

from deepseg.cli.common import config_dir
from deepseg.tasks.choose_k import run_choose_k


def test_latent_space_runs_with_the_shared_options(tmp_path):
    overrides = [
        "data.n_samples=200", "space=latent", "k_selection.k_range=[2,4]",
        "k_selection.n_bootstrap=2", "autoencoder.hidden_dims=[16]", "pretrain.epochs=2",
        "pretrain.min_steps=0", "trainer.enable_progress_bar=false",
    ]  # fmt: skip
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="choose_k", overrides=overrides)
    assert cfg.autoencoder.dropout == "auto"  # the deep methods' default, not a copy of its own
    k, results = run_choose_k(cfg, tmp_path)
    table = pd.read_csv(tmp_path / "choose_k.csv")
    assert set(table["space"]) == {"latent"} and list(table["k"]) == [2, 3, 4]
    assert k == results[0].recommended and 2 <= k <= 4
