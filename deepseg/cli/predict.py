"""``deepseg-predict bundle=PATH input=new.csv output=assignments.csv [embedding=true]
[drift=true] [chunk_size=100000] [threads=1]``: assign new customers with a trained bundle.

A Hydra app (configs/predict.yaml) without a run directory or log file: it writes the files the
user names, logs to stderr and prints a JSON summary on stdout.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from deepseg.cli.common import config_path, report_errors, run_command

COMMAND = "deepseg-predict"
CONFIG_NAME = "predict"
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def to_bool(value: Any, name: str) -> bool:
    """``value`` (a bool, or a word such as 'true' or 'off') as a bool; else a ValueError."""
    if isinstance(value, bool):
        return value
    if str(value).lower() in _TRUE:
        return True
    if str(value).lower() in _FALSE:
        return False
    raise ValueError(f"The option '{name}' must be true or false. Got {value!r}.")


def options(cfg: DictConfig, required: Sequence[str], usage: str) -> dict[str, Any]:
    """The options of a tool's config as a dict, after checking the required ones are set.

    Raises:
        ValueError: a required option is missing (names it and shows the usage).
    """
    missing = [key for key in required if OmegaConf.is_missing(cfg, key)]
    if missing:
        raise ValueError(f"Missing option(s) {missing}. Usage: {usage}")
    out = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(out, dict)
    return {str(k): v for k, v in out.items()}


USAGE = (
    "deepseg-predict bundle=PATH input=FILE output=FILE.csv [embedding=true] [drift=true] "
    "[chunk_size=N] [threads=1] [encoding=cp1252] [sep=';'] [sheet=NAME]"
)


@hydra.main(version_base="1.3", config_path=config_path(), config_name=CONFIG_NAME)
@report_errors(COMMAND)
def app(cfg: DictConfig) -> None:
    """Assign every row of ``cfg.input`` with the bundle; print the JSON summary."""
    opts = options(cfg, ("bundle", "input", "output"), USAGE)
    opts["embedding"] = to_bool(opts["embedding"], "embedding")
    opts["drift"] = to_bool(opts["drift"], "drift")
    from deepseg.tasks.predict import run_predict

    print(json.dumps(run_predict(**opts), indent=1))


def run(argv: Sequence[str] | None = None) -> None:
    """``deepseg-predict`` with ``argv`` (default: the command line)."""
    run_command(COMMAND, app, argv)


def main() -> None:
    run()


if __name__ == "__main__":
    main()
