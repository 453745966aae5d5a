"""Atomic file writes: write to a temporary name in the same directory, then ``os.replace``.

A reader never sees half a file (STYLE.md).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from typing import IO, Any


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(f)`` on a temporary binary file next to ``path`` and rename it into place.

    The parent folder is created when missing."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
