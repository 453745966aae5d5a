"""``geoloc ingest``: its options are the settings of ``IngestConfig``, by their own names.

Each setting declared on ``IngestConfig`` (and its nested ``SplitConfig``) is an option
``--<name>``, the runner's ``--data_<name>`` without the section prefix, with the declaration's
default, help and allowed values; only ``--out`` (the output folder) is the tool's own.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from typing import Any, Callable, Sequence

from data_pipelines import errors
from data_pipelines.config import IngestConfig
from data_pipelines.ingest.run import run_ingestion
from mesh.settings import SettingError, field_kind, flat_settings, from_flat, value_problem

PROG = "geoloc ingest"


def _converter(kind: type, is_tuple: bool, field: dataclasses.Field) -> Callable[[str], Any]:
    """argparse's `type`: one command-line string to the setting's value, checked against its
    declaration (a tuple is comma-separated)."""

    def convert(text: str) -> Any:
        try:
            value = tuple(kind(v) for v in text.split(",") if v) if is_tuple else kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        problem = value_problem(field, value)
        if problem:
            raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
        return value

    return convert


def _default_text(value: Any) -> str:
    if value in (None, ()):
        return ""
    shown = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return f" Default: {shown}."


def _metavar(kind: type, is_tuple: bool, field: dataclasses.Field) -> str:
    choices = field.metadata.get("choices")
    one = "|".join(map(str, choices)) if choices else kind.__name__.upper()
    return f"{one}[,{one}...]" if is_tuple else one


class _OneLineParser(argparse.ArgumentParser):
    """Reports a bad option in one line (no usage block), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\n")


def parser() -> argparse.ArgumentParser:
    """The options: --out, then one per setting of IngestConfig."""
    p = _OneLineParser(
        prog=PROG,
        description="Ingest a geotagged photo collection (YFCC100M, Multimedia Commons or CSV), "
        "or the demo collection, into sharded TFRecords + tables (resumable: rerun the same "
        "command).",
    )
    p.add_argument("--out", required=True, help="Output folder of the data set.")
    for path, field, owner in flat_settings(IngestConfig):
        kind, is_tuple = field_kind(owner, field)
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        help_text = (field.metadata["help"] + _default_text(default)).replace("%", "%%")
        if kind is bool and not is_tuple:
            p.add_argument(f"--{path[-1]}", action=argparse.BooleanOptionalAction, default=default,
                           help=help_text)
        else:
            p.add_argument(f"--{path[-1]}", type=_converter(kind, is_tuple, field),
                           default=default, metavar=_metavar(kind, is_tuple, field), help=help_text)
    return p


def config_from_args(args: argparse.Namespace) -> IngestConfig:
    """The IngestConfig of parsed options; raises SettingError naming the settings at fault."""
    values = {path[-1]: getattr(args, path[-1]) for path, _, _ in flat_settings(IngestConfig)}
    return from_flat(IngestConfig, values)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 2 bad input) without a traceback."""
    args = parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        summary = run_ingestion(config_from_args(args), args.out)
    except SettingError as e:
        print(f"error: {e.render(lambda field: '--' + field)}", file=sys.stderr)
        return 2
    except errors.DataPipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    keys = (
        ("lines_read", "examples_written", "skipped", "splits")
        if summary["finished"]
        else ("task_index", "num_tasks", "shards_written", "examples_written")
    )
    print(json.dumps({k: summary[k] for k in keys}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
