"""Streaming reader of plain CSV photo collections (Im2GPS, MP-16 and anything similar).

Columns are found by header name, case-insensitive:
  photo id      id, photo_id, img_id, image_id                       (required)
  user          user, user_id, author, owner, user_nsid, ownernsid    (optional: test sets such as
                Im2GPS have none; then each photo is its own user, "photo:<id>", and albums or user
                averaging see single photos)
  latitude      lat, latitude                                          (required)
  longitude     lon, lng, long, longitude                              (required)
  posting time  posted_at, posted, timestamp, time, date_uploaded, datetime  (epoch s or ISO 8601;
                optional: MP-16 has none, then posted_at = -1)
  image path    path, image_path, file, filename, image               (optional; without it
                and without a template, ``<id>.jpg``, or the id itself when it already ends in an
                image extension, as GeoEstimation's IMG_ID does: ``common.default_image_path``)
  outdoor prob. outdoor_prob, prob_outdoor, p_outdoor, outdoor; or prob_indoor (1 - value)
  accuracy      accuracy                                               (optional)
MP-16/Im2GPS headers (``IMG_ID,AUTHOR,LAT,LON,...,Prob_indoor,...``) therefore work as they are.

Swapped LAT/LON: one public Im2GPS3k file labels longitude as LAT. A pre-pass over the file reads
both columns; only if the ranges prove the swap (``common.swap_proven``) are the columns
exchanged, with a warning. Otherwise nothing is changed and bad rows are skipped as
``bad_coordinates``.

Text is decoded as UTF-8 with ``surrogateescape``, after a byte-order mark if there is one: bytes
that are not UTF-8 survive as lone surrogates instead of becoming one replacement character. The
user id is hashed from its raw bytes (``encode("utf-8", "surrogateescape")`` gives them back), so
Latin-1 ids such as ``b"Jos\\xe9"`` and ``b"Jos\\xe8"`` stay two users. A photo id or image path
that is not valid UTF-8 cannot be stored in the tables (Parquet and TFRecord strings are UTF-8), so
its row is ``bad_field``: skipped and counted rather than stored with a guessed spelling. Numbers
and times are parsed with ``data_pipelines.values``: a posting time that is not epoch seconds or
ISO 8601 within 1970-2100 is ``bad_field``; an unreadable outdoor probability is NaN (unknown) and
an unreadable accuracy -1 (unknown), as neither decides whether the photo is usable.
"""

from __future__ import annotations

import csv
from typing import Callable, Iterator

from data_pipelines import errors, values
from data_pipelines.readers import common

ALIASES = {
    "photo_id": ("id", "photo_id", "photoid", "img_id", "image_id"),
    "user": ("user", "user_id", "userid", "author", "owner", "user_nsid", "ownernsid"),
    "lat": ("lat", "latitude"),
    "lon": ("lon", "lng", "long", "longitude"),
    "posted_at": (
        "posted_at",
        "posted",
        "timestamp",
        "time",
        "date_uploaded",
        "datetime",
        "upload_time",
        "date_posted",
    ),
    "image_path": ("path", "image_path", "file", "filename", "file_name", "image"),
    "outdoor_prob": ("outdoor_prob", "prob_outdoor", "p_outdoor", "outdoor"),
    "indoor_prob": ("prob_indoor", "indoor_prob", "p_indoor"),
    "accuracy": ("accuracy",),
}
REQUIRED = ("photo_id", "lat", "lon")


def header_columns(header: list[str]) -> dict[str, int]:
    """Maps our column names to positions in ``header``; unknown header names are ignored."""
    lowered = [h.strip().lower() for h in header]
    found = {}
    for name, aliases in ALIASES.items():
        for alias in aliases:
            if alias in lowered:
                found[name] = lowered.index(alias)
                break
    return found


def looks_like_csv_header(first_line: str) -> bool:
    """True if ``first_line`` (within the line limit: ``formats.first_line``) is a CSV header
    naming the required columns."""
    try:
        header = next(csv.reader([first_line]))
    except csv.Error:  # a field over csv.field_size_limit, NUL bytes
        return False
    return all(name in header_columns(header) for name in REQUIRED)


class _RecordTooLong(Exception):
    """A CSV record whose lines together pass ``max_line_bytes`` (a quote left open)."""


class _TextLines:
    """The lines of a CSV file as text, for ``csv.reader``: bounded (``common.bounded_lines``),
    UTF-8 after a byte-order mark if any, undecodable bytes kept as lone surrogates
    (``surrogateescape``) so that they can be turned back into the bytes they were. A line over the
    limit, or a record whose lines pass it, raises out of the reader's ``next`` (which starts afresh
    on the next call); ``number`` is the file line last read."""

    def __init__(self, opened: common.OpenedFile, limits: common.Limits):
        common.skip_bom(opened.stream)
        self.lines = common.bounded_lines(opened.stream, limits.max_line_bytes)
        self.limit = limits.max_line_bytes
        self.number = 0
        self.record_bytes = 0  # bytes of the record being read; the caller resets it per record

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self.lines)
        self.number += 1
        if isinstance(line, common.Overlong):
            raise line_too_long(line, self.limit)
        self.record_bytes += len(line)
        if self.record_bytes > self.limit:
            raise _RecordTooLong(
                f"a record of more than {self.limit} bytes over several lines (a quote left open?); "
                f"expected at most max_line_bytes={self.limit}"
            )
        return line.decode("utf-8", "surrogateescape")


