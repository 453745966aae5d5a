"""Reading the photo a metadata line names: only regular files inside the images folder.

Metadata comes from strangers, and its image paths are followed by the ingestion workers. Two rules
keep a path from reaching anything else on the machine:

- **Inside the images folder** (``outside_images``): the path is joined to ``--images`` and
  resolved (``os.path.realpath``: ``..``, symlinks, an absolute path replacing the folder); it is
  read only if the result lies inside the resolved images folder. What counts is where the path
  leads, decided once, here: an absolute path into the images folder is read, ``../x.jpg`` or a
  symlink to ``/etc`` is not. Without this, metadata could pack any file the process can read into
  a data set that is then shared.
- **Regular files only** (``not_a_file``): a FIFO would block the worker until someone writes to
  it, a device such as ``/dev/zero`` would be read forever, a folder or socket cannot be read. The
  file is checked with ``stat`` before it is opened, then opened with ``O_NONBLOCK`` (a FIFO swapped
  in meanwhile opens at once instead of waiting for a writer) and ``O_NOFOLLOW`` (a symlink swapped
  in as the last component is refused), and checked again with ``fstat`` on what was opened.

The checks cost a few system calls per photo, against 10-30 ms of re-encoding.
"""

from __future__ import annotations

import os
import stat

from data_pipelines import values
from data_pipelines.readers import common

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)


class ImageSkipped(Exception):
    """The image of a metadata line is not read; ``reason`` is its skip reason (summary.json)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def resolve_inside(images_root: str, name: str) -> str | None:
    """The resolved path of ``name`` (relative to ``images_root``, or absolute) if it lies inside
    ``images_root`` (itself already resolved with ``os.path.realpath``), else None."""
    resolved = os.path.realpath(os.path.join(images_root, name))
    return resolved if os.path.commonpath([images_root, resolved]) == images_root else None


def read_regular_file(resolved: str, shown: str) -> bytes:
    """The bytes of the regular file at ``resolved`` (a path already resolved with
    ``os.path.realpath``), named ``shown`` in messages; raises ImageSkipped with ``not_a_file`` or
    ``missing_image``. Also `geoloc predict`'s and `geoloc search`'s way to read a photo file."""
    try:
        if not stat.S_ISREG(mode := os.stat(resolved).st_mode):
            raise ImageSkipped(common.NOT_A_FILE, f"{shown} is {_kind(mode)}; expected a regular file")
        fd = os.open(resolved, _OPEN_FLAGS)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(mode := os.fstat(f.fileno()).st_mode):
                raise ImageSkipped(common.NOT_A_FILE, f"{shown} is {_kind(mode)}; expected a regular file")
            return f.read()
    except OSError as e:
        raise ImageSkipped(common.MISSING_IMAGE, f"{shown}: {e.strerror}") from None


def read_image_file(images_root: str, name: str) -> bytes:
    """The bytes of the image ``name`` under ``images_root`` (resolved with ``os.path.realpath``);
    raises ImageSkipped with ``outside_images``, ``not_a_file`` or ``missing_image``."""
    resolved = resolve_inside(images_root, name)
    if resolved is None:
        raise ImageSkipped(
            common.OUTSIDE_IMAGES,
            f"{values.show(name, 160)} resolves outside the images folder {images_root}",
        )
    return read_regular_file(resolved, os.path.join(images_root, name))
