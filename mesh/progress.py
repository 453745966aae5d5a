"""Progress of long work: a bar with rate and ETA on a terminal, plain log lines elsewhere.

Every long loop of geoloc (ingestion, the demo's photos, prediction over folders or record shards,
the index, training epochs, evaluation) reports through ``progress(total, unit, desc)``::

    with progress(len(files), "photo", "predict", log=log) as bar:
        for batch in batches:
            ...
            bar.update(len(batch))

On a terminal (``stream.isatty()``, stderr by default) it draws a ``tqdm`` bar with done/total,
rate and ETA that disappears when the work ends. Elsewhere (CI, a run's log file, the demo's
redirected output) it logs a line at most every ``every_s`` seconds (``PROGRESS_EVERY_S``) with
done/total, rate and ETA, so a log grows by a few lines a minute per phase, never a line a step.
Either way one closing line is logged (count, time, rate), so a run's log file says how long each
phase took; ``final_line=False`` leaves it to a caller that logs its own summary. An unknown
total (``None``) shows the count and rate without an ETA.

Lines go through ``logging`` (the caller's logger, ``mesh.progress`` by default) because the
runner and the commands log that way: they land in ``run.log`` with the stage lines. ``tqdm`` is
imported only when a bar is drawn, so ``mesh`` stays quick to import.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

PROGRESS_EVERY_S = 20.0  # seconds between two log lines of one phase when not on a terminal
BAR_REFRESH_S = 0.5  # seconds between two redraws of a terminal bar
MODES = ("auto", "on", "off")  # the choices of a command's --progress setting

_LOG = logging.getLogger("mesh.progress")


def format_duration(seconds: float) -> str:
    """H:MM:SS below a day, else days; '?' when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 86400:
        whole = int(round(seconds))
        return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
    return f"{seconds / 86400:.1f}d"


def format_rate(rate: float) -> str:
    """Three significant figures at most, so a line stays short whatever the speed."""
    return f"{rate:.0f}" if rate >= 100 else f"{rate:.3g}"


def format_count(n: float, scale: bool = False) -> str:
    """A count as is, or with ``scale`` in SI prefixes at three significant figures (1.23G)."""
    if not scale:
        return f"{n:.0f}"
    for prefix in ("", "k", "M", "G", "T"):
        if abs(n) < 999.5:
            return f"{n:.3g}{prefix}"
        n /= 1000
    return f"{n:.3g}P"


def is_terminal(stream: IO[str]) -> bool:
    """A terminal a bar can be drawn on: a tty with a size (a pseudo-terminal of 0 columns or 0
    rows, as ``script`` opens without a terminal, gets log lines: tqdm would draw nothing)."""
    if not getattr(stream, "isatty", lambda: False)():
        return False
    try:
        size = os.get_terminal_size(stream.fileno())
        return size.columns > 0 and size.lines > 0
    except (OSError, ValueError):  # no file descriptor: a stand-in that says it is a terminal
        return True


