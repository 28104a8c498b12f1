"""``deepseg-leaderboard dir=PATH [out=PATH]``: the leaderboard of every run under a run or
multirun directory (not the segment report, which is ``deepseg-benchmark report=default``).

A Hydra app (configs/leaderboard.yaml) with the conventions of ``deepseg-predict``: no run
directory of its own; it writes into ``out`` (default ``<dir>/aggregate``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

from deepseg.cli.common import config_path, report_errors, run_command
from deepseg.cli.predict import options

COMMAND = "deepseg-leaderboard"
CONFIG_NAME = "leaderboard"
USAGE = "deepseg-leaderboard dir=PATH [out=PATH]"
logger = logging.getLogger(__name__)

# Set by the old name (deepseg-report): its name in error lines, and the line logged once the
# config is composed
_command = COMMAND
_notice: str | None = None


@hydra.main(version_base="1.3", config_path=config_path(), config_name=CONFIG_NAME)
def app(cfg: DictConfig) -> None:
    """Aggregate the results under ``cfg.dir`` (error lines under the running name)."""
    report_errors(_command)(_leaderboard)(cfg)


def _leaderboard(cfg: DictConfig) -> None:
    opts = options(cfg, ("dir",), USAGE)
    if _notice:
        logger.warning(_notice)
    from deepseg.tasks.aggregate import report_directory

    directory, out = str(opts["dir"]), opts["out"]
    agg = report_directory(directory, out)
    print(agg.markdown())
    out = out or f"{directory.rstrip('/')}/aggregate"
    print(f"\nLeaderboard: {out}/leaderboard.md (leaderboard.csv, failed.csv, <metric>.png)")


def run(
    argv: Sequence[str] | None = None, *, command: str = COMMAND, notice: str | None = None
) -> None:
    """``deepseg-leaderboard`` with ``argv`` (default: the command line).

    Args:
        argv: the arguments.
        command: the name in error lines (the old name when called through it).
        notice: a line logged (warning) once the config is composed.
    """
    global _command, _notice
    _command, _notice = command, notice
    try:
        run_command(command, app, argv)
    finally:
        _command, _notice = COMMAND, None


def main() -> None:
    run()


if __name__ == "__main__":
    main()
