"""Atomic writes: write under a temporary name in the same directory, then ``os.replace``.

A reader never sees half a file or half a folder. The one home of that logic in geoloc:
``atomic_path`` for a file written by a tool that wants a path (Keras' ``model.save``),
``write_atomic`` for a file written through a file object, ``atomic_dir`` for a folder (a SavedModel,
a feature index).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary file name beside ``path`` (same suffix, for tools that check it); when the
    block ends normally the file is renamed to ``path``, otherwise removed. The parent folder is
    created when missing."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    name = os.path.basename(path)
    stem, suffix = os.path.splitext(name)
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{suffix}", dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(f)`` on a temporary binary file next to ``path`` and rename it into place.

    The parent folder is created when missing; what ``write`` returns is ignored."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) atomically."""
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` atomically."""
    write_atomic(path, lambda f: f.write(data))


def write_json_atomic(path: str | os.PathLike, value: Any) -> None:
    """Write ``value`` as indented JSON with sorted keys and a final newline, atomically."""
    write_text_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def write_parquet_atomic(path: str | os.PathLike, frame: Any) -> None:
    """Write a pandas DataFrame as Parquet (without its index), atomically.

    ``frame`` is used through its own ``to_parquet``: mesh never imports pandas."""
    write_atomic(path, lambda f: frame.to_parquet(f, index=False))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[str]:
    """Yields an empty temporary folder beside ``path``; when the block ends normally it replaces
    ``path`` (an existing folder is moved aside only once the new one is whole, then deleted),
    otherwise it is removed."""
    final = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.partial-", dir=parent)
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual permissions
    try:
        yield tmp
        old = None
        if os.path.exists(final):
            old = f"{final}.old-{os.getpid()}"
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
