"""``deepseg-export bundle=PATH format=onnx|torchscript [output=FILE]``: the encoder plus the
assignment head as ONNX or TorchScript, checked against torch."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence

from deepseg.cli.common import report_errors
from deepseg.cli.predict import parse_options

USAGE = "deepseg-export bundle=PATH format=onnx|torchscript [output=FILE]"


@report_errors("deepseg-export")
def run(argv: Sequence[str]) -> None:
    opts = parse_options(
        argv, {"bundle": None, "format": None, "output": None}, ("bundle", "format"), USAGE
    )
    from deepseg.export import export

    print(json.dumps(export(opts["bundle"], opts.get("output"), format=opts["format"]), indent=1))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    run(sys.argv[1:])


if __name__ == "__main__":
    main()
