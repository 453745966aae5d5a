"""Progress of long work: periodic log lines with rate and ETA off a terminal, a tqdm bar on one."""

import io
import logging
import re

import pytest

from mesh.progress import format_duration, progress, shown


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger="mesh.progress")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "mesh.progress"]


def test_lines_off_a_terminal_come_every_few_seconds_with_rate_and_eta(lines):
    clock, stream = FakeClock(), io.StringIO()
    with progress(100, "photos", "predict", stream=stream, every_s=10, clock=clock) as bar:
        for _ in range(10):  # 10 photos every 4 s: 2.5 photos/s
            clock.now += 4
            bar.update(10)
    # A line once 10 s have passed since the last: at 12, 24 and 36 s; the closing line at 40 s.
    assert lines() == [
        "predict: 30/100 photos (30%), 2.5 photos/s, ETA 0:00:28",
        "predict: 60/100 photos (60%), 2.5 photos/s, ETA 0:00:16",
        "predict: 90/100 photos (90%), 2.5 photos/s, ETA 0:00:04",
        "predict: 100/100 photos in 0:00:40 (2.5 photos/s)",
    ]
    assert stream.getvalue() == ""  # no bar off a terminal


def test_an_unknown_total_shows_count_and_rate_without_eta(lines):
    clock = FakeClock()
    with progress(None, "lines", "parse a.csv", stream=io.StringIO(), every_s=5, clock=clock) as bar:
        clock.now += 6
        bar.update(300, note="2 skipped")
    assert lines() == [
        "parse a.csv: 300 lines, 50 lines/s, 2 skipped",
        "parse a.csv: 300 lines in 0:00:06 (50 lines/s), 2 skipped",
    ]


def test_no_closing_line_after_an_error_or_when_asked(lines):
    with pytest.raises(RuntimeError):
        with progress(3, "shards", "write", stream=io.StringIO()):
            raise RuntimeError("boom")
    with progress(3, "shards", "write", stream=io.StringIO(), final_line=False) as bar:
        bar.update(3)
    with progress(3, "shards", "write", stream=Terminal(), enabled=False) as bar:
        bar.update(3)
    assert lines() == []


def test_a_terminal_gets_a_tqdm_bar_with_rate_and_eta(lines):
    stream = Terminal()
    with progress(10, "photos", "predict", stream=stream, refresh_s=0) as bar:
        for _ in range(4):
            bar.update(1, note="1 failed")
    drawn = stream.getvalue()
    assert re.search(
        r"predict:\s+40%\|.*\| 4/10 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+photos/s, 1 failed\]", drawn
    ), drawn
    [closing] = lines()  # the bar has no periodic lines, only the closing one
    assert closing.startswith("predict: 4/10 photos in 0:00:00 (")


def test_format_duration():
    assert format_duration(3725) == "1:02:05"
    assert format_duration(2 * 86400) == "2.0d"
    assert format_duration(float("inf")) == "?"


def test_progress_setting_modes():
    assert shown("on", False) and shown("auto", True)
    assert not shown("off", True) and not shown("auto", False)
    with pytest.raises(ValueError, match="--progress='sometimes'"):
        shown("sometimes", True)


def test_bytes_are_counted_with_si_prefixes(lines):
    clock = FakeClock()
    with progress(
        3_000_000_000, "B", "parse a.bz2", stream=io.StringIO(), every_s=1, scale=True, clock=clock
    ) as bar:
        clock.now += 20
        bar.update(1_500_000_000, note="12345 lines")
    assert lines()[0] == "parse a.bz2: 1.5G/3GB (50%), 75MB/s, ETA 0:00:20, 12345 lines"


def test_console_log_lines_go_above_open_bars_and_handlers_come_back(monkeypatch):
    """Bars of two threads, closed in any order, swap the console handler once and put it back
    once both are closed."""
    import sys

    stream = Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    console = logging.StreamHandler(sys.stderr)
    root.addHandler(console)
    try:
        first = progress(2, "files", "first", refresh_s=0)
        second = progress(2, "lines", "second", refresh_s=0)
        assert console not in root.handlers
        first.close()
        assert console not in root.handlers  # the second bar is still drawn
        second.close()
        assert console in root.handlers
    finally:
        root.removeHandler(console)
