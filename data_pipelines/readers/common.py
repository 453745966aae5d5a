"""Shared pieces of the metadata readers: opening (.bz2/.gz/.xz), bounded lines, skip bookkeeping,
path templates.

A reader turns one metadata file into ``ParsedChunk``s (columns of kept fields, numpy arrays) and
counts every line it does not keep by reason, so that for each file
``lines_read == kept + sum(skipped)`` holds exactly.

Metadata files come from strangers, so nothing in a line may end the run: every number is parsed
with ``data_pipelines.values`` (ASCII digits only, posting times within 1970-2100), a line that
does not fit is counted under its reason, and only a file that cannot be read at all (a truncated
.gz/.bz2) stops the run, with the line it got to (``read_error``).

Lines are read with a length limit (``Limits``): a 2 MB ``.gz`` can hold one 2 GB line, and reading
it whole, as iterating over a file does, would take as much memory. A line over the limit is read
on in bounded pieces that are thrown away as they come, and counted as one ``too_long`` skip.
"""

from __future__ import annotations

import bz2
import collections
import dataclasses
import gzip
import io
import logging
import lzma
import re
from typing import BinaryIO

import numpy as np

from data_pipelines import errors, values

log = logging.getLogger("data_pipelines.readers")

# Skip reasons (summary.json keys). Metadata reasons are decided by the readers and the
# duplicate pass; image reasons by the ingestion workers (data_pipelines.ingest.image_files).
WRONG_FIELD_COUNT = "wrong_field_count"
# Unparsable photo id, user or posting time (a time outside 1970-2100 included), or a photo id /
# image path that is not valid UTF-8 or holds a NUL byte (it could not be stored or opened).
BAD_FIELD = "bad_field"
NO_COORDINATES = "no_coordinates"  # empty lat/lon (YFCC lines that are not geotagged)
BAD_COORDINATES = "bad_coordinates"  # unparsable, non-ASCII, non-finite or out of range
ZERO_COORDINATES = "zero_coordinates"  # (0, 0): a default, not a place
VIDEO = "video"
DUPLICATE_ID = "duplicate_id"
MISSING_IMAGE = "missing_image"  # no such file, or it cannot be read (permissions, I/O error)
# The image path resolves (absolute, ``..``, a symlink) outside the images folder: never read,
# so metadata cannot pack other files of the machine into a data set.
OUTSIDE_IMAGES = "outside_images"
# The image path names a FIFO, device, socket or folder: only regular files are opened, so a
# FIFO cannot block a worker and a device cannot be read forever.
NOT_A_FILE = "not_a_file"
BAD_IMAGE = "bad_image"  # undecodable or truncated
# A line (or a CSV record, or one of its fields) longer than ``Limits`` allows: read past in
# bounded pieces, never held whole.
TOO_LONG = "too_long"
# An archive member that is a placeholder saved in place of a deleted photo, not the photo
# (MP16-Pro's tar: ``data_pipelines.archives.placeholder_members``).
PLACEHOLDER_IMAGE = "placeholder_image"
SKIP_REASONS = (
    TOO_LONG,
    WRONG_FIELD_COUNT,
    BAD_FIELD,
    NO_COORDINATES,
    BAD_COORDINATES,
    ZERO_COORDINATES,
    VIDEO,
    DUPLICATE_ID,
    MISSING_IMAGE,
    PLACEHOLDER_IMAGE,
    OUTSIDE_IMAGES,
    NOT_A_FILE,
    BAD_IMAGE,
)

#: Administrative levels a data set may name for a photo, coarsest first.
ADMIN_COLUMNS = ("country", "region", "sub_region", "city")

