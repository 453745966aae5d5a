"""Exceptions of the experiment runner.

A GeolocUserError is a mistake the user can fix (a flag value, a missing file, a run directory made
with other settings): the runner prints its one-line message and exits with code 2, no traceback.
Anything else is a bug and keeps its traceback.
"""


class GeolocUserError(Exception):
    """A problem with what the user asked for; its message says what, where and what was expected."""


class ConfigError(GeolocUserError):
    """A flag, flagfile or config.json problem."""


class StageError(GeolocUserError):
    """A stage cannot run: missing upstream outputs, or outputs made with other settings."""


class BenchmarkError(GeolocUserError):
    """The performance page cannot be written: an unknown benchmark name, or BUILD.md's markers."""