class Progress:
    """Counts done units of one phase and shows them (see module doc); use ``progress()``."""

    def __init__(
        self,
        total: int | None,
        unit: str,
        desc: str,
        *,
        enabled: bool = True,
        bar: bool | None = None,
        stream: IO[str] | None = None,
        log: logging.Logger | None = None,
        every_s: float | None = None,
        refresh_s: float = BAR_REFRESH_S,
        final_line: bool = True,
        scale: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total = None if total is None else int(total)
        self.unit, self.desc, self.enabled = unit, desc, enabled
        self.stream = sys.stderr if stream is None else stream
        self.log = log or _LOG
        self.every_s = PROGRESS_EVERY_S if every_s is None else every_s
        self.final_line, self.scale, self.clock = final_line, scale, clock
        self.done, self.note = 0, ""
        self.started = self.last_line = clock()
        if bar is None:
            bar = is_terminal(self.stream)
        self._bar: Any = None
        self._redirected = False
        if enabled and bar:
            self._open_bar(refresh_s)

    def _open_bar(self, refresh_s: float) -> None:
        from tqdm import tqdm

        _redirect_logging(+1)
        self._redirected = True
        self._bar = tqdm(
            total=self.total,
            unit=self.unit,
            desc=self.desc,
            file=self.stream,
            leave=False,
            mininterval=refresh_s,
            dynamic_ncols=True,
            unit_scale=self.scale,
        )

    def set_total(self, total: int | None) -> None:
        """The total once it is known (or known better), e.g. a file's size after opening it."""
        self.total = None if total is None else int(total)
        if self._bar is not None and self._bar.total != self.total:
            self._bar.total = self.total
            self._bar.refresh()

    def update(self, n: int = 1, note: str | None = None) -> None:
        """``n`` more units done; ``note`` (e.g. "3 failed") is shown after the rate from now on."""
        self.done += n
        if note is not None:
            self.note = note
        if not self.enabled:
            return
        if self._bar is not None:
            if note is not None:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(n)
            return
        now = self.clock()
        if now - self.last_line >= self.every_s:
            self.last_line = now
            self.log.info("%s", self.line(now))

    def rate(self, now: float | None = None) -> float:
        """Units per second since the start."""
        elapsed = (self.clock() if now is None else now) - self.started
        return self.done / max(elapsed, 1e-9)

    def eta_seconds(self, now: float | None = None) -> float:
        """Seconds left at the rate so far; inf when the total or the rate is unknown."""
        rate = self.rate(now)
        if self.total is None or rate <= 0:
            return math.inf
        return max(self.total - self.done, 0) / rate

    def line(self, now: float | None = None) -> str:
        """The periodic line: done/total, percent, rate and ETA (count and rate without a total)."""
        now = self.clock() if now is None else now
        rate = f"{self._rate_text(now)}{self._unit}/s"
        if self.total is None:
            text = f"{self.desc}: {self._count(self.done)}{self._unit}, {rate}"
        else:
            percent = 100 * self.done / self.total if self.total else 100.0
            text = (
                f"{self.desc}: {self._counts()}{self._unit} ({percent:.0f}%), {rate}, "
                f"ETA {format_duration(self.eta_seconds(now))}"
            )
        return text + (f", {self.note}" if self.note else "")

    def closing_line(self, now: float | None = None) -> str:
        """The last line: how many, in how long, how fast."""
        now = self.clock() if now is None else now
        text = (
            f"{self.desc}: {self._counts()}{self._unit} in {format_duration(now - self.started)} "
            f"({self._rate_text(now)}{self._unit}/s)"
        )
        return text + (f", {self.note}" if self.note else "")

    @property
    def _unit(self) -> str:
        """The unit after a count: "12 photos", but "1.5GB" with SI prefixes."""
        return self.unit if self.scale else f" {self.unit}"

    def _count(self, n: float) -> str:
        return format_count(n, self.scale)

    def _counts(self) -> str:
        """done/total, or done alone when the total is unknown."""
        done = self._count(self.done)
        return done if self.total is None else f"{done}/{self._count(self.total)}"

    def _rate_text(self, now: float) -> str:
        rate = self.rate(now)
        return format_count(rate, True) if self.scale else format_rate(rate)

    def close(self, finished: bool = True) -> None:
        """Removes the bar and, when ``finished`` (not left by an error), logs the closing line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._redirected:
            _redirect_logging(-1)
            self._redirected = False
        if finished and self.enabled and self.final_line:
            self.log.info("%s", self.closing_line())

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(finished=exc_type is None)


_redirect_lock = threading.Lock()
_redirect_state: dict[str, Any] = {"bars": 0, "stack": None}


def _redirect_logging(change: int) -> None:
    """While any bar is drawn, log lines printed to the console go above the bars instead of
    through them (``tqdm.contrib.logging``); counted, so that bars of several threads (Beam's
    direct runner) or nested bars swap the console handlers once and restore them once."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    with _redirect_lock:
        _redirect_state["bars"] += change
        if change > 0 and _redirect_state["stack"] is None:
            stack = contextlib.ExitStack()
            stack.enter_context(logging_redirect_tqdm())
            _redirect_state["stack"] = stack
        elif _redirect_state["bars"] == 0 and _redirect_state["stack"] is not None:
            _redirect_state["stack"].close()
            _redirect_state["stack"] = None


def progress(total: int | None, unit: str, desc: str, **options: Any) -> Progress:
    """A ``Progress`` of ``total`` ``unit``s (None: unknown) named ``desc``; ``options`` as
    ``Progress``: ``enabled``, ``bar`` (None: when the stream is a terminal), ``stream``, ``log``,
    ``every_s``, ``final_line``, ``scale`` (SI prefixes, for bytes), ``clock``."""
    return Progress(total, unit, desc, **options)


def shown(mode: str, by_default: bool) -> bool:
    """Whether a command's ``--progress`` (one of ``MODES``) shows progress; ``auto`` follows
    ``by_default`` (what the command decides, e.g. "a folder was given")."""
    if mode not in MODES:
        raise ValueError(f"--progress={mode!r}: expected one of {', '.join(MODES)}")
    return mode == "on" or (mode == "auto" and by_default)
