"""``deepseg-report DIR [--out X]``: the old name of ``deepseg-leaderboard dir=DIR [out=X]``.

It accepts its old form (and the new ``key=value`` one), logs one line naming the command that
replaced it, and runs that command.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from deepseg.cli import leaderboard

COMMAND = "deepseg-report"
CONFIG_NAME = leaderboard.CONFIG_NAME
NOTICE = (
    "deepseg-report is now deepseg-leaderboard (deepseg-leaderboard dir=DIR [out=X]); "
    "the old name still works."
)


def _quote(value: str) -> str:
    """A path as a Hydra override value: quoted, so commas, colons or spaces stay in it."""
    return value if "'" in value else f"'{value}'"


# Hydra's own flags pass through: these without a value, those with one
_FLAGS = ("-h", "--help", "--hydra-help", "--version", "--resolve", "-m", "--multirun")
_FLAGS_WITH_VALUE = (
    "-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name",
    "-cd", "--config-dir", "-i", "--info",
)  # fmt: skip


def translate(argv: Sequence[str]) -> list[str]:
    """The old arguments (``DIR [--out X]``) as the new command's overrides; ``key=value``
    arguments and Hydra's flags (``--help``, ...) pass through.

    Raises:
        ValueError: ``--out`` without a value, an unknown flag, or a second directory.
    """
    out: list[str] = []
    directory = None
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--out" or arg.startswith("--out="):
            value = arg.partition("=")[2] if "=" in arg else None
            if value is None:
                if i + 1 >= len(args):
                    raise ValueError("--out needs a value: deepseg-report DIR --out PATH.")
                i += 1
                value = args[i]
            out.append(f"out={_quote(value)}")
        elif arg in _FLAGS or (arg.partition("=")[0] in _FLAGS_WITH_VALUE and "=" in arg):
            out.append(arg)
        elif arg in _FLAGS_WITH_VALUE:
            out.extend(args[i : i + 2])
            i += 1
        elif arg.startswith("-"):
            hint = " (did you mean '--out'?)" if arg.startswith("--o") else ""
            raise ValueError(f"Unknown option '{arg}'{hint}. Usage: deepseg-report DIR [--out X].")
        elif "=" in arg and "/" not in arg.partition("=")[0]:
            out.append(arg)
        elif directory is None:
            directory = arg
            out.append(f"dir={_quote(arg)}")
        else:
            raise ValueError(f"One directory only: got '{directory}' and '{arg}'.")
        i += 1
    return out


def run(argv: Sequence[str] | None = None) -> None:
    """``deepseg-report`` with ``argv`` (default: the command line)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        translated = translate(args)
    except ValueError as exc:
        print(f"{COMMAND}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    leaderboard.run(translated, command=COMMAND, notice=NOTICE)


def main() -> None:
    run()


if __name__ == "__main__":
    main()
