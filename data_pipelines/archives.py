"""Photos read straight out of the archives a collection ships in: zips, tars split into parts, and
GeoEstimation's msgpack shards. Nothing is unpacked to disk.

A collection in archives is read in two steps. Once per output folder, an index builder lists every
member of every archive under ``--images`` (``ArchiveIndex``: the member's key, its archive, and
where its bytes lie); the ingestion joins the metadata's keys with it, so that a photo whose member
is in no archive is counted as ``missing_image`` before any image is read. Then each ingestion
worker reads the members its rows name through one ``ArchiveReader``, which keeps its archives open.

The layouts, as the datasets' own loaders read them:

- **OSV-5M** (``osv5m/osv5m`` on the Hugging Face hub; its loader script and the authors' code,
  github.com/gastruc/osv5m ``data/data.py``): ``images/{train,test}/NN.zip``, each holding JPEGs
  named ``<id>.jpg`` after the ``id`` column of ``train.csv`` / ``test.csv`` (the authors unzip them
  and open ``<split>/<id>.jpg``). Key: the member's file name without its extension, whatever folder
  the zip puts it in. Zips find members by name (``offset``/``size`` are -1); zipfile checks each
  member's CRC as it reads.
- **MP16-Pro** (``Jia-py/MP16-Pro`` on the hub, read by G3's ``MP16Dataset``): one tar,
  ``mp-16-images.tar``, shipped split into parts ``mp-16-images00`` ... ``mp-16-images18`` that are
  its byte-wise concatenation; members are JPEGs named after ``IMG_ID`` with "/" replaced by "_"
  (``e5/2d/2218633389.jpg`` -> ``e5_2d_2218633389.jpg``). Key: the member's file name. Parts split
  with ``split`` (``x.tar.aa``, ``x.tar.ab``) or numbered (``x.tar.001``) are joined the same way.
  The parts are read as one virtual file: the index walks the tar headers (never extracting) to
  give each member's data offset and size, and a read is a seek and a read of that range across
  parts. The tar also holds Flickr's "photo unavailable" placeholders, saved in place of photos
  deleted before the crawl, under the real photos' names and locations: members of
  ``PLACEHOLDER_MAX_BYTES`` or fewer are such placeholders (``placeholder_members``), counted and
  skipped as ``placeholder_image`` wherever MP16-Pro's members are located (``Format.placeholders``).
  Walking the headers runs at about 20 000 members/s on one core (MP16-Pro's 4.7 M: some 4
  minutes, once per output folder); zip directories about 65 000/s, msgpack shards 200 000/s
  (records of 2 kB, from the page cache).
- **GeoEstimation msgpack** (github.com/TIBHannover/GeoEstimation ``download_images.py`` writes and
  ``classification/dataset.py`` reads them): ``shard_<n>.msg`` files, each a plain concatenation of
  msgpack maps ``{"id": <IMG_ID>, "image": <JPEG bytes>}``, 4096 per shard. Key: the id normalised
  as the CSV's (``slash_key``). The index keeps each record's byte range (``Unpacker.tell()``
  before and after it); a read unpacks that one record and takes its image bytes.

An archive that cannot be opened (a truncated zip, a tar whose header is broken) is logged with its
path, and its members are absent from the index: their rows become ``missing_image``. Members of a
tar or shard before the point where it breaks are kept, since their bytes are whole. A member that
fails when read (archive gone since, CRC error, short read) raises ``ImageSkipped`` with
``missing_image`` naming archive and member. Archives are looked for inside ``--images`` only, and
an archive whose real path (symlinks resolved) lies outside it is not read.
"""

from __future__ import annotations

import array
import bisect
import collections
import dataclasses
import io
import itertools
import logging
import os
import re
import tarfile
import zipfile
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from data_pipelines import errors

if TYPE_CHECKING:  # the readers import this module (their formats name its index builders)
    from data_pipelines.readers import common

log = logging.getLogger("data_pipelines.archives")

ZIP, TAR, MSGPACK = "zip", "tar", "msgpack"
# A zip member that says it unpacks to more than this is not read (a zip bomb would fill memory);
# photos of the collections read here are well under 1 MiB.
MAX_MEMBER_BYTES = 256 << 20
MSGPACK_EXTRA = 'pip install -e ".[formats]"'
# Open archives each ingestion worker keeps (file descriptors): all of OSV-5M's 103 zips, since
# reopening a zip re-reads its central directory.
OPEN_ARCHIVES = 128