class _LineTooLong(Exception):
    pass


def line_too_long(line: common.Overlong, limit: int) -> _LineTooLong:
    return _LineTooLong(line.detail(limit))


def records(path: str, opened: common.OpenedFile, limits: common.Limits):
    """Yields (file line of the record's end, fields or None, why not) for each record of a CSV
        file, its header first. A record that cannot be read (NUL bytes, a field over
        ``max_field_bytes``, a line or record over ``max_line_bytes``) is (line, None, (reason, detail)):
        ``too_long`` for a limit, ``wrong_field_count`` otherwise. Memory stays within the limits. A file
    that cannot be read on (a truncated .gz/.bz2) is ``common.read_error`` after the last line read."""
    # The csv module has one limit for the whole process: set while this file is read.
    previous = csv.field_size_limit(limits.max_field_bytes)
    try:
        yield from _records(path, opened, limits)
    finally:
        csv.field_size_limit(previous)


def _records(path: str, opened: common.OpenedFile, limits: common.Limits):
    lines = _TextLines(opened, limits)
    reader = csv.reader(lines)
    while True:
        lines.record_bytes = 0
        try:
            row = next(reader)
        except StopIteration:
            return
        except (OSError, EOFError) as e:
            raise common.read_error(path, lines.number, e) from None
        except (_LineTooLong, _RecordTooLong) as e:
            yield lines.number, None, (common.TOO_LONG, str(e))
        except csv.Error as e:
            if "field limit" in str(e):
                limit = limits.max_field_bytes
                detail = f"a field of more than {limit} bytes; expected at most max_field_bytes={limit}"
                yield lines.number, None, (common.TOO_LONG, detail)
            else:
                yield lines.number, None, (common.WRONG_FIELD_COUNT, f"unreadable CSV row: {e}")
        else:
            yield lines.number, row, None


def read_header(path: str, found) -> list[str] | None:
    """The header (the first record of ``records``), or None for an empty file. A header that
    cannot be read, is over a limit or has more than ``common.MAX_HEADER_COLUMNS`` columns is one
    clear line naming the file and line 1, never the header itself (it may be megabytes)."""
    first = next(found, None)
    if first is None:
        return None
    _, header, problem = first
    expected = "expected a CSV header of column names such as IMG_ID,AUTHOR,LAT,LON"
    if header is None:
        raise errors.LayoutError(f"{errors.where(path, 1)}: CSV header unreadable: {problem[1]}; {expected}")
    if len(header) > common.MAX_HEADER_COLUMNS:
        raise errors.LayoutError(
            f"{errors.where(path, 1)}: CSV header of {len(header)} columns; {expected}, at most "
            f"{common.MAX_HEADER_COLUMNS} columns"
        )
    return header


def outdoor_probability(text: str, indoor: bool) -> float:
    """P(outdoor) from an outdoor or indoor probability column; NaN (unknown) if unreadable."""
    try:
        value = values.probability(text)
    except values.ValueProblem:
        return float("nan")
    return 1.0 - value if indoor else value


def detect_swap(path: str, lat_col: int, lon_col: int, limits: common.Limits = common.DEFAULT_LIMITS) -> bool:
    """True when the value ranges of the LAT and LON columns prove them exchanged
    (``common.swap_proven``, over the whole file in a pre-pass; unreadable records passed over).
    A file that cannot be read on is ``common.read_error`` (``records``)."""
    opened = common.open_binary(path)
    found = records(path, opened, limits)
    need = max(lat_col, lon_col)
    try:
        next(found, None)
        return common.swap_proven(
            (row[lat_col], row[lon_col]) for _, row, _ in found if row is not None and len(row) > need
        )
    finally:
        found.close()  # now, not when collected: it restores csv.field_size_limit
        opened.close()


