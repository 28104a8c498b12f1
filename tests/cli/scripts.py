"""Finding the installed console scripts that the command-line tests run."""

import shutil
import sys
from pathlib import Path


def console_script(name: str) -> str:
    """The installed console script ``name``, preferably beside the running interpreter."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    assert found, f"The console script '{name}' is not installed (pip install -e .)."
    return found