@dataclasses.dataclass(frozen=True)
class Archive:
    """One archive: ``kind`` ("zip", "tar" or "msgpack") and its files, resolved absolute paths
    inside --images; a tar split into parts is their concatenation in name order."""

    kind: str
    parts: tuple[str, ...]

    def shown(self) -> str:
        """The archive's name in messages: its file, or its first part and how many follow."""
        return self.parts[0] if len(self.parts) == 1 else f"{self.parts[0]} (+{len(self.parts) - 1} parts)"


@dataclasses.dataclass
class ArchiveIndex:
    """Every member of ``archives``: columns key (str), container (int32, position in
    ``archives``), offset and size (int64 byte range of the member's bytes; -1 for zips)."""

    archives: list[Archive]
    members: pd.DataFrame

    def locate(self, table: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """The rows of ``table`` whose ``image_path`` is a member key, with that member's container,
        offset and size (the first archive wins for a key found twice), and the boolean mask of
        those rows in ``table``. Ingestion's plan and ``geoloc evaluate`` both locate photos so."""
        members = self.members.drop_duplicates("key", keep="first")
        where = table[["image_path"]].merge(
            members.rename(columns={"key": "image_path"}), on="image_path", how="left"
        )
        found = where["container"].notna().to_numpy()
        located = table.loc[found].reset_index(drop=True)
        for column, dtype in (("container", np.int32), ("offset", np.int64), ("size", np.int64)):
            located[column] = where.loc[found, column].to_numpy().astype(dtype)
        return located, found


class _MemberTable:
    """Members of the archives being indexed, as growing columns."""

    def __init__(self):
        self.key: list[str] = []
        self.container = array.array("i")  # machine integers: 4.7 M members are 16 bytes each
        self.offset = array.array("q")
        self.size = array.array("q")

    def add(self, key: str, container: int, offset: int, size: int) -> None:
        self.key.append(key)
        self.container.append(container)
        self.offset.append(offset)
        self.size.append(size)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "key": pd.Series(self.key, dtype=object),
                "container": np.frombuffer(self.container, dtype=np.int32).copy(),
                "offset": np.frombuffer(self.offset, dtype=np.int64).copy(),
                "size": np.frombuffer(self.size, dtype=np.int64).copy(),
            }
        )


#: MP16-Pro's tar members of this many bytes or fewer are Flickr's "photo unavailable"
#: placeholders, not photos: G3's released code (Jia et al., NeurIPS 2024, arXiv:2405.14702), whose
#: authors published MP16-Pro, keeps only the members with ``member.name.endswith('.jpg') and
#: member.size > 5120`` when it indexes the tar (``MP16Dataset`` in its ``utils/utils.py``). Same
#: threshold, same side: a member of exactly 5,120 bytes is a placeholder.
PLACEHOLDER_MAX_BYTES = 5120


def placeholder_members(sizes: np.ndarray) -> np.ndarray:
    """The boolean mask of the members of byte ``sizes`` (an ``ArchiveIndex`` column; -1 where the
    archive records none, as zips) that are placeholders, not photos (``PLACEHOLDER_MAX_BYTES``)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    return (sizes >= 0) & (sizes <= PLACEHOLDER_MAX_BYTES)


def split_placeholders(located: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of an ``ArchiveIndex.locate`` table split into the photos (index reset) and the
    placeholders (``placeholder_members`` of their ``size``): what ingestion and ``geoloc evaluate``
    both leave out of an MP16-Pro set, each counting or naming the placeholders in its own words."""
    placeholder = placeholder_members(located["size"].to_numpy())
    return located.loc[~placeholder].reset_index(drop=True), located.loc[placeholder]


def slash_key(photo_id: str) -> str:
    """The archive key of an MP-16 photo id: "/" replaced by "_" (``e5/2d/1.jpg`` ->
    ``e5_2d_1.jpg``), as MP16-Pro's tar names its members; GeoEstimation's shard ids likewise."""
    return photo_id.strip().replace("/", "_")


def _files_inside(images_root: str, accept: Callable[[str], bool]) -> list[str]:
    """Resolved paths of the regular files under ``images_root`` whose name ``accept`` takes, in
    path order; a file whose real path leaves ``images_root`` (a symlink) is logged and passed over."""
    root = os.path.realpath(images_root)
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if not accept(name):
                continue
            path = os.path.join(folder, name)
            resolved = os.path.realpath(path)
            if os.path.commonpath([root, resolved]) != root:
                log.warning("%s: archive lies outside the images folder %s; not read", path, root)
            elif os.path.isfile(resolved):
                found.append(resolved)
    return found