# Columns of a parsed chunk. Only these leave the raw metadata: never nickname, title,
# description, tags or URLs (privacy: README "Responsible use").
COLUMNS = (
    "photo_id",
    "user_hash",
    "posted_at",
    "lat_e7",
    "lon_e7",
    "accuracy",
    "outdoor_prob",
    "image_path",
    "line",
    # Where the image is (``data_pipelines.readers.formats``): -1, a plain file ``image_path``
    # under the images folder; k >= 0, inside archive k, at byte ``offset`` for ``size`` bytes
    # (-1 when the archive finds members by name).
    "container",
    "offset",
    "size",
    # The data set's own administrative areas of the photo ("" unknown): ground truth of the
    # country / region / sub-region / city accuracy (OSV-5M, MP16-Pro).
    *ADMIN_COLUMNS,
)
COORD_SCALE = 10_000_000  # lat/lon stored as int64 1e-7 degrees: exact to ~1 cm, no float32 loss.


class SkipLog:
    """Counts skipped lines by reason and keeps (and logs) the first few of each as file:line."""

    def __init__(self, limit: int = 5):
        self.limit = limit
        self.counts: collections.Counter = collections.Counter()
        self.examples: dict[str, list[str]] = collections.defaultdict(list)

    def add(self, reason: str, path: str, line: int, detail: str = "") -> None:
        self.counts[reason] += 1
        if self.counts[reason] <= self.limit:
            message = f"{errors.where(path, line)}: {reason}" + (f" ({detail})" if detail else "")
            self.examples[reason].append(message)
            log.warning("skipped %s", message)

    def merge(self, other: "SkipLog") -> None:
        self.counts.update(other.counts)
        for reason, messages in other.examples.items():
            room = self.limit - len(self.examples[reason])
            self.examples[reason].extend(messages[: max(room, 0)])

    def to_json(self) -> dict:
        return {
            "counts": dict(self.counts),
            "examples": {k: list(v) for k, v in self.examples.items()},
        }

    @classmethod
    def from_json(cls, data: dict, limit: int = 5) -> "SkipLog":
        out = cls(limit)
        out.counts.update(data.get("counts", {}))
        for reason, messages in data.get("examples", {}).items():
            out.examples[reason].extend(messages)
        return out


class ChunkBuilder:
    """Accumulates kept rows in Python lists and hands them out as numpy columns."""

    def __init__(self):
        self.rows = {name: [] for name in COLUMNS}

    def __len__(self) -> int:
        return len(self.rows["line"])

    def add(
        self,
        photo_id,
        user_hash,
        posted_at,
        lat_e7,
        lon_e7,
        accuracy,
        outdoor_prob,
        image_path,
        line,
        *,
        container: int = -1,
        offset: int = -1,
        size: int = -1,
        admin: tuple[str, str, str, str] = ("", "", "", ""),
    ):
        r = self.rows
        r["photo_id"].append(photo_id)
        r["user_hash"].append(user_hash)
        r["posted_at"].append(posted_at)
        r["lat_e7"].append(lat_e7)
        r["lon_e7"].append(lon_e7)
        r["accuracy"].append(accuracy)
        r["outdoor_prob"].append(outdoor_prob)
        r["image_path"].append(image_path)
        r["line"].append(line)
        r["container"].append(container)
        r["offset"].append(offset)
        r["size"].append(size)
        for name, value in zip(ADMIN_COLUMNS, admin):
            r[name].append(value)

    def take(self) -> dict[str, np.ndarray]:
        r = self.rows
        out = {
            "photo_id": np.asarray(r["photo_id"], dtype=object),
            "user_hash": np.asarray(r["user_hash"], dtype=object),
            "posted_at": np.asarray(r["posted_at"], dtype=np.int64),
            "lat_e7": np.asarray(r["lat_e7"], dtype=np.int64),
            "lon_e7": np.asarray(r["lon_e7"], dtype=np.int64),
            "accuracy": np.asarray(r["accuracy"], dtype=np.int16),
            "outdoor_prob": np.asarray(r["outdoor_prob"], dtype=np.float32),
            "image_path": np.asarray(r["image_path"], dtype=object),
            "line": np.asarray(r["line"], dtype=np.int64),
            "container": np.asarray(r["container"], dtype=np.int32),
            "offset": np.asarray(r["offset"], dtype=np.int64),
            "size": np.asarray(r["size"], dtype=np.int64),
            **{name: np.asarray(r[name], dtype=object) for name in ADMIN_COLUMNS},
        }
        self.rows = {name: [] for name in COLUMNS}
        return out


