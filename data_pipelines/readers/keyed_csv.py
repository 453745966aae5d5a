"""Streaming reader of the CSV files of collections whose photos sit in archives (OSV-5M, MP16-Pro,
GeoEstimation's MP-16 shards): each row names its photo by id, and the reader puts the photo's
archive key in ``image_path``; the ingestion finds the member through the archive index
(``data_pipelines.archives``).

A ``Layout`` names the columns of one collection (header names, case-insensitive), so that each
collection's module says what its columns mean and this one reads them all alike:

- every row is kept or counted under one reason: ``wrong_field_count`` (not as many fields as the
  header, or an unreadable CSV row), ``no_coordinates`` / ``bad_coordinates`` /
  ``zero_coordinates`` (``common.parse_coordinates``), ``bad_field`` (empty photo id or album
  column, an unreadable time, an id that is not UTF-8 text);
- the album column (a photographer or a capture sequence) is hashed from its raw bytes with the
  data set's ``user_hasher``; nothing else of it is kept, and no other free-text column (user
  names, URLs) is read at all;
- a time column is read with ``values.capture_time`` (epoch seconds, epoch milliseconds or ISO
  8601); an empty one is -1 (unknown) and the photo is kept, as for collections with no time;
- the admin columns (country, region, sub-region, city; per level the first of the layout's names
  the header has) are kept as text, "" where empty, as the
  ground truth of admin-level accuracy; bytes that are not UTF-8 become U+FFFD there, since a name
  only describes the photo;
- a pre-pass proves or rules out swapped latitude/longitude columns (``csv_layout.detect_swap``,
  i.e. ``common.swap_proven`` over the file).

Text is decoded as UTF-8 with ``surrogateescape``, as ``csv_layout`` does and for the same reasons.
"""

from __future__ import annotations

import csv
import dataclasses
from typing import Callable, Iterator

from data_pipelines import errors, values
from data_pipelines.readers import common, csv_layout


@dataclasses.dataclass(frozen=True)
class Layout:
    """The columns of one collection's CSV (header names; "" or None: the collection has none)."""

    name: str  # the collection, in messages ("OSV-5M train.csv/test.csv")
    photo_id: str
    lat: str
    lon: str
    time: str | None  # a capture or posting time (epoch s, epoch ms or ISO 8601)
    # country, region, sub-region, city: a header name each, or names in order of preference
    admin: tuple[str | tuple[str, ...], str | tuple[str, ...], str | tuple[str, ...], str | tuple[str, ...]]
    indoor: str | None  # P(indoor): outdoor_prob = 1 - value
    key: Callable[[str], str]  # photo id -> the archive key of its photo

    def header_positions(self, path: str, header: list[str], album: str) -> dict[str, int]:
        """Positions of the layout's columns in ``header``; the required ones (id, lat, lon and
        the album column) missing is one clear line."""
        lowered = [h.strip().lower() for h in header]
        wanted = {"photo_id": self.photo_id, "lat": self.lat, "lon": self.lon, "album": album}
        missing = [name for name in wanted.values() if name.lower() not in lowered]
        if missing:
            raise errors.LayoutError(
                f"{errors.where(path, 1)}: CSV header lacks {', '.join(missing)}; expected the "
                f"{self.name} header ({', '.join(wanted.values())}, ...)"
            )
        optional = {"time": self.time, "indoor": self.indoor}
        found = {k: lowered.index(v.lower()) for k, v in wanted.items()}
        found.update({k: lowered.index(v.lower()) for k, v in optional.items() if v and v.lower() in lowered})
        for i, names in enumerate(self.admin):
            present = [
                n for n in ((names,) if isinstance(names, str) else names) if n and n.lower() in lowered
            ]
            if present:
                found[f"admin{i}"] = lowered.index(present[0].lower())
        return found

    def sniff(self, line: bytes, must_have: tuple[str, ...]) -> bool:
        """True if ``line`` is a CSV header with the id, lat and lon columns and ``must_have``."""
        try:
            header = next(csv.reader([line.decode("utf-8", "replace").lstrip("\ufeff")]))
        except (csv.Error, StopIteration):
            return False
        lowered = {h.strip().lower() for h in header}
        return all(name.lower() in lowered for name in (self.photo_id, self.lat, self.lon, *must_have))


def _admin_text(row: list[str], column: int | None) -> str:
    """The admin name in ``column`` of ``row`` ("" without the column) as storable text: stripped;
    bytes that were not UTF-8 become U+FFFD."""
    if column is None:
        return ""
    text = row[column].strip()
    return (
        text
        if common.valid_text(text)
        else text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    )


def read(
    path: str,
    layout: Layout,
    album: str,
    *,
    user_hasher: Callable[[bytes], str],
    skips: common.SkipLog,
    chunk_lines: int = 1 << 18,
    on_progress=None,
    limits: common.Limits = common.DEFAULT_LIMITS,
) -> Iterator[tuple[int, dict]]:
    """Yields (data rows read so far, chunk columns) of ``path``; ``album`` is the header name of
    the column grouping photos into albums (hashed). The header is not a data row."""

    def begin(header: list[str]):
        cols = layout.header_positions(path, header, album)
        i_lat, i_lon = cols["lat"], cols["lon"]
        if csv_layout.detect_swap(path, i_lat, i_lon, limits):
            common.warn_swapped(path, header[i_lat], header[i_lon])
            i_lat, i_lon = i_lon, i_lat
        i_id, i_album, i_time, i_in = cols["photo_id"], cols["album"], cols.get("time"), cols.get("indoor")
        i_admin = [cols.get(f"admin{i}") for i in range(4)]

        def add(row: list[str], line: int, builder: common.ChunkBuilder) -> None:
            reason, lat_e7, lon_e7, detail = common.parse_coordinates(row[i_lat], row[i_lon])
            if reason is not None:
                skips.add(reason, path, line, detail)
                return
            photo_id, user = row[i_id].strip(), row[i_album].strip()
            posted_at, time_problem = -1, ""
            if i_time is not None and row[i_time].strip():
                try:
                    posted_at = values.capture_time(row[i_time])
                except values.ValueProblem as e:
                    time_problem = str(e)
            key = layout.key(photo_id)
            if (
                not (photo_id and user and common.valid_text(photo_id) and common.valid_text(key))
                or time_problem
            ):
                skips.add(
                    common.BAD_FIELD,
                    path,
                    line,
                    f"photo id={values.show(photo_id)}, {album} {'present' if user else 'empty'}, "
                    f"time={time_problem or 'ok'}; expected a photo id in UTF-8, a {album} and epoch "
                    f"seconds, epoch milliseconds or ISO 8601 within {values.POSTED_AT_RANGE}",
                )  # never the raw user id (privacy)
                return
            builder.add(
                photo_id,
                user_hasher(user.encode("utf-8", "surrogateescape")),
                posted_at,
                lat_e7,
                lon_e7,
                -1,
                csv_layout.outdoor_probability(row[i_in], indoor=True) if i_in is not None else float("nan"),
                key,
                line,
                admin=(
                    _admin_text(row, i_admin[0]),
                    _admin_text(row, i_admin[1]),
                    _admin_text(row, i_admin[2]),
                    _admin_text(row, i_admin[3]),
                ),
            )

        return add

    yield from csv_layout.stream_rows(
        path, begin, skips=skips, chunk_lines=chunk_lines, on_progress=on_progress, limits=limits
    )
