"""deepseg.progress: a bar on a terminal only, plain log lines (with count and ETA) otherwise."""

from __future__ import annotations

import io
import logging
import re

import pytest

from deepseg.progress import Progress, progress

LOGGER = "deepseg.progress"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_off_a_terminal_one_line_per_tenth_with_eta(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with Progress(total=1000, desc="new.csv", unit="rows") as bar:
        for _ in range(1000):
            bar.update(1)
    lines = _lines(caplog)
    assert len(lines) == 10
    assert [int(re.match(r"new\.csv: (\d+)/1000 rows", line)[1]) for line in lines] == list(
        range(100, 1001, 100)
    )
    assert all("ETA" in line and "elapsed" in line for line in lines)
    assert "(100%)" in lines[-1]


def test_a_chunk_crossing_several_tenths_logs_once(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with Progress(total=300, desc="out.csv", unit="rows") as bar:
        bar.update(250)
        bar.update(50)
    assert [line.split(" (")[0] for line in _lines(caplog)] == [
        "out.csv: 250/300 rows",
        "out.csv: 300/300 rows",
    ]


def test_unknown_total_logs_every_n_updates_and_the_last_count(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with Progress(desc="out.csv", unit="rows", log_every=2) as bar:
        for _ in range(5):
            bar.update(10)
    lines = _lines(caplog)
    assert [line.split(",")[0] for line in lines] == [
        "out.csv: 20 rows done",
        "out.csv: 40 rows done",
        "out.csv: 50 rows done",
    ]
    assert not any("ETA" in line for line in lines)


def test_on_a_terminal_a_bar_and_no_log_lines(caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger=LOGGER)
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert list(progress(["a", "b", "c"], desc="jobs", unit="jobs")) == ["a", "b", "c"]
    assert _lines(caplog) == []
    drawn = terminal.getvalue()
    assert "jobs" in drawn and "3/3" in drawn


def test_progress_counts_the_items_of_an_iterable(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert list(progress(range(4), desc="choose-k", unit="k")) == [0, 1, 2, 3]
    assert _lines(caplog)[-1].startswith("choose-k: 4/4 k (100%)")


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"total": -1}, "total"), ({"log_every": 0}, "log_every")]
)
def test_bad_arguments_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=f"'{name}'"):
        Progress(**kwargs)