@dataclasses.dataclass
class OpenedFile:
    stream: io.BufferedIOBase  # raw, or a decompressor reading it
    raw: BinaryIO  # the file on disk, for progress (compressed bytes read)
    size: int

    def position(self) -> int:
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self):
        self.stream.close()
        self.raw.close()


def open_binary(path: str) -> OpenedFile:
    """Opens plain, .bz2, .gz or .xz files for reading bytes; decompression is transparent."""
    raw = open(path, "rb")
    size = raw.seek(0, io.SEEK_END)
    raw.seek(0)
    stream: io.BufferedIOBase
    if path.endswith(".bz2"):
        stream = bz2.BZ2File(raw)
    elif path.endswith(".gz"):
        stream = gzip.GzipFile(fileobj=raw)
    elif path.endswith(".xz"):
        stream = lzma.LZMAFile(raw)
    else:
        stream = raw
    return OpenedFile(stream=stream, raw=raw, size=size)


UTF8_BOM = b"\xef\xbb\xbf"


def skip_bom(stream: io.BufferedIOBase) -> None:
    """Moves past a UTF-8 byte-order mark at the start of ``stream``, if there is one.

    Spreadsheet programs on Windows write one before a CSV header; left in place it would hide the
    header's first column name, or make a TSV's first line fail its photo id. Read-and-rewind rather
    than ``peek``: a decompressor's ``peek`` may return fewer than 3 bytes.
    """
    if stream.read(len(UTF8_BOM)) != UTF8_BOM:
        stream.seek(0)


#: Default of ``IngestConfig.max_line_bytes``: far above any real metadata line (YFCC100M's longest
#: are a few tens of kB, its descriptions included), far below what would strain memory.
MAX_LINE_BYTES = 1 << 20
#: Default of ``IngestConfig.max_field_bytes``: Python's own ``csv.field_size_limit``.
MAX_FIELD_BYTES = 128 << 10
#: A CSV header with more columns than this is refused (OSV-5M's, the widest read here, has 40).
MAX_HEADER_COLUMNS = 10_000
#: Pieces in which the rest of an over-long line is read and dropped.
_DISCARD_PIECE = 1 << 16


@dataclasses.dataclass(frozen=True)
class Limits:
    """How long a metadata line, a CSV record (the lines of one row, quoted newlines included) and
    a CSV field may be (``IngestConfig.max_line_bytes`` / ``max_field_bytes``)."""

    max_line_bytes: int = MAX_LINE_BYTES
    max_field_bytes: int = MAX_FIELD_BYTES


DEFAULT_LIMITS = Limits()


@dataclasses.dataclass(frozen=True)
class Overlong:
    """What ``bounded_lines`` gives in place of a line over the limit: only its length."""

    length: int  # bytes, its line ending included

    def detail(self, limit: int) -> str:
        return f"a line of {self.length} bytes; expected at most max_line_bytes={limit}"


def bounded_lines(stream: io.BufferedIOBase, limit: int):
    """Yields each line of ``stream`` as bytes with its line ending, or an ``Overlong`` for a line
    of more than ``limit`` bytes (line ending included), whose bytes are read in pieces of 64 kB
    and dropped: memory stays within ``limit`` whatever the file holds."""
    readline = stream.readline
    while True:
        line = readline(limit)
        if not line:
            return
        if len(line) < limit or line.endswith(b"\n"):
            yield line
            continue
        length = len(line)
        while True:  # the rest of the line, dropped
            piece = readline(_DISCARD_PIECE)
            length += len(piece)
            if not piece or piece.endswith(b"\n"):
                break
        if length == limit:  # exactly ``limit`` bytes, the file's last line (no line ending)
            yield line
        else:
            yield Overlong(length)


