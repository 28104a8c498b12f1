"""Progress of long loops: a tqdm bar on a terminal, plain log lines otherwise.

A bar is drawn only when stderr is a terminal; in a log file, a pipe or a batch job the same
progress is a few ``logging`` lines instead: one per tenth of the total when it is known, else
one every ``log_every`` updates, each with the count, the elapsed time and, with a total, an ETA.

>>> with Progress(total=3, desc="jobs", unit="jobs") as bar:  # doctest: +SKIP
...     for job in jobs:
...         run(job)
...         bar.update()
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
_logger = logging.getLogger(__name__)


def on_terminal() -> bool:
    """Whether stderr (where bars are drawn) is a terminal."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """A counter shown as a tqdm bar on a terminal and as log lines elsewhere.

    Args:
        total: the count when done (None: unknown; the lines then show a rate, no ETA).
        desc: what is counted, at the start of the bar or line.
        unit: the unit of the count ("rows", "jobs", ...).
        logger: where the lines go (default: this module's logger).
        log_every: without a total, log every this many updates.
        bar: force the bar on (True) or off (False); default: on a terminal only.
    """

    def __init__(
        self,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        *,
        logger: logging.Logger | None = None,
        log_every: int = 1,
        bar: bool | None = None,
    ) -> None:
        if total is not None and total < 0:
            raise ValueError(f"The 'total' of a Progress must be >= 0 or None. Got {total}.")
        if log_every < 1:
            raise ValueError(f"The 'log_every' of a Progress must be >= 1. Got {log_every}.")
        self.total = total
        self.desc = desc
        self.unit = unit
        self.logger = logger or _logger
        self.log_every = log_every
        self.n = 0
        self._updates = 0
        self._logged_tenth = 0
        self._start = time.perf_counter()
        self._closed = False
        self._bar: Any = None
        if on_terminal() if bar is None else bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=f" {unit}", file=sys.stderr)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more done."""
        self.n += n
        self._updates += 1
        if self._bar is not None:
            self._bar.update(n)
            return
        if self.total:
            tenth = min(10, math.floor(10 * self.n / self.total))
            if tenth > self._logged_tenth:
                self._logged_tenth = tenth
                self._log()
        elif self._updates % self.log_every == 0:
            self._log()

    def line(self) -> str:
        """The progress as one line: count, share and ETA (with a total), elapsed time."""
        elapsed = time.perf_counter() - self._start
        head = f"{self.desc}: " if self.desc else ""
        if self.total:
            share = self.n / self.total
            eta = elapsed * (1 - share) / share if share > 0 else math.nan
            eta_text = _duration(eta) if math.isfinite(eta) else "?"
            return (
                f"{head}{self.n}/{self.total} {self.unit} ({100 * share:.0f}%), "
                f"{_duration(elapsed)} elapsed, ETA {eta_text}"
            )
        rate = self.n / elapsed if elapsed > 0 else math.inf
        return f"{head}{self.n} {self.unit} done, {_duration(elapsed)} elapsed ({rate:.4g}/s)"

    def _log(self) -> None:
        self.logger.info("%s", self.line())

    def close(self) -> None:
        """End the bar (or log the final count, if the last line did not show it)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.total is None and self._updates % self.log_every != 0:
            self._log()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def progress(
    iterable: Iterable[T],
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    *,
    logger: logging.Logger | None = None,
) -> Iterator[T]:
    """Iterate over ``iterable`` counting its items with a :class:`Progress`.

    Args:
        iterable: the items.
        total: their number (default: ``len(iterable)`` when it has one).
        desc: what is counted.
        unit: the unit of the count.
        logger: where the lines go off a terminal.

    Yields:
        The items of ``iterable``.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(total, desc, unit, logger=logger) as counter:
        for item in iterable:
            yield item
            counter.update()
