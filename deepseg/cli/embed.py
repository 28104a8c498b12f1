"""``deepseg-embed bundle=PATH input=new.csv output=embeddings.csv [chunk_size=N]``: the
embedding of every row (id, z_0, ...), also for bundles that cannot predict (n2d)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence

from deepseg.cli.common import report_errors
from deepseg.cli.predict import parse_options, to_int

USAGE = "deepseg-embed bundle=PATH input=FILE output=FILE.csv [chunk_size=N]"


@report_errors("deepseg-embed")
def run(argv: Sequence[str]) -> None:
    opts = parse_options(
        argv,
        {"bundle": None, "input": None, "output": None, "chunk_size": to_int},
        ("bundle", "input", "output"),
        USAGE,
    )
    from deepseg.tasks.predict import run_predict

    print(json.dumps(run_predict(**opts, embed_only=True), indent=1))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    run(sys.argv[1:])


if __name__ == "__main__":
    main()