def iter_lines(opened: OpenedFile, max_line_bytes: int = MAX_LINE_BYTES):
    """Yields (line number from 1, bytes without the newline, or ``Overlong``); a final empty line
    is not a line, and a UTF-8 byte-order mark before the first line is not part of it. A line over
    ``max_line_bytes`` is never held whole (``bounded_lines``)."""
    skip_bom(opened.stream)
    for number, line in enumerate(bounded_lines(opened.stream, max_line_bytes), start=1):
        yield number, line if isinstance(line, Overlong) else line.rstrip(b"\r\n")


def shown_names(names: list[str], limit: int = 100) -> str:
    """Column names for a message, cut to about ``limit`` characters, with how many there are: a
    stranger's header may hold a million names, or one name of megabytes."""
    text = ",".join(names)
    cut = text if len(text) <= limit else text[:limit] + "..."
    return f"{cut!r} ({len(names)} column{'s' if len(names) != 1 else ''})"


def read_error(path: str, line: int, error: BaseException) -> errors.DatasetError:
    """The one error of a metadata file that cannot be read on (a truncated .gz/.bz2, an I/O error):
    the run stops there, since what follows cannot be known. ``line`` is the last line read whole,
    so the user sees how far the file is intact."""
    return errors.DatasetError(
        f"{path}: read error after line {line} ({error}); expected an intact plain, .bz2 or .gz file"
    )


def valid_text(text: str) -> bool:
    """True if ``text`` can be stored (UTF-8: no lone surrogates from undecodable bytes) and used as
    a file name (no NUL byte). Photo ids and image paths must be; user ids need not (hashed raw)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_accuracy(text: str | bytes) -> int:
    """Flickr's geotag accuracy (1 world .. 16 street level), or -1 (unknown) when the field is
    empty or unreadable: it only describes a photo (the tables keep it), it decides nothing, so a
    bad value should not cost the photo. ASCII digits only (``"\\u00b2".isdigit()`` is true, ``int`` of
    it fails), 0..999 as before."""
    if isinstance(text, bytes):  # The YFCC loop's fast path: bytes.isdigit() is ASCII-only.
        text = text.strip()
        return int(text) if text.isdigit() and len(text) < 4 else -1
    try:
        return values.ascii_int(text, 0, 999)
    except values.ValueProblem:
        return -1


def parse_coordinates(lat_text, lon_text) -> tuple[str | None, int, int, str]:
    """Returns (skip reason or None, lat_e7, lon_e7, detail); accepts str or bytes.

    Strict (``values.ascii_float``): ``float`` would take other scripts' digits and ``1_0``."""
    if not lat_text.strip() or not lon_text.strip():
        return NO_COORDINATES, 0, 0, "empty latitude/longitude"
    parse = values.ascii_float_bytes if isinstance(lat_text, bytes) else values.ascii_float
    try:
        lat = parse(lat_text)
        lon = parse(lon_text)
    except values.ValueProblem:
        return (
            BAD_COORDINATES,
            0,
            0,
            (
                f"latitude={values.show(lat_text)} longitude={values.show(lon_text)}; expected finite "
                "decimal degrees in ASCII"
            ),
        )
    if abs(lat) > 90.0 or abs(lon) > 180.0:
        return (
            BAD_COORDINATES,
            0,
            0,
            (
                f"latitude={values.show(lat_text)} longitude={values.show(lon_text)}; "
                "expected |lat| <= 90 and |lon| <= 180"
            ),
        )
    if lat == 0.0 and lon == 0.0:
        return ZERO_COORDINATES, 0, 0, "(0, 0)"
    return None, int(round(lat * COORD_SCALE)), int(round(lon * COORD_SCALE)), ""


