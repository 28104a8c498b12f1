"""``deepseg-predict bundle=PATH input=new.csv output=assignments.csv [embedding=true]
[drift=true] [chunk_size=100000]``: assign new customers with a trained bundle."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from deepseg.cli.common import report_errors

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def to_bool(value: str, name: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"The option '{name}' must be true or false. Got {value!r}.")


def to_int(value: str, name: str) -> int:
    try:
        return int(value.replace("_", ""))
    except ValueError as exc:
        raise ValueError(f"The option '{name}' must be an integer. Got {value!r}.") from exc


def parse_options(
    argv: Sequence[str],
    options: dict[str, Callable[[str, str], Any] | None],
    required: Sequence[str],
    usage: str,
) -> dict[str, Any]:
    """``key=value`` arguments (Hydra-style overrides) checked against the known options."""
    out: dict[str, Any] = {}
    for arg in argv:
        if arg in ("-h", "--help"):
            print(usage)
            sys.exit(0)
        key, sep, value = arg.partition("=")
        if not sep:
            raise ValueError(f"Arguments are key=value; got {arg!r}. Usage: {usage}")
        if key not in options:
            raise ValueError(f"Unknown option '{key}'; valid options: {sorted(options)}.")
        convert = options[key]
        out[key] = value if convert is None else convert(value, key)
    missing = [k for k in required if k not in out]
    if missing:
        raise ValueError(f"Missing option(s) {missing}. Usage: {usage}")
    return out


USAGE = (
    "deepseg-predict bundle=PATH input=FILE output=FILE.csv [embedding=true] [drift=true] "
    "[chunk_size=N] [threads=1] [encoding=cp1252] [sep=';'] [sheet=NAME]"
)


@report_errors("deepseg-predict")
def run(argv: Sequence[str]) -> None:
    opts = parse_options(
        argv,
        {
            "bundle": None,
            "input": None,
            "output": None,
            "embedding": to_bool,
            "drift": to_bool,
            "chunk_size": to_int,
            "threads": to_int,
            "encoding": None,
            "sep": None,
            "sheet": None,
        },
        ("bundle", "input", "output"),
        USAGE,
    )
    from deepseg.tasks.predict import run_predict

    summary = run_predict(**opts)
    print(json.dumps(summary, indent=1))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    run(sys.argv[1:])


if __name__ == "__main__":
    main()
