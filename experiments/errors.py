"""Exceptions of the experiment runner, and the one list of errors a user can cause.

A GeolocUserError is a mistake the user can fix (a flag value, a missing file, a run directory made
with other settings). `USER_ERRORS` adds every package's own error base classes (mesh, data_pipelines,
geoloc_tf) and `mesh.settings.SettingError`: the runner and every `geoloc` subcommand print such an
error as one line, `error: ...`, and exit with `EXIT_USER_ERROR`, no traceback. Anything else is a
bug and keeps its traceback.

Exit codes (README): 0 done; 2 a user error (bad flag or combination, unusable path or input);
130 interrupted (Ctrl-C), resumable by rerunning the same command.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class GeolocUserError(Exception):
    """A problem with what the user asked for; its message says what, where and what was expected."""


class ConfigError(GeolocUserError):
    """A flag, flagfile, run directory or config.json problem."""


class StageError(GeolocUserError):
    """A stage cannot run: missing upstream outputs, or outputs made with other settings."""


class BenchmarkError(GeolocUserError):
    """The performance page cannot be written: an unknown benchmark name, or BUILD.md's markers."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Every exception class that reports a user's mistake, across the packages.

    Imported when called: the packages' error modules import neither TensorFlow nor each other.
    """
    from data_pipelines.errors import DataPipelineError
    from geoloc_tf.errors import GeolocTfError
    from mesh.errors import MeshError
    from mesh.settings import SettingError

    return (GeolocUserError, MeshError, DataPipelineError, GeolocTfError, SettingError)


def one_line(error: BaseException) -> str:
    """`error: <message>` on one line (a message's own newlines are folded)."""
    text = " ".join(str(error).split("\n")).strip() or type(error).__name__
    return f"error: {text}"
