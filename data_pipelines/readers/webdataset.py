"""Streaming reader of webdataset tar shards (``--format=webdataset``), as img2dataset and PLONK write.

**Layout.** ``--metadata`` lists the shards (``00000.tar,00001.tar,...``), which lie inside
``--images``: the shards are both the metadata and the archives of the images. Samples are formed
as webdataset's own reader forms them (``webdataset.tariterators``: ``base_plus_ext`` and
``group_by_keys``): a member's **key** is its name up to the first dot of the basename (the folder
part included: ``train/0001.jpg`` has key ``train/0001``), the rest is its suffix, lower-cased
(``jpg``, ``json``, ``dinov2_vitl14_registers.npy``); consecutive members with the same key form one
sample. Names without a dot, webdataset's ``__meta__`` members, folders, links and other non-regular
members belong to no sample and are passed over, as webdataset does.

**A sample** is kept when it has a ``json`` member (at most ``max_line_bytes``, a JSON object) with a
latitude and longitude, and an image member (``jpg``, ``jpeg``, ``png`` or ``webp``, first found in
that order). JSON names, case-insensitive, first found wins:

  latitude      latitude, lat                     (PLONK: ``latitude``; img2dataset copies the
  longitude     longitude, lon, lng, long          input's columns, e.g. ``LAT``/``LON`` of MP-16)
  time          posted_at, date_uploaded, upload_time, captured_at, date_taken, datetaken, timestamp,
                time, datetime: epoch seconds, epoch milliseconds or ISO 8601
                (``values.capture_time``); optional (-1, unknown). A posting time is preferred; else
                a capture time (OSV-5M's ``captured_at``, YFCC's ``date_taken``) stands in for it:
                M2 then learns from when photos were taken, not posted.
  user          creator_id, user_id, user_nsid, owner, author, user, userid: hashed from its raw
                bytes (a JSON number as written); absent or empty, each photo is its own user,
                ``photo:<key>`` (as the CSV reader does for test sets without users)
  accuracy      accuracy (Flickr's 1-16; -1 unknown)
  admin areas   country, region, sub-region (or sub_region), city: the data set's own ground truth
                for admin-level accuracy (PLONK's OSV-5M shards carry OSV-5M's columns)

The **photo id is the sample key**: PLONK writes the data set's photo id there, img2dataset a running
number unique over its shards (``shard * 10^n + i``). URLs, captions, EXIF, user names and every
other JSON field are never read into the tables (privacy).

**Skips** (one record = one sample; ``line`` in messages = the sample's position in the tar, from 1):
a json over ``max_line_bytes`` (``common.Limits``: one metadata record) -> ``too_long``, never
read; no json member, not UTF-8 JSON or not an object, or a bad time or user -> ``bad_field``; no or bad coordinates -> ``no_coordinates`` / ``bad_coordinates`` /
``zero_coordinates``; no image member -> ``missing_image``. A key written twice (webdataset's own
reader refuses a sample whose suffix repeats: "duplicate file name in tar file") starts a new sample
with the same key here, so it is counted as ``duplicate_id`` by ingestion's duplicate pass, the first
sample kept, exactly as a photo id seen twice in a CSV. Broken image bytes are found by the ingestion
workers (``bad_image``).

**Images stay in the tar**: for each kept sample the reader records ``container`` = the shard's
position in ``--metadata`` and the image member's byte range (``offset``, ``size``); the workers read
that range. Nothing is extracted, and the reader itself reads only headers and JSON members (images
are seeked over). Sparse members are not read (no contiguous byte range).

**A damaged shard** (cut short by an interrupted download or copy, or with bytes after its last
member that are not a tar header) does not stop the run: the samples read whole before the damage
are kept, the sample the damage is in or right after (it may have lost members) is counted as
``missing_image`` with a message naming the byte where the tar stops being readable, and a warning
line says the same. A damaged shard is still usable up to that point, since every kept image is a
byte range checked to lie inside the file; stopping the run (as a truncated .gz does, whose rest
cannot be decoded) would throw away the other shards for it. An intact tar ends in two zero blocks
(tarfile, GNU tar and webdataset's TarWriter all write them); a shard without them is taken as cut.
An extended header (pax records, a GNU long name) is read whole by ``tarfile``: one, or a run of
them, over ``max_line_bytes`` is damage of the same kind, found from the 512-byte headers alone
before ``tarfile`` reads it. A file that is not an uncompressed tar at all (e.g. ``.tar.gz``: byte ranges need a plain tar)
stops the run with one line.

**Swapped latitude/longitude**: a pre-pass over the json members alone (``common.swap_proven``)
decides, before the main pass, whether the shard's "latitudes" are its longitudes.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from typing import Iterator

from data_pipelines import errors, values
from data_pipelines.readers import common
from data_pipelines.readers.formats import Format, ReadOptions

IMAGE_SUFFIXES = ("jpg", "jpeg", "png", "webp")
LAT_NAMES = ("latitude", "lat")
LON_NAMES = ("longitude", "lon", "lng", "long")
TIME_NAMES = (
    "posted_at",
    "date_uploaded",
    "upload_time",
    "captured_at",
    "date_taken",
    "datetaken",
    "timestamp",
    "time",
    "datetime",
)
USER_NAMES = ("creator_id", "user_id", "user_nsid", "owner", "author", "user", "userid")
ADMIN_NAMES = (("country",), ("region",), ("sub-region", "sub_region"), ("city",))
#: Extended header kinds ``tarfile`` reads whole into memory (pax records, GNU long names).
_EXTENDED = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
BLOCK = tarfile.BLOCKSIZE  # 512
# webdataset.tariterators.base_plus_ext: key = everything up to the first dot of the basename.
_KEY_SUFFIX = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
_META = re.compile(r"__[^/]*__($|/)")


def _no_data(member: tarfile.TarInfo) -> bool:
    """Member kinds whose header is followed by no data blocks."""
    return (
        member.isdir()
        or member.issym()
        or member.islnk()
        or member.ischr()
        or member.isblk()
        or member.isfifo()
    )


def _oversized_extended_headers(file, position: int, limit: int) -> str:
    """Why the extended headers starting at byte ``position`` must not be read (a run of them
    holding more than ``limit`` bytes: ``tarfile`` would read them all into memory), or ""."""
    total = 0
    while True:
        file.seek(position)
        block = file.read(BLOCK)
        try:
            head = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.TarError:
            return ""  # not a header: tarfile says what it is
        if head.type not in _EXTENDED:
            return ""
        total += head.size
        if total > limit:
            return (
                f"extended tar headers (pax or GNU long names) of more than {total} bytes at byte "
                f"{position}; expected at most max_line_bytes={limit}"
            )
        position += BLOCK + -(-head.size // BLOCK) * BLOCK


class _Shard:
    """One tar, walked member by member (headers only; a member's bytes are read on request). Stops
    at the first sign of damage and says what it was in ``damage``."""

    def __init__(self, path: str, limits: common.Limits = common.DEFAULT_LIMITS):
        self.path = path
        self.limit = limits.max_line_bytes
        self.file = open(path, "rb")
        self.size = os.fstat(self.file.fileno()).st_size
        self.damage = ""
        self.position = 0  # where the next header starts (after the last member's data blocks)
        oversized = _oversized_extended_headers(self.file, 0, self.limit)
        if oversized:
            self.file.close()
            raise errors.LayoutError(
                f"{path}: {oversized}; expected a tar of webdataset samples for --format=webdataset"
            )
        self.file.seek(0)
        try:
            self.tar = tarfile.open(fileobj=self.file, mode="r:")
        except tarfile.TarError as e:
            self.file.close()
            raise errors.LayoutError(
                f"{path}: not a readable tar ({e}); expected an uncompressed tar of webdataset "
                "samples (key.jpg + key.json ...) for --format=webdataset"
            ) from None

    def close(self) -> None:
        self.tar.close()
        self.file.close()

    def members(self) -> Iterator[tuple[str, str, tarfile.TarInfo]]:
        """(key, suffix, member) of each regular member that belongs to a sample, in tar order. A
        member whose data runs past the end of the file is yielded (its sample is the damaged one),
        then the walk stops with ``damage`` set.

        The walk reads one header at a time (``TarInfo.fromtarfile``) and seeks past the data
        itself: ``TarFile.next`` would keep every header it has read, which a single huge tar
        would fill memory with."""
        while True:
            oversized = _oversized_extended_headers(self.file, self.position, self.limit)
            if oversized:
                self.damage = oversized
                return
            self.file.seek(self.position)
            try:
                member = tarfile.TarInfo.fromtarfile(self.tar)
            except tarfile.HeaderError:  # a zero block (the end), or a short or invalid header
                self._check_end()
                return
            except (tarfile.TarError, OSError, EOFError, UnicodeError) as e:
                self.damage = f"unreadable member header at byte {self.position} ({e})"
                return
            self.position = member.offset_data
            if not _no_data(member):
                self.position += -(-member.size // BLOCK) * BLOCK
            cut = member.offset_data + member.size > self.size and not _no_data(member)
            match = _KEY_SUFFIX.match(member.name)
            if member.isreg() and not member.issparse() and match and not _META.match(member.name):
                yield match.group(1), match.group(2).lower(), member
            if cut:
                self.damage = (
                    f"member {values.show(member.name, 80)} runs past the end of the file "
                    f"({member.offset_data + member.size} > {self.size} bytes): the file is cut short"
                )
                return

    def _check_end(self) -> None:
        """Where no header could be read: an intact tar has only zero blocks left, at least two."""
        self.file.seek(self.position)
        left = 0
        while block := self.file.read(1 << 16):
            if block.strip(b"\x00"):
                self.damage = f"bytes that are not a tar header at byte {self.position + left}"
                return
            left += len(block)
        if left < 2 * BLOCK:
            self.damage = (
                f"no end-of-archive marker (two zero blocks) after byte {self.position}: the file "
                "is cut short"
            )

    def read(self, member: tarfile.TarInfo) -> bytes:
        handle = self.tar.extractfile(member)
        assert handle is not None  # regular members only
        return handle.read()


class _Sample:
    """The members of one sample, by suffix (first of each), and where it starts."""

    def __init__(self, key: str, number: int):
        self.key = key
        self.number = number
        self.members: dict[str, tarfile.TarInfo] = {}


def _samples(shard: _Shard) -> Iterator[_Sample]:
    """Consecutive members with the same key, grouped; a suffix seen twice starts a new sample
    with the same key (a duplicate, see the module docstring)."""
    current: _Sample | None = None
    number = 0
    for key, suffix, member in shard.members():
        if current is None or key != current.key or suffix in current.members:
            if current is not None:
                yield current
            number += 1
            current = _Sample(key, number)
        current.members[suffix] = member
    if current is not None:
        yield current


def _lowered(document: dict) -> dict:
    return {str(k).lower(): v for k, v in document.items()}


def _first(document: dict, names: tuple[str, ...]):
    """The value of the first of ``names`` the document has, null and "" counting as absent."""
    for name in names:
        value = document.get(name)
        if value is not None and value != "":
            return value
    return None


def _as_text(value) -> str | None:
    """A JSON scalar as the text it stands for (numbers as Python writes them back); None for
    objects, lists and booleans, which no field here may be."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return None


def _document(shard: _Shard, sample: _Sample) -> tuple[dict | None, str, str]:
    """The sample's JSON object (names lower-cased), or None, the skip reason and why."""
    member = sample.members.get("json")
    if member is None:
        return (
            None,
            common.BAD_FIELD,
            f"sample {values.show(sample.key)} has no .json member; expected <key>.json",
        )
    if member.size > shard.limit:  # never read: a stranger's tar may declare gigabytes
        return (
            None,
            common.TOO_LONG,
            f"{member.size} bytes of JSON; expected at most max_line_bytes={shard.limit}",
        )
    try:
        document = json.loads(shard.read(member))
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return (
            None,
            common.BAD_FIELD,
            f"{values.show(member.name)} is not JSON ({str(e)[:80]}); expected a JSON object",
        )
    if not isinstance(document, dict):
        return (
            None,
            common.BAD_FIELD,
            f"{values.show(member.name)} holds a {type(document).__name__}; expected a JSON object",
        )
    return _lowered(document), "", ""


def _coordinate_texts(document: dict) -> tuple[str, str]:
    """(latitude text, longitude text); "" when absent, a text no number has when not a scalar."""
    lat = _as_text(_first(document, LAT_NAMES))
    lon = _as_text(_first(document, LON_NAMES))
    return ("[not a number]" if lat is None else lat), ("[not a number]" if lon is None else lon)


def swap_proven(path: str, limits: common.Limits = common.DEFAULT_LIMITS) -> bool:
    """The pre-pass: True when the shard's latitudes and longitudes are exchanged
    (``common.swap_proven`` over the json members only)."""
    shard = _Shard(path, limits)
    try:

        def pairs():
            for sample in _samples(shard):
                document, _, _ = _document(shard, sample)
                if document is not None:
                    yield _coordinate_texts(document)

        return common.swap_proven(pairs())
    finally:
        shard.close()


def _user(document: dict, key: str) -> bytes | None:
    """The raw bytes of the sample's user id (``photo:<key>`` when it names none); None if the
    field is not a string or number."""
    value = _first(document, USER_NAMES)
    text = _as_text(value)
    if text is None:
        return None
    if not text.strip():
        text = f"photo:{key}"
    return text.encode("utf-8", "surrogatepass")


def _admin(document: dict) -> tuple[str, str, str, str]:
    found = []
    for names in ADMIN_NAMES:
        value = _first(document, names)
        found.append(value.strip() if isinstance(value, str) and common.valid_text(value) else "")
    return found[0], found[1], found[2], found[3]


def read_webdataset(
    path: str,
    *,
    template,
    user_hasher,
    skips: common.SkipLog,
    options: ReadOptions,
    chunk_lines: int = 1 << 18,
    on_progress=None,
) -> Iterator[tuple[int, dict]]:
    """Yields (samples read so far, chunk columns) of one shard; see the module docstring.
    ``template`` is not used: the image is the sample's own member."""
    swapped = swap_proven(path, options.limits)
    if swapped:
        common.warn_swapped(path, "latitude", "longitude")
    shard = _Shard(path, options.limits)
    builder = common.ChunkBuilder()
    number = 0
    try:
        pending: _Sample | None = None
        for sample in _samples(shard):
            if pending is not None:
                _add(shard, pending, builder, skips, user_hasher, options.file_index, swapped)
            number, pending = sample.number, sample
            if len(builder) >= chunk_lines:
                if on_progress is not None:
                    on_progress(number, shard.position, shard.size)
                yield number - 1, builder.take()
        # The last sample is decided once the walk has ended: after damage it may lack members.
        if pending is not None:
            if shard.damage:
                skips.add(
                    common.MISSING_IMAGE,
                    path,
                    pending.number,
                    f"sample {values.show(pending.key)}: the tar is damaged here ({shard.damage}); "
                    f"the {pending.number - 1} samples before it were read; expected an intact tar",
                )
            else:
                _add(shard, pending, builder, skips, user_hasher, options.file_index, swapped)
        if shard.damage:
            common.log.warning(
                "%s: read error after sample %d (%s); the samples before it are kept; expected an intact tar",
                path,
                max(number - 1, 0),
                shard.damage,
            )
        yield number, builder.take()
    finally:
        shard.close()


def _add(shard, sample: _Sample, builder, skips, user_hasher, container: int, swapped: bool) -> None:
    """Keeps ``sample`` in ``builder`` or counts it in ``skips`` by reason."""
    path, line, key = shard.path, sample.number, sample.key
    document, why, problem = _document(shard, sample)
    if document is None:
        skips.add(why, path, line, problem)
        return
    lat_text, lon_text = _coordinate_texts(document)
    if swapped:
        lat_text, lon_text = lon_text, lat_text
    reason, lat_e7, lon_e7, detail = common.parse_coordinates(lat_text, lon_text)
    if reason is not None:
        skips.add(reason, path, line, f"sample {values.show(key)}: {detail}")
        return
    posted_at, time_problem = -1, ""
    time_text = _as_text(_first(document, TIME_NAMES))
    if time_text is None:
        time_problem = "not a string or number"
    elif time_text.strip():
        try:
            posted_at = values.capture_time(time_text)
        except values.ValueProblem as e:
            time_problem = str(e)
    user = _user(document, key)
    if time_problem or user is None:
        skips.add(
            common.BAD_FIELD,
            path,
            line,
            f"sample {values.show(key)}: time={time_problem or 'ok'}, user "
            f"{'ok' if user is not None else 'not a string or number'}; expected epoch seconds, "
            f"milliseconds or ISO 8601 within {values.POSTED_AT_RANGE} and a user id",
        )  # never the raw user id (privacy)
        return
    image = next((sample.members[s] for s in IMAGE_SUFFIXES if s in sample.members), None)
    if image is None:
        skips.add(
            common.MISSING_IMAGE,
            path,
            line,
            f"sample {values.show(key)} has no image member; expected <key>.jpg (or .jpeg, .png, .webp)",
        )
        return
    if not (common.valid_text(key) and common.valid_text(image.name)):
        skips.add(
            common.BAD_FIELD,
            path,
            line,
            f"key={values.show(key)}, member={values.show(image.name)}; expected UTF-8 names without NUL bytes",
        )
        return
    accuracy = _as_text(document.get("accuracy"))
    builder.add(
        key,
        user_hasher(user),
        posted_at,
        lat_e7,
        lon_e7,
        common.parse_accuracy(accuracy) if accuracy else -1,
        float("nan"),
        image.name,
        line,
        container=container,
        offset=image.offset_data,
        size=image.size,
        admin=_admin(document),
    )


def sniff(path: str, first_line: bytes) -> bool:
    """format=auto: a ``.tar`` named in --metadata is a webdataset shard."""
    return path.lower().endswith(".tar")


FORMAT: Format = Format(
    "webdataset",
    "webdataset tar shards (key.jpg + key.json samples, as img2dataset and PLONK write them) "
    "listed as --metadata and lying inside --images; images read from the tars",
    read_webdataset,
    metadata_are_archives=True,
    sniff=sniff,
)