# --- zip ---------------------------------------------------------------------------------------


def zip_key(member_name: str) -> str:
    """A zip member's key: its file name without folder or extension (``test/123.jpg`` -> ``123``)."""
    return os.path.splitext(os.path.basename(member_name))[0]


def _zip_files(zf: zipfile.ZipFile) -> Iterator[zipfile.ZipInfo]:
    return (info for info in zf.infolist() if not info.is_dir())


def index_zips(images_root: str, skips: common.SkipLog | None = None) -> ArchiveIndex:
    """Every ``*.zip`` under ``images_root`` and its members, from the zips' central directories."""
    archives: list[Archive] = []
    table = _MemberTable()
    for path in _files_inside(images_root, lambda name: name.lower().endswith(".zip")):
        try:
            with zipfile.ZipFile(path) as zf:
                names = [info.filename for info in _zip_files(zf)]
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            log.warning("%s: cannot read the zip's directory (%s); its photos count as missing", path, e)
            continue
        container = len(archives)
        archives.append(Archive(ZIP, (path,)))
        for name in names:
            table.add(zip_key(name), container, -1, -1)
    return ArchiveIndex(archives, table.frame())


# --- tar split into parts ----------------------------------------------------------------------

# The part suffix of a split tar: ``split``'s ``.aa``/``.ab`` or numbered ``.000``/``.001`` after
# ``.tar``, or MP16-Pro's ``mp-16-images00`` (digits straight after the name, no extension).
_TAR_PART = re.compile(r"^(?P<stem>.+\.tar)\.(?:[a-z]{2,3}|\d{1,4})$|^(?P<bare>mp-16-images)\d{1,4}$")


def _tar_group(name: str) -> str | None:
    """The archive a file belongs to (its name without part suffix), or None if it is no tar."""
    match = _TAR_PART.match(name)
    if match:
        return match.group("stem") or match.group("bare")
    return name if name.lower().endswith(".tar") else None


class PartsFile(io.RawIOBase):
    """The concatenation of ``parts`` as one read-only, seekable file (opened lazily)."""

    def __init__(self, parts: Sequence[str]):
        super().__init__()
        self.parts = list(parts)
        self.sizes = [os.path.getsize(p) for p in self.parts]
        self.starts = [0, *itertools.accumulate(self.sizes)]
        self.total = self.starts[-1]
        self.handles: dict[int, io.BufferedReader] = {}
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.total}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self.position < self.total:
            part = bisect.bisect_right(self.starts, self.position) - 1
            handle = self.handles.get(part)
            if handle is None:
                handle = self.handles[part] = open(self.parts[part], "rb")
            inside = self.position - self.starts[part]
            want = min(len(view) - done, self.sizes[part] - inside)
            handle.seek(inside)
            got = handle.readinto(view[done : done + want])
            if not got:  # the part shrank since it was measured
                break
            done += got
            self.position += got
        return done

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()
        super().close()


_BLOCK = tarfile.BLOCKSIZE
#: A pax header or GNU long name is read into memory: real ones are a few hundred bytes.
MAX_EXTENDED_HEADER_BYTES = 1 << 20


def _pax_fields(data: bytes) -> dict[bytes, bytes]:
    """The records of a pax extended header (``<length> <key>=<value>\\n`` each)."""
    fields, at = {}, 0
    while at < len(data):
        space = data.find(b" ", at)
        if space < 0 or not data[at:space].isdigit():
            break
        length = int(data[at:space])
        if length <= 0:
            break
        key, _, value = data[space + 1 : at + length - 1].partition(b"=")
        fields[key] = value
        at += length
    return fields


