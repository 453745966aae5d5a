"""The one exceptions module of geoloc_tf.

Every message says what went wrong, where (file, variable, layer or field) and what was expected, so
a command can print `str(error)` as its single error line.
"""


def first_line(error: BaseException, limit: int = 160) -> str:
    """A one-line reason of an exception for a message: the first line of its text (TensorFlow's
    ``message``, without the graph trace that follows), else its type's name."""
    lines = str(getattr(error, "message", "") or error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:limit]


class GeolocTfError(Exception):
    """Base class of every error raised on purpose by geoloc_tf."""


class CheckpointError(GeolocTfError):
    """A checkpoint or weights file cannot be loaded into a model (missing file, shape mismatch)."""


class ModelConfigError(GeolocTfError, ValueError):
    """A model or training setting is invalid."""


class ExportError(GeolocTfError):
    """A model cannot be exported or an exported model cannot be loaded."""


class EvaluationError(GeolocTfError, ValueError):
    """Stored predictions, a mesh or an evaluation input cannot be evaluated (wrong columns, cell ids
    outside the mesh, a malformed indoor/outdoor label file)."""


class RetrievalError(GeolocTfError, ValueError):
    """A feature index cannot be built, opened or searched (missing or mismatched files, queries of
    the wrong width, an unknown photo)."""


class InferenceError(GeolocTfError, ValueError):
    """An input of `geoloc predict` / `geoloc serve` cannot be used (a file that is not an image, a
    malformed posting time) or a loaded model cannot answer what is asked of it."""


class ImageError(InferenceError):
    """A photo refused by the image decoder (``data_pipelines.images``); ``reason`` is its
    ``BadImage.reason`` (unreadable, unsupported, too_large, animated)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason
