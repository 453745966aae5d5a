"""Strict parsing of the numbers and times that files and clients send: one definition for ingestion,
`geoloc predict` and `geoloc serve`.

Python's own parsers are generous in ways that hurt here: ``int("²")`` fails although
``"²".isdigit()`` is true, ``int("٣")`` is 3, ``float("1_0")`` is 10.0, and a time at year 9999 with
a -14:00 offset overflows when turned into epoch seconds. These functions accept ASCII only and
raise ``ValueProblem`` (a ``ValueError``) with a message naming what was expected; each caller adds
where the value came from (file:line, a request field, a flag).

Posting times are kept within 1970-01-01 .. 2100-12-31 UTC (``MIN_POSTED_AT`` .. ``MAX_POSTED_AT``).
Why: epoch seconds below 0 are not a posting time (photo sharing began in the 2000s; YFCC100M's
earliest uploads are from 2004), and M2's time features (``geoloc_tf.time_features``) are only
meaningful for dates a model could have been trained on; the bound of 2100 leaves room for any
photo of this century while keeping a year-10000 overflow, or an int64 overflow in TensorFlow,
out of reach.
"""

from __future__ import annotations

import datetime
import math
import re

#: 1970-01-01T00:00:00Z and 2100-12-31T23:59:59Z in epoch seconds: the posting times accepted.
MIN_POSTED_AT = 0
MAX_POSTED_AT = 4_133_980_799
POSTED_AT_RANGE = "1970-01-01 .. 2100-12-31 UTC"

_ASCII_INT = re.compile(r"[0-9]+")
_ASCII_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_EPOCH = re.compile(r"[0-9]+(\.[0-9]*)?")


class ValueProblem(ValueError):
    """A value that is not what was expected; the message says what was expected."""


def show(text: str | bytes, limit: int = 40) -> str:
    """A short, printable rendering of a bad value for an error line."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def ascii_int(text: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """A non-negative integer written in ASCII digits 0-9 (surrounding spaces allowed), within
    [minimum, maximum] when given."""
    stripped = text.strip()
    if not _ASCII_INT.fullmatch(stripped) or len(stripped) > 18:
        raise ValueProblem(f"{show(text)}: expected an integer in ASCII digits 0-9")
    value = int(stripped)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "" if minimum is None else str(minimum)
        high = "" if maximum is None else str(maximum)
        raise ValueProblem(f"{show(text)}: expected an integer in {low}..{high}")
    return value


def ascii_float(text: str) -> float:
    """A finite decimal number in ASCII (``0.25``, ``-3``, ``1e-3``); no ``nan``, ``inf``,
    underscores or other scripts' digits."""
    stripped = text.strip()
    if not _ASCII_DECIMAL.fullmatch(stripped):
        raise ValueProblem(f"{show(text)}: expected a decimal number in ASCII digits")
    value = float(stripped)
    if not math.isfinite(value):
        raise ValueProblem(f"{show(text)}: expected a finite number")
    return value


def ascii_float_bytes(data: bytes) -> float:
    """``ascii_float`` of raw bytes, for the metadata readers' loop over raw lines (YFCC100M: 100 M
    of them): it accepts the same numbers without decoding or a regular expression (0.5 instead of
    0.9 us a value on the dev machine). ``float`` of bytes reads ASCII only (no other scripts' digits
    or spaces; non-ASCII bytes fail), so what remains to refuse is underscores and non-finite
    values (``nan``, ``inf``, ``1e999``). Around the number only ASCII white space is allowed
    (``str.strip`` would also drop the separators \x1c-\x1f)."""
    try:
        value = float(data) if b"_" not in data else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueProblem(f"{show(data)}: expected a finite decimal number in ASCII digits")
    return value


def probability(text: str) -> float:
    """A probability in [0, 1] written in ASCII."""
    value = ascii_float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueProblem(f"{show(text)}: expected a probability in [0, 1]")
    return value


def posted_at(text: str) -> int:
    """UTC epoch seconds of a posting time given as epoch seconds (``1401633000``, a fraction is
    dropped) or ISO 8601 (``2014-06-01T14:30:00Z``, ``+02:00`` offsets; a time without an offset is
    UTC, as M2's time features are, §3.2), within ``POSTED_AT_RANGE``."""
    stripped = text.strip()
    expected = "expected epoch seconds or an ISO 8601 time such as 2014-06-01T14:30:00Z"
    if not stripped.isascii() or not stripped:
        raise ValueProblem(f"{show(text)}: {expected}")
    if _EPOCH.fullmatch(stripped):
        whole = stripped.split(".")[0]
        if len(whole) > 12:
            raise ValueProblem(f"{show(text)}: outside {POSTED_AT_RANGE}")
        seconds = int(whole)
    else:
        try:
            moment = datetime.datetime.fromisoformat(stripped)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.timezone.utc)
            seconds = math.floor(moment.timestamp())
        except (ValueError, OverflowError):  # not ISO 8601, or past year 9999 once in UTC
            if stripped[:1].isdigit() and "-" in stripped[1:]:
                raise ValueProblem(f"{show(text)}: not a valid time, or outside {POSTED_AT_RANGE}") from None
            raise ValueProblem(f"{show(text)}: {expected}") from None
    return check_posted_at(seconds, text)


#: Epoch numbers from this value up are milliseconds: 1e11 seconds would be the year 5138, far past
#: ``POSTED_AT_RANGE``, while 1e11 milliseconds is March 1973.
EPOCH_MILLISECONDS_FROM = 100_000_000_000


def capture_time(text: str) -> int:
    """UTC epoch seconds of a capture time given as epoch seconds, epoch milliseconds (Mapillary's
    and OSV-5M's ``captured_at``) or ISO 8601, within ``POSTED_AT_RANGE``.

    A number is milliseconds when it is at least ``EPOCH_MILLISECONDS_FROM``; the only times this
    reads wrongly are milliseconds before March 1973, older than any digital photo collection."""
    stripped = text.strip()
    if stripped.isascii() and _EPOCH.fullmatch(stripped):
        whole = stripped.split(".")[0]
        if len(whole) <= 15 and int(whole) >= EPOCH_MILLISECONDS_FROM:
            return check_posted_at(int(whole) // 1000, text)
    return posted_at(text)


def check_posted_at(seconds: int, text: str | None = None) -> int:
    """``seconds`` if within ``POSTED_AT_RANGE``, else ValueProblem."""
    if not MIN_POSTED_AT <= seconds <= MAX_POSTED_AT:
        shown = show(text) if text is not None else str(seconds)
        raise ValueProblem(f"{shown}: outside {POSTED_AT_RANGE}")
    return seconds


def format_posted_at(seconds: int) -> str:
    """ISO 8601 UTC of epoch seconds (``2014-06-01T14:30:00Z``)."""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