def tar_members(raw: PartsFile) -> Iterator[tuple[str, int, int]]:
    """(file name, data offset, size) of each regular file of the tar ``raw``, from its headers
    alone (``tarfile.TarInfo.frombuf`` on each 512-byte header; GNU long names and pax ``path`` /
    ``size`` records applied to the member they precede). ``tarfile.TarFile`` would keep a
    TarInfo per member, some 460 bytes each: 2 GB for MP16-Pro's 4.7 M photos. Raises
    ``tarfile.HeaderError`` at a broken header; stops at the end-of-archive block or the end of
    the data, where a member whose data is cut is not given."""
    offset, name, size = 0, None, None
    while offset + _BLOCK <= raw.total:
        raw.seek(offset)
        block = raw.read(_BLOCK)
        if block.count(0) == _BLOCK:
            return
        info = tarfile.TarInfo.frombuf(block, "utf-8", "replace")
        data_at = offset + _BLOCK
        offset = data_at + -(-info.size // _BLOCK) * _BLOCK
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE):
            if info.size > MAX_EXTENDED_HEADER_BYTES:  # read whole below: never gigabytes of it
                raise tarfile.HeaderError(
                    f"extended header of {info.size} bytes at byte {data_at - _BLOCK}; expected at most "
                    f"{MAX_EXTENDED_HEADER_BYTES}"
                )
            data = raw.read(info.size)
            if info.type == tarfile.GNUTYPE_LONGNAME:
                name = data.split(b"\0", 1)[0].decode("utf-8", "replace")
            else:
                fields = _pax_fields(data)
                name = fields[b"path"].decode("utf-8", "replace") if b"path" in fields else name
                size = int(fields[b"size"]) if fields.get(b"size", b"").isdigit() else size
            continue
        if info.type in (tarfile.XGLTYPE, tarfile.GNUTYPE_LONGLINK):
            continue
        length = info.size if size is None else size
        if info.isfile() and data_at + length <= raw.total:
            yield os.path.basename(name or info.name), data_at, length
        if size is not None:
            offset = data_at + -(-size // _BLOCK) * _BLOCK
        name, size = None, None


def index_tar_parts(images_root: str, skips: common.SkipLog | None = None) -> ArchiveIndex:
    """Every tar under ``images_root`` (whole, or split into parts joined in name order) and its
    regular-file members, from the tar headers; members are keyed by file name."""
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for path in _files_inside(images_root, lambda name: _tar_group(name) is not None):
        groups[os.path.join(os.path.dirname(path), _tar_group(os.path.basename(path)) or "")].append(path)
    archives: list[Archive] = []
    table = _MemberTable()
    for group in sorted(groups):
        archive = Archive(TAR, tuple(sorted(groups[group])))
        container, before = len(archives), len(table.key)
        try:
            with PartsFile(archive.parts) as raw:
                for key, offset, size in tar_members(raw):
                    table.add(key, container, offset, size)
        except (tarfile.TarError, OSError, ValueError) as e:
            log.warning(
                "%s: tar unreadable after %d member(s) (%s); the photos after that count as missing",
                archive.shown(),
                len(table.key) - before,
                e,
            )
        if len(table.key) > before:
            archives.append(archive)
    return ArchiveIndex(archives, table.frame())


# --- GeoEstimation msgpack shards --------------------------------------------------------------

_SHARD = re.compile(r"^shard_(\d+)\.msg$")


def require_msgpack():
    """The msgpack module; without it, one line naming the extra that installs it."""
    try:
        import msgpack
    except ImportError:
        raise errors.ConfigError(
            f"--format=msgpack reads GeoEstimation shards with the msgpack package, which is not "
            f"installed; expected it from the 'formats' extra: {MSGPACK_EXTRA}"
        ) from None
    return msgpack


def _record_image(record) -> tuple[str, bytes] | None:
    """(id, JPEG bytes) of one shard record (a map with ``id`` and ``image``), or None."""
    if not isinstance(record, dict):
        return None
    photo_id, image = record.get(b"id", record.get("id")), record.get(b"image", record.get("image"))
    if isinstance(photo_id, bytes):
        try:
            photo_id = photo_id.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(photo_id, str) or not isinstance(image, bytes) or "\x00" in photo_id:
        return None
    return photo_id, image


def index_msgpack_shards(images_root: str, skips: common.SkipLog | None = None) -> ArchiveIndex:
    """Every ``shard_<n>.msg`` under ``images_root`` (by folder, then shard number) and the byte
    range of each of its records, keyed by ``slash_key`` of the record's id."""
    msgpack = require_msgpack()
    paths = _files_inside(images_root, lambda name: _SHARD.match(name) is not None)
    paths.sort(key=lambda p: (os.path.dirname(p), int(os.path.basename(p)[len("shard_") : -len(".msg")])))
    archives: list[Archive] = []
    table = _MemberTable()
    for path in paths:
        members, unusable = [], 0
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                unpacker = msgpack.Unpacker(f, raw=True, max_buffer_size=MAX_MEMBER_BYTES)
                start = 0
                for record in unpacker:
                    end = unpacker.tell()
                    found = _record_image(record)
                    if found is None:
                        unusable += 1
                    else:
                        members.append((slash_key(found[0]), start, end - start))
                    start = end
                if start != size:
                    log.warning(
                        "%s: shard ends inside a record at byte %d of %d (truncated); the photos after "
                        "that count as missing",
                        path,
                        start,
                        size,
                    )
        except (ValueError, msgpack.UnpackException, OSError) as e:
            log.warning(
                "%s: shard unreadable after %d record(s) (%s); the photos after that count as missing",
                path,
                len(members),
                e,
            )
        if unusable:
            log.warning("%s: %d record(s) without an id and image bytes; not indexed", path, unusable)
        if not members:
            continue
        container = len(archives)
        archives.append(Archive(MSGPACK, (path,)))
        for key, offset, length in members:
            table.add(key, container, offset, length)
    return ArchiveIndex(archives, table.frame())


# --- reading members ---------------------------------------------------------------------------


def _missing(detail: str) -> Exception:
    """ImageSkipped(missing_image, detail). Imported here, not at the top: the readers and the
    ingestion import this module, and importing it first must not import them half-way."""
    from data_pipelines.ingest.image_files import ImageSkipped
    from data_pipelines.readers import common

    return ImageSkipped(common.MISSING_IMAGE, detail)


class ArchiveReader:
    """Reads members of ``archives`` (one reader per ingestion worker); keeps up to
    ``OPEN_ARCHIVES`` of them open, the least recently used closed first."""

    def __init__(self, archives: Sequence[Archive]):
        self.archives = list(archives)
        self.opened: collections.OrderedDict[int, Any] = collections.OrderedDict()
        self.zip_members: dict[int, dict[str, zipfile.ZipInfo]] = {}

    def _open(self, container: int):
        handle = self.opened.get(container)
        if handle is not None:
            self.opened.move_to_end(container)
            return handle
        archive = self.archives[container]
        if archive.kind == ZIP:
            handle = zipfile.ZipFile(archive.parts[0])
            members: dict[str, zipfile.ZipInfo] = {}
            for info in _zip_files(handle):
                members.setdefault(zip_key(info.filename), info)  # the first of a key, as the index
            self.zip_members[container] = members
        elif archive.kind == TAR:
            handle = PartsFile(archive.parts)
        else:
            handle = open(archive.parts[0], "rb")
        self.opened[container] = handle
        if len(self.opened) > OPEN_ARCHIVES:
            self._close_one(next(iter(self.opened)))
        return handle

    def _close_one(self, container: int) -> None:
        self.opened.pop(container).close()
        self.zip_members.pop(container, None)

    def read(self, container: int, member: str, offset: int, size: int) -> bytes:
        """The bytes of ``member`` (its key) in archive ``container``; ``offset``/``size`` as the
        index gave them. Raises ImageSkipped(missing_image) when they cannot be read whole."""
        if not 0 <= container < len(self.archives):
            raise _missing(f"member {member}: archive {container} is not among the {len(self.archives)}")
        archive = self.archives[container]
        where = f"{archive.shown()}: member {member}"
        try:
            handle = self._open(container)
            if archive.kind == ZIP:
                info = self.zip_members[container].get(member)
                if info is None:
                    raise _missing(f"{where}: not in the zip")
                if info.file_size > MAX_MEMBER_BYTES:
                    raise _missing(
                        f"{where}: unpacks to {info.file_size} bytes; expected at most {MAX_MEMBER_BYTES}",
                    )
                return handle.read(info)
            if size > MAX_MEMBER_BYTES:  # a tar header or a shard record may claim any size
                raise _missing(f"{where}: {size} bytes; expected at most {MAX_MEMBER_BYTES}")
            handle.seek(offset)
            data = handle.read(size)
            if len(data) != size:
                raise _missing(f"{where}: {len(data)} of {size} bytes (archive truncated)")
            if archive.kind == TAR:
                return data
            return self._shard_image(data, where)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as e:
            raise _missing(f"{where}: {e}") from None

    @staticmethod
    def _shard_image(data: bytes, where: str) -> bytes:
        msgpack = require_msgpack()
        try:
            found = _record_image(msgpack.unpackb(data, raw=True))
        except (ValueError, msgpack.UnpackException) as e:
            raise _missing(f"{where}: record unreadable ({e})") from None
        if found is None:
            raise _missing(f"{where}: record has no id and image bytes")
        return found[1]

    def close(self) -> None:
        while self.opened:
            self._close_one(next(iter(self.opened)))

    def __enter__(self) -> "ArchiveReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
