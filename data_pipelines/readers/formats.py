"""The collection formats `geoloc ingest --format=NAME` (the runner's ``--data_format``) reads.

One reader interface for every collection the field trains and tests on. A format is a ``Format``:
a streaming ``read`` function that turns one metadata file into chunks of kept rows (the columns of
``common.COLUMNS``) and counts every record it does not keep by reason, plus where its images are:

- plain files under ``--images`` (``yfcc100m``, ``csv``, ``exif``): ``image_path`` names the file;
- archives under ``--images`` found by member name (``osv5m``'s zips, ``mp16pro``'s tar parts,
  ``msgpack``'s GeoEstimation shards): the reader puts the member key in ``image_path`` and the
  ingestion joins it with the archive index (``data_pipelines.archives``), built once per output
  folder;
- the metadata files themselves (``webdataset``: each tar holds a sample's JSON and its JPEG): the
  reader sets ``container`` to the file's position in ``--metadata`` and the image's byte range.

``format=auto`` picks the format from what the files say: their first line (a YFCC100M line, an
OSV-5M or MP16-Pro header, any CSV header naming id/lat/lon), their name (``.tar``, ``.msg``), or
no metadata at all (``exif``).
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Callable

from data_pipelines import errors
from data_pipelines.config import FORMAT_NAMES  # noqa: F401 - the settings' choices, listed once
from data_pipelines.readers import common, csv_layout, yfcc


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """What a reader may need beyond its file and the shared arguments."""

    images_root: str  # os.path.realpath of --images
    album_key: str = "creator"  # OSV-5M: what groups photos into M3's albums
    max_pixels: int = 100_000_000  # exif: the image decoder's header limit
    file_index: int = 0  # this file's position in --metadata (webdataset: its container)
    limits: common.Limits = common.DEFAULT_LIMITS  # longest line, record and CSV field


@dataclasses.dataclass(frozen=True)
class Format:
    """One collection format: see the module docstring."""

    name: str
    summary: str
    # read(path, *, template, user_hasher, skips, options, chunk_lines, on_progress)
    #   -> Iterator[(records read so far, columns)]; the last count is the file's lines_read.
    read: Callable
    # (images_root, skips) -> data_pipelines.archives.ArchiveIndex, for images in archives found by key.
    index_archives: Callable | None = None
    # MP16-Pro: its archives hold placeholder images (``archives.placeholder_members``), skipped
    # as ``placeholder_image`` where the rows are located in the archive index.
    placeholders: bool = False
    metadata_are_archives: bool = False  # webdataset: each metadata file is a tar of samples
    needs_metadata: bool = True  # exif: the photos are the metadata
    sniff: Callable[[str, bytes], bool] | None = None  # (path, first line) -> bool, for format=auto


def _read_yfcc(path, *, template, user_hasher, skips, options, chunk_lines=1 << 18, on_progress=None):
    fields = first_line(path, options.limits.max_line_bytes)[1].count(b"\t") + 1
    layout = yfcc.LAYOUTS.get(fields)
    if layout is None:
        raise errors.LayoutError(
            f"{path}: {fields} tab-separated field(s) in the first line; expected 23 "
            "(YFCC100M yfcc100m_dataset) or 25 (Multimedia Commons) for --format=yfcc100m"
        )
    yield from yfcc.read_yfcc(
        path,
        layout,
        template=common.PathTemplate(template or "{id}.jpg"),
        user_hasher=user_hasher,
        skips=skips,
        chunk_lines=chunk_lines,
        on_progress=on_progress,
        limits=options.limits,
    )


def _read_csv(path, *, template, user_hasher, skips, options, chunk_lines=1 << 18, on_progress=None):
    yield from csv_layout.read_csv(
        path,
        template=common.PathTemplate(template) if template else None,
        user_hasher=user_hasher,
        skips=skips,
        chunk_lines=chunk_lines,
        on_progress=on_progress,
        limits=options.limits,
    )


def _sniff_yfcc(path: str, line: bytes) -> bool:
    return line.count(b"\t") + 1 in yfcc.LAYOUTS


def _sniff_csv(path: str, line: bytes) -> bool:
    return csv_layout.looks_like_csv_header(line.decode("utf-8", "replace"))


YFCC100M = Format(
    "yfcc100m",
    "YFCC100M yfcc100m_dataset (23 tab-separated fields) or Multimedia Commons (25 fields); "
    "photos as files under --images (--image_path_template)",
    _read_yfcc,
    sniff=_sniff_yfcc,
)
CSV = Format(
    "csv",
    "a CSV with a header naming photo id, lat, lon and optionally user, time, outdoor probability "
    "and image path (Im2GPS, MP-16, YFCC4k...); photos as files under --images",
    _read_csv,
    sniff=_sniff_csv,
)

from data_pipelines.readers import exif, mp16pro, osv5m, webdataset  # noqa: E402 - they build on Format, above

#: Every format, in the order format=auto tries them (the specific CSV layouts before plain CSV).
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        YFCC100M,
        osv5m.FORMAT,
        mp16pro.FORMAT,
        mp16pro.MSGPACK_FORMAT,
        CSV,
        webdataset.FORMAT,
        exif.FORMAT,
    )
}


def get(name: str) -> Format:
    """The format called ``name``; a missing one is named with the ones this install has."""
    try:
        return FORMATS[name]
    except KeyError:
        raise errors.ConfigError(
            f"--format={name}: not available in this install; expected one of {', '.join(FORMATS)}"
        ) from None


def first_line(path: str, max_line_bytes: int = common.MAX_LINE_BYTES) -> tuple[int, bytes]:
    """The number and bytes of the first non-empty line of a metadata file ((0, b"") for an empty
    one), read within ``max_line_bytes`` (a 2 GB first line is never held); opening errors, and a
    first line over the limit, are one clear line."""
    try:
        opened = common.open_binary(path)
    except OSError as e:
        raise errors.LayoutError(
            f"{path}: cannot open metadata file ({e.strerror}); expected a readable file (.bz2/.gz/.xz allowed)"
        ) from None
    try:
        for number, line in common.iter_lines(opened, max_line_bytes):
            if isinstance(line, common.Overlong):
                raise errors.LayoutError(
                    f"{errors.where(path, number)}: cannot detect the format from {line.detail(max_line_bytes)}; "
                    "expected a CSV header or a YFCC100M line"
                )
            if line.strip():
                return number, line
        return 0, b""
    except (OSError, EOFError) as e:
        raise errors.LayoutError(
            f"{path}: cannot read ({e}); expected an intact plain, .bz2, .gz or .xz file"
        ) from None
    finally:
        opened.close()


def detect(path: str, max_line_bytes: int = common.MAX_LINE_BYTES) -> Format:
    """The format of one metadata file, from its name and first line (format=auto), read within
    ``max_line_bytes``."""
    if not os.path.isfile(path):
        raise errors.LayoutError(f"{path}: no such metadata file; expected a readable file")
    binary = os.path.splitext(path)[1].lower() in (".tar", ".msg")
    number, line = (1, b"") if binary else first_line(path, max_line_bytes)
    for fmt in FORMATS.values():
        if fmt.sniff is not None and fmt.sniff(path, line):
            return fmt
    if not binary and not line:
        raise errors.LayoutError(f"{path}: the file is empty; expected metadata lines")
    fields = line.count(b"\t") + 1
    try:
        columns = f"{len(next(csv.reader([line.decode('utf-8', 'replace')])))} comma-separated column(s)"
    except csv.Error as e:  # a field over csv.field_size_limit, a NUL byte
        columns = f"no readable CSV header ({e})"
    raise errors.LayoutError(
        f"{errors.where(path, number)}: cannot detect the format: {fields} "
        f"tab-separated field(s), {columns} and no CSV header naming photo id, lat and lon; expected 23 fields "
        "(YFCC100M), 25 (Multimedia Commons), such a CSV header (OSV-5M, MP16-Pro, Im2GPS...), "
        ".tar shards (webdataset), .msg shards (msgpack), or --format=NAME"
    )


def resolve(
    name: str, metadata: tuple[str, ...], max_line_bytes: int = common.MAX_LINE_BYTES
) -> tuple[Format, ...]:
    """The format of each metadata file: ``name``, or for ``auto`` the one each file says; no
    metadata files means ``exif`` (a folder of a person's own photos; one entry). Files of
    different formats mix only when all keep their photos as plain files (YFCC100M and CSV files,
    as before formats existed); archives belong to one format."""
    if name != "auto":
        return tuple(get(name) for _ in metadata) or (get(name),)
    if not metadata:
        return (get("exif"),)
    found = tuple(detect(path, max_line_bytes) for path in metadata)
    plain = all(f.index_archives is None and not f.metadata_are_archives for f in found)
    if len({f.name for f in found}) > 1 and not plain:
        raise errors.LayoutError(
            "the metadata files have different formats ("
            + ", ".join(f"{p}: {f.name}" for p, f in zip(metadata, found))
            + "); expected one format when images are in archives (set --format to force one)"
        )
    return found
