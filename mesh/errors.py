"""Exception types of the ``mesh`` package (one exceptions module per package).

Every message says what went wrong, where (file:line or field) and what was expected.
"""

from __future__ import annotations


class MeshError(Exception):
    """Base class of every error raised on purpose by ``mesh``."""


class InvalidCoordinatesError(MeshError, ValueError):
    """Latitude/longitude arrays that are not finite, out of range, or of mismatched shape."""


class MeshFormatError(MeshError):
    """A mesh file that cannot be read: missing, corrupt, or written by a newer format version."""


class CoordsFileError(MeshError):
    """A coordinates CSV that cannot be used: missing file, no latitude/longitude columns, no valid row."""


class RefinementError(MeshError):
    """Refinement could not finish (e.g. the iteration cap was reached)."""
