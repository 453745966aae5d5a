"""Files geoloc wrote and reads back: a size and SHA-256 recorded when written, checked on open.

A file geoloc reads that it also wrote (a feature index's arrays, a stage's tables) can be damaged
after it was written: a disk that filled up while it was copied, a truncated download, a file
replaced by hand with another run's. Read as it is, it gives a traceback from deep inside numpy or
Arrow, or worse, answers that are silently wrong. So the writer records ``file_entry`` of each file
in the manifest it writes beside it (``{"bytes": ..., "sha256": ...}``), and every reader calls the
one check, ``check_written``, before it opens the file: a mismatch is one line naming the file, what
is wrong and what to do (``WrittenFileError``, a ``MeshError``: `geoloc` prints it as one ``error:``
line and exits 2).

Cost: SHA-256 reads the whole file, about 1 s per GB on one core (hashlib releases the GIL). For a
feature index of 1 M photos (5.7 GiB) that is a few seconds once at `geoloc search` / `serve`
startup, next to the minutes of loading the model and paging in the features; the size is checked
first, so a truncated file is refused without reading it.

Files written before checksums were recorded have no entry. They are accepted with one warning in
the log (``check_written(..., entry=None)``), not refused: the reader's own checks of shape, dtype
and counts still run, and refusing would force rebuilding every existing index or run (hours of
GPU) for damage that was never shown; the warning says how to get a checked file (rebuild it).

Single-file formats that carry their own checksums need no manifest: a mesh file (``.npz``) and a
Keras model (``.keras``) are zip archives whose members each hold a CRC-32 that ``zipfile`` checks
while reading; their loaders turn a damaged archive into one error line.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any

from mesh.errors import MeshError

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 22
_warned: set[str] = set()


class WrittenFileError(MeshError):
    """A file geoloc wrote is missing, damaged or not the one its manifest describes."""


def sha256_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file, read in chunks of ``CHUNK_BYTES`` (never whole in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest entry of a file just written: its size in bytes and SHA-256."""
    return {"bytes": os.path.getsize(path), "sha256": sha256_file(path)}


def check_written(
    path: str | os.PathLike, entry: dict[str, Any] | None, remedy: str, *, size_only: bool = False
) -> None:
    """Checks the file at ``path`` against its manifest ``entry`` (``file_entry`` when it was
    written): present, a regular file, of the recorded size, of the recorded SHA-256. Raises
    ``WrittenFileError`` ``"<path>: <what is wrong>; <remedy>"``.

    ``size_only``: the size, not the SHA-256, for files too large to hash on every open that
    carry their own checksums, read as they are read (a TFRecord shard: a CRC-32C per record).
    ``entry`` None (written before checksums were recorded): the file is accepted with one log
    warning per file and process, see the module docstring for why."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise WrittenFileError(f"{name}: missing; {remedy}")
    if not os.path.isfile(name):
        raise WrittenFileError(f"{name}: not a regular file; {remedy}")
    if entry is None:
        if name not in _warned:
            _warned.add(name)
            log.warning("%s: written without a checksum (by an older geoloc), not verified; %s", name, remedy)
        return
    if not isinstance(entry, dict) or not (size_only or isinstance(entry.get("sha256"), str)):
        raise WrittenFileError(f"{name}: its manifest entry {entry!r} is not a size and sha256; {remedy}")
    size = os.path.getsize(name)
    if size != entry.get("bytes"):
        raise WrittenFileError(
            f"{name}: {size} bytes, the manifest says {entry.get('bytes')} "
            f"({'truncated' if isinstance(entry.get('bytes'), int) and size < entry['bytes'] else 'changed'}"
            f" since it was written); {remedy}"
        )
    if size_only:
        return
    try:
        digest = sha256_file(name)
    except OSError as error:
        raise WrittenFileError(f"{name}: cannot be read ({error.strerror or error}); {remedy}") from None
    if digest != entry["sha256"]:
        raise WrittenFileError(
            f"{name}: sha256 {digest[:12]}..., the manifest says {entry['sha256'][:12]}... "
            f"(changed since it was written); {remedy}"
        )
