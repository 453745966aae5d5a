"""Streaming metadata readers; the layout is detected per file.

``read_metadata_file`` is the one entry point: it detects the layout of a file (YFCC100M 23-field,
Multimedia Commons 25-field, or CSV with a header) from its first line and streams it in chunks.
"""

from __future__ import annotations

from data_pipelines import errors
from data_pipelines.readers import common, csv_layout, yfcc
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


def detect_layout(path: str) -> str:
    """Returns ``"yfcc23"``, ``"mmc25"`` or ``"csv"`` from the first non-empty line of ``path``."""
    try:
        opened = common.open_binary(path)
    except OSError as e:
        raise errors.LayoutError(
            f"{path}: cannot open metadata file ({e.strerror}); expected a readable file (.bz2/.gz allowed)"
        ) from None
    try:
        for number, line in common.iter_lines(opened):
            if not line.strip():
                continue
            fields = line.count(b"\t") + 1
            if fields in yfcc.LAYOUTS:
                return yfcc.LAYOUTS[fields].name
            text = line.decode("utf-8", "replace")
            if csv_layout.looks_like_csv_header(text):
                return "csv"
            raise errors.LayoutError(
                f"{errors.where(path, number)}: cannot detect the layout: {fields} tab-separated "
                "field(s) and no CSV header; expected 23 fields (YFCC100M yfcc100m_dataset), 25 fields "
                "(Multimedia Commons) or a CSV header naming photo id, user, lat and lon columns"
            )
        raise errors.LayoutError(f"{path}: the file is empty; expected metadata lines")
    except (OSError, EOFError) as e:
        raise errors.LayoutError(
            f"{path}: cannot read ({e}); expected an intact plain, .bz2 or .gz file"
        ) from None
    finally:
        opened.close()


def read_metadata_file(
    path: str,
    *,
    template: str | None,
    user_hasher,
    skips: SkipLog,
    chunk_lines: int = 1 << 18,
    on_progress=None,
):
    """Yields (lines read so far, columns) chunks of kept photos of one metadata file.

    ``template`` is the image path template (``None``: CSV path column, else ``{id}.jpg``).
    Every line is kept or counted in ``skips``; the last yielded count is the file's lines_read
    (data lines: a CSV header is not counted).
    """
    layout = detect_layout(path)
    if layout == "csv":
        parsed = PathTemplate(template) if template else None
        yield from csv_layout.read_csv(
            path,
            template=parsed,
            user_hasher=user_hasher,
            skips=skips,
            chunk_lines=chunk_lines,
            on_progress=on_progress,
        )
    else:
        parsed = PathTemplate(template or "{id}.jpg")
        layout_obj = yfcc.YFCC23 if layout == "yfcc23" else yfcc.MMC25
        yield from yfcc.read_yfcc(
            path,
            layout_obj,
            template=parsed,
            user_hasher=user_hasher,
            skips=skips,
            chunk_lines=chunk_lines,
            on_progress=on_progress,
        )
