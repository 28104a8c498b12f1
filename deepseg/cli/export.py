"""``deepseg-export bundle=PATH format=onnx|torch_export [output=FILE]``: the encoder plus the
assignment head as ONNX or a torch.export program (``.pt2``), checked against torch. A Hydra app
(configs/export.yaml) with the conventions of ``deepseg-predict``."""

from __future__ import annotations

import json
from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

from deepseg.cli.common import config_path, report_errors, run_command
from deepseg.cli.predict import options

COMMAND = "deepseg-export"
CONFIG_NAME = "export"
USAGE = "deepseg-export bundle=PATH format=onnx|torch_export [output=FILE]"


@hydra.main(version_base="1.3", config_path=config_path(), config_name=CONFIG_NAME)
@report_errors(COMMAND)
def app(cfg: DictConfig) -> None:
    """Export the bundle in ``cfg.format``; print the JSON summary."""
    opts = options(cfg, ("bundle", "format"), USAGE)
    from deepseg.export import export

    summary = export(opts["bundle"], opts["output"], format=str(opts["format"]))
    print(json.dumps(summary, indent=1))


def run(argv: Sequence[str] | None = None) -> None:
    """``deepseg-export`` with ``argv`` (default: the command line)."""
    run_command(COMMAND, app, argv)


def main() -> None:
    run()


if __name__ == "__main__":
    main()
