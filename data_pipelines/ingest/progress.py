"""Progress lines of a long phase: at most one every PROGRESS_EVERY_S, with rate and ETA."""

from __future__ import annotations

import math
import time

PROGRESS_EVERY_S = 10.0


def format_eta(seconds: float) -> str:
    """H:MM:SS below a day, else days; '?' when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 86400:
        return time.strftime("%H:%M:%S", time.gmtime(seconds))
    return f"{seconds / 86400:.1f}d"


class Progress:
    """Says when a progress line is due and what the rate and ETA are, from its start."""

    def __init__(self, every_s: float = PROGRESS_EVERY_S):
        self.every_s = every_s
        self.restart()

    def restart(self) -> None:
        self.started = self.last = time.monotonic()

    def due(self, finished: bool = False) -> bool:
        """True (and the clock of the last line reset) when a line is due, or `finished`."""
        now = time.monotonic()
        if finished or now - self.last >= self.every_s:
            self.last = now
            return True
        return False

    def rate(self, done: float) -> float:
        """Units per second since the start."""
        return done / max(time.monotonic() - self.started, 1e-9)

    def eta(self, fraction_done: float) -> str:
        """Time left, extrapolated from the time so far and the fraction done."""
        if fraction_done <= 0:
            return format_eta(float("inf"))
        return format_eta((time.monotonic() - self.started) * (1 - fraction_done) / fraction_done)
