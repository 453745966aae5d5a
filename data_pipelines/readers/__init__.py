"""Streaming metadata readers, one per collection format (``formats``).

``read_metadata_file`` is the one entry point: it reads a file in the given format (or the one
``formats.detect`` finds) and streams it in chunks; ``detect_layout`` names the finer layout of a
YFCC100M or CSV file (YFCC100M 23-field, Multimedia Commons 25-field, or CSV with a header).
"""

from __future__ import annotations

import os

from data_pipelines.readers import common, formats, yfcc
from data_pipelines.readers.common import COLUMNS, COORD_SCALE, SKIP_REASONS, PathTemplate, SkipLog

__all__ = [
    "COLUMNS",
    "COORD_SCALE",
    "SKIP_REASONS",
    "PathTemplate",
    "SkipLog",
    "detect_layout",
    "read_metadata_file",
]


def detect_layout(path: str, max_line_bytes: int = common.MAX_LINE_BYTES) -> str:
    """The finer layout of a file ``formats.detect`` finds: ``"yfcc23"`` or ``"mmc25"`` for
    YFCC100M files (from the field count of the first non-empty line), else the format's name
    (``"csv"``, ``"osv5m"``...)."""
    fmt = formats.detect(path, max_line_bytes)
    if fmt is not formats.YFCC100M:
        return fmt.name
    return yfcc.LAYOUTS[formats.first_line(path, max_line_bytes)[1].count(b"\t") + 1].name


def read_metadata_file(
    path: str,
    *,
    template: str | None,
    user_hasher,
    skips: SkipLog,
    fmt: str = "auto",
    options: formats.ReadOptions | None = None,
    chunk_lines: int = 1 << 18,
    on_progress=None,
):
    """Yields (records read so far, columns) chunks of kept photos of one metadata file.

    ``fmt`` is a format name (``formats.FORMAT_NAMES``; ``auto``: detected from the file).
    ``template`` is the image path template (``None``: CSV path column, else ``{id}.jpg``, or
    the id itself when it already names an image file: ``common.default_image_path``).
    Every record is kept or counted in ``skips``; the last yielded count is the file's lines_read
    (data records: a CSV header is not counted).
    """
    options = options or formats.ReadOptions(images_root=os.path.realpath(os.path.dirname(path) or "."))
    reader = formats.resolve(fmt, (path,), options.limits.max_line_bytes)[0]
    yield from reader.read(
        path,
        template=template,
        user_hasher=user_hasher,
        skips=skips,
        options=options,
        chunk_lines=chunk_lines,
        on_progress=on_progress,
    )
