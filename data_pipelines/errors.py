"""The one exceptions module of ``data_pipelines``.

Every message says what went wrong, where (file:line or field) and what was expected, so a
CLI can print ``str(error)`` as its single error line.
"""

from __future__ import annotations


class DataPipelineError(Exception):
    """Base class of every error raised on purpose by ``data_pipelines``."""


class ConfigError(DataPipelineError, ValueError):
    """A config value or command-line argument is invalid."""


class LayoutError(DataPipelineError):
    """A metadata file matches none of the known layouts (YFCC 23, Multimedia Commons 25, CSV)."""


class DatasetError(DataPipelineError):
    """A written data set is missing, incomplete or inconsistent (manifest, shards, tables)."""


def where(path: str, line: int | None = None) -> str:
    """Formats a location the way every message in this package does: ``file:line``."""
    return f"{path}:{line}" if line is not None else str(path)
