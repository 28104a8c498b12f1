"""``deepseg-embed bundle=PATH input=new.csv output=embeddings.csv [chunk_size=N]
[threads=1]``: the embedding of every row (id, z_0, ...), also for bundles that cannot predict
(n2d). A Hydra app (configs/embed.yaml) with the conventions of ``deepseg-predict``."""

from __future__ import annotations

import json
from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

from deepseg.cli.common import config_path, report_errors, run_command
from deepseg.cli.predict import options

COMMAND = "deepseg-embed"
CONFIG_NAME = "embed"
USAGE = "deepseg-embed bundle=PATH input=FILE output=FILE.csv [chunk_size=N] [threads=1]"


@hydra.main(version_base="1.3", config_path=config_path(), config_name=CONFIG_NAME)
@report_errors(COMMAND)
def app(cfg: DictConfig) -> None:
    """Embed every row of ``cfg.input`` with the bundle; print the JSON summary."""
    opts = options(cfg, ("bundle", "input", "output"), USAGE)
    from deepseg.tasks.predict import run_predict

    print(json.dumps(run_predict(**opts, embed_only=True), indent=1))


def run(argv: Sequence[str] | None = None) -> None:
    """``deepseg-embed`` with ``argv`` (default: the command line)."""
    run_command(COMMAND, app, argv)


def main() -> None:
    run()


if __name__ == "__main__":
    main()
