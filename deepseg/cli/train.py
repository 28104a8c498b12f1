"""``deepseg-train``: train one method on one dataset with one seed (or a sweep of them).

Single run: bad input exits 2 with one error line before anything is written; a method that fails
while fitting writes its failed row and exits 1. Multirun (``-m``): the method names and the
objective of the whole sweep are checked before any job starts (exit 2); after that every job
writes its row, a failing job writes a failed row with its error and the sweep goes on.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from deepseg.cli.common import (
    USER_ERRORS,
    config_path,
    full_error,
    group_options,
    report_errors,
    run_command,
)

COMMAND = "deepseg-train"
CONFIG_NAME = "train"


def _metric_direction(metric: str) -> str:
    from deepseg.tasks.train import metric_direction

    return metric_direction(metric)


# Optuna's direction in configs/hparams_search/ is ${metric_direction:${objective.metric}}
if not OmegaConf.has_resolver("metric_direction"):
    OmegaConf.register_new_resolver("metric_direction", _metric_direction)


def _swept_values(cfg: DictConfig, key: str) -> list[Any]:
    """Every value ``key`` takes in the sweep: from the command line and the sweeper's params."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [str(o) for o in cfg.hydra.overrides.task]
    params = cfg.hydra.sweeper.get("params") or {}
    overrides += [f"{k}={v}" for k, v in params.items()]
    values: list[Any] = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.get_key_element() != key:
            continue
        if override.is_sweep_override():
            if override.is_discrete_sweep():
                values.extend(override.sweep_iterator())
        else:
            values.append(override.value())
    return values


def model_names() -> list[str]:
    """The choices of the ``model`` group: deep models (generated, :mod:`deepseg.configs.methods`)
    and baselines (configs/model/)."""
    return group_options("model")


def check_sweep(cfg: DictConfig) -> None:
    """Refuse, before any job starts, a sweep with an unknown method or objective."""
    from deepseg.tasks.run import check_methods
    from deepseg.tasks.train import check_objective

    models = [str(m) for m in _swept_values(cfg, "model")]
    if models:
        check_methods(models, dict.fromkeys(model_names()))
    metrics = _swept_values(cfg, "objective.metric") or [cfg.objective.metric]
    for metric in metrics:
        objective = {**OmegaConf.to_container(cfg.objective), "metric": metric}  # type: ignore[dict-item]
        check_objective(objective)


class SweepChecks(Callback):
    """Hydra callback: :func:`check_sweep` at the start of a run or a multirun.

    A refused config ends the command with ``deepseg-train: error: <message>`` and exit code 2,
    before the sweeper (e.g. Optuna) or any job starts.
    """

    def _check(self, config: DictConfig) -> None:
        try:
            check_sweep(config)
        except USER_ERRORS as exc:
            if full_error():
                raise
            print(f"{COMMAND}: error: {exc}", file=sys.stderr)
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)


@hydra.main(version_base="1.3", config_path=config_path(), config_name=CONFIG_NAME)
@report_errors(COMMAND)
def app(cfg: DictConfig) -> float:
    """Train one job; returns its objective value (for sweepers such as Optuna)."""
    from deepseg.tasks.train import status_line, train

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    row = train(cfg, hc.runtime.output_dir, raise_errors=not multirun)
    job = f"job {hc.job.num}" if multirun else ""
    print(status_line(row, job), flush=True)
    if not multirun:
        print(f"Results: {hc.runtime.output_dir}/results.csv")
        if row["status"] != "ok":
            sys.exit(1)
    value = row.get("objective_value", math.nan)
    return float(value) if value is not None else math.nan


def run(argv: Sequence[str] | None = None) -> None:
    """``deepseg-train`` with ``argv`` (default: the command line)."""
    run_command(COMMAND, app, argv)


def main() -> None:
    run()


if __name__ == "__main__":
    main()