def swap_proven(pairs) -> bool:
    """True when the value ranges of (latitude text, longitude text) pairs prove that the two are
    exchanged, so the file should be read the other way round (one public Im2GPS3k file labels its
    longitudes LAT). Unreadable values are passed over (the main pass counts them).

    Proof: no "longitude" lies outside +-90 (so all could be latitudes), and at least 1 % of the
    pairs (and at least one) have a "latitude" outside +-90 but within +-180 (impossible for a
    latitude, fine for a longitude). A stray bad row in a big regional file (longitudes all within
    +-90, e.g. Europe) is below 1 % and does not flip the whole file; in a file of a few lines one
    row decides. Every reader runs this over its file in a pre-pass before reading it."""
    rows = bad_as_is = bad_swapped = 0
    for lat_text, lon_text in pairs:
        parse = values.ascii_float_bytes if isinstance(lat_text, bytes) else values.ascii_float
        try:
            lat, lon = abs(parse(lat_text)), abs(parse(lon_text))
        except values.ValueProblem:
            continue
        rows += 1
        bad_as_is += 90.0 < lat <= 180.0
        bad_swapped += lon > 90.0
    return bad_swapped == 0 and bad_as_is >= max(1, 0.01 * rows)


def warn_swapped(path: str, lat_name: str, lon_name: str) -> None:
    """The one warning of a file read with latitude and longitude exchanged (``swap_proven``)."""
    log.warning(
        "%s: %r holds values beyond +-90 while %r stays within +-90: latitude and longitude are "
        "swapped; reading them the other way round",
        path,
        lat_name,
        lon_name,
    )


#: File name suffixes of photos (any case): an id ending in one names its file already.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def default_image_path(photo_id: str) -> str:
    """A photo's file under the images folder when no template or path column says: ``<id>.jpg``,
    or the id itself when it already names an image file (GeoEstimation's IMG_ID
    ``1000269685_e60e9cdfb4_1125_78841376@N00.jpg``, MP-16's ``e5/2d/2218633389.jpg``), never
    ``.jpg.jpg``."""
    return photo_id if photo_id.lower().endswith(IMAGE_SUFFIXES) else photo_id + ".jpg"


_TEMPLATE_FIELD = re.compile(r"\{(\w+)(?:\[(-?\d*):(-?\d*)\])?\}")
TEMPLATE_FIELDS = ("id", "hash", "ext", "secret", "server", "farm")


class PathTemplate:
    """``{field}`` / ``{field[a:b]}`` substitution, e.g. ``{hash[0:3]}/{hash[3:6]}/{hash}.jpg``.

    Python's str.format cannot slice, and the Multimedia Commons layout needs slices.
    """

    def __init__(self, template: str):
        self.template = template
        self.parts: list = []
        pos = 0
        for m in _TEMPLATE_FIELD.finditer(template):
            if m.start() > pos:
                self.parts.append(template[pos : m.start()])
            name = m.group(1)
            if name not in TEMPLATE_FIELDS:
                raise errors.ConfigError(
                    f"image_path_template {template!r}: unknown field {{{name}}}; expected one of "
                    + ", ".join("{%s}" % f for f in TEMPLATE_FIELDS)
                )
            if m.group(2) is None:
                self.parts.append((name, None, None))
            else:
                start = int(m.group(2)) if m.group(2) else None
                stop = int(m.group(3)) if m.group(3) else None
                self.parts.append((name, start, stop))
            pos = m.end()
        if pos < len(template):
            self.parts.append(template[pos:])
        if "{" in "".join(p for p in self.parts if isinstance(p, str)):
            raise errors.ConfigError(
                f"image_path_template {template!r}: unbalanced or malformed braces; expected fields "
                "like {id} or {hash[0:3]}"
            )
        self.fields = {p[0] for p in self.parts if isinstance(p, tuple)}

    def render(self, values: dict[str, str]) -> str:
        out = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
            else:
                value = values[p[0]]
                out.append(value if p[1] is None and p[2] is None else value[p[1] : p[2]])
        return "".join(out)