def stream_rows(
    path: str,
    begin: Callable[[list[str]], Callable[[list[str], int, common.ChunkBuilder], None]],
    *,
    skips: common.SkipLog,
    chunk_lines: int,
    on_progress=None,
    limits: common.Limits = common.DEFAULT_LIMITS,
) -> Iterator[tuple[int, dict]]:
    """Streams the CSV file ``path`` in chunks: yields (data rows read so far, chunk columns).

    ``begin(header)`` checks the header and returns ``add(fields, line, builder)``, which adds one
    row to the builder or counts it in ``skips``. A row that is unreadable (NUL bytes, runaway
    quotes: that row only) or has not as many fields as the header is counted here as
    ``wrong_field_count``; one over a limit (``records``) as ``too_long``. The header is not a data
    row; a header that cannot be read is one error line (``read_header``); a file that cannot be
    read on (a truncated .gz/.bz2) is ``common.read_error``."""
    opened = common.open_binary(path)
    found = records(path, opened, limits)
    line = 0
    try:
        header = read_header(path, found)
        if header is None:
            return
        line = 1
        add = begin(header)
        width, number = len(header), 0
        builder = common.ChunkBuilder()
        for line, row, problem in found:
            number += 1
            if row is None:
                skips.add(problem[0], path, line, problem[1])
                continue
            if len(row) != width:
                skips.add(
                    common.WRONG_FIELD_COUNT,
                    path,
                    line,
                    f"{len(row)} comma-separated fields; expected {width} as in the header",
                )
                continue
            add(row, line, builder)
            if len(builder) >= chunk_lines:
                if on_progress is not None:
                    on_progress(number, opened.position(), opened.size)
                yield number, builder.take()
        yield number, builder.take()
    except (OSError, EOFError) as e:  # e.g. a truncated .gz/.bz2
        raise common.read_error(path, line, e) from None
    finally:
        found.close()  # now, not when collected: it restores csv.field_size_limit
        opened.close()


def read_csv(
    path: str,
    *,
    template: common.PathTemplate | None,
    user_hasher: Callable[[bytes], str],
    skips: common.SkipLog,
    chunk_lines: int = 1 << 18,
    on_progress=None,
    limits: common.Limits = common.DEFAULT_LIMITS,
) -> Iterator[tuple[int, dict]]:
    """Yields (data lines read so far, chunk columns). The header is not a data line."""

    def begin(header: list[str]):
        cols = header_columns(header)
        missing = [name for name in REQUIRED if name not in cols]
        if missing:
            raise errors.LayoutError(
                f"{errors.where(path, 1)}: CSV header {common.shown_names(header)} lacks {', '.join(missing)}; expected "
                "columns for photo id, lat, lon and optionally user (e.g. IMG_ID,AUTHOR,LAT,LON)"
            )
        if template is not None and template.fields - {"id"}:
            raise errors.ConfigError(
                f"{path}: image_path_template {template.template!r} uses fields a CSV file does not "
                "have; expected only {id}"
            )
        i_lat, i_lon = cols["lat"], cols["lon"]
        if detect_swap(path, i_lat, i_lon, limits):
            common.warn_swapped(path, header[i_lat], header[i_lon])
            i_lat, i_lon = i_lon, i_lat
        i_id, i_user = cols["photo_id"], cols.get("user")
        i_time, i_path = cols.get("posted_at"), cols.get("image_path")
        i_out, i_in, i_acc = cols.get("outdoor_prob"), cols.get("indoor_prob"), cols.get("accuracy")

        def add(row: list[str], line: int, builder: common.ChunkBuilder) -> None:
            reason, lat_e7, lon_e7, detail = common.parse_coordinates(row[i_lat], row[i_lon])
            if reason is not None:
                skips.add(reason, path, line, detail)
                return
            photo_id = row[i_id].strip()
            user = row[i_user].strip() if i_user is not None else f"photo:{photo_id}"
            if template is not None:
                image_path = template.render({"id": photo_id})
            elif i_path is not None:
                image_path = row[i_path].strip()
            else:
                image_path = common.default_image_path(photo_id)
            posted_at, time_problem = -1, ""  # no time column (MP-16): -1, unknown
            if i_time is not None:
                try:
                    posted_at = values.posted_at(row[i_time])
                except values.ValueProblem as e:
                    time_problem = str(e)
            if not photo_id or not user or time_problem:
                skips.add(
                    common.BAD_FIELD,
                    path,
                    line,
                    f"photo id={values.show(photo_id)}, user {'present' if user else 'empty'}, "
                    f"time={time_problem or 'ok'}; expected a photo id, a user and epoch seconds or "
                    f"ISO 8601 within {values.POSTED_AT_RANGE}",
                )  # never the raw user id (privacy)
                return
            if not (common.valid_text(photo_id) and common.valid_text(image_path)):
                skips.add(
                    common.BAD_FIELD,
                    path,
                    line,
                    f"photo id={values.show(photo_id)}, image path={values.show(image_path)}; expected "
                    "UTF-8 text without NUL bytes",
                )
                return
            if i_out is not None:
                outdoor = outdoor_probability(row[i_out], indoor=False)
            elif i_in is not None:
                outdoor = outdoor_probability(row[i_in], indoor=True)
            else:
                outdoor = float("nan")
            builder.add(
                photo_id,
                user_hasher(user.encode("utf-8", "surrogateescape")),
                posted_at,
                lat_e7,
                lon_e7,
                common.parse_accuracy(row[i_acc]) if i_acc is not None else -1,
                outdoor,
                image_path,
                line,
            )

        return add

    yield from stream_rows(
        path, begin, skips=skips, chunk_lines=chunk_lines, on_progress=on_progress, limits=limits
    )
