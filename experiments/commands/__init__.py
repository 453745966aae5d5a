"""The `geoloc` subcommands: one flag system, derived from the same declarations as the runner's.

A subcommand is a `Command`: the config classes whose settings it takes (`sections`, keyed by flag
prefix; a tool with one section uses the prefix "" and so takes `--refinement_limit` where the runner
takes `--mesh_refinement_limit`), the tool's own inputs and outputs (paths, output format: defined
on the command's own absl FlagValues by `define_inputs`), and `run`. `run_command` parses argv
(flagfiles included), builds the configs (every rule is checked there), runs the tool, and reports
any user error of any package as one `error: ...` line with exit status 2 (Ctrl-C: 130), as the
runner does.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

from absl import flags

from experiments import settings_flags
from experiments.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, ConfigError, one_line, user_errors

HELP_FLAGS = ("--help", "-help", "--helpshort", "-helpshort", "--helpfull", "-helpfull", "-h", "-?")


@dataclass(frozen=True)
class Command:
    """One `geoloc` subcommand.

    `run(configs, inputs, positional)` gets the built configs by prefix, the parsed FlagValues (for
    the tool's own inputs) and the positional arguments; it returns the exit status.
    `positional`: how the usage line names positional arguments ("" allows none).
    `only`: for a section (by prefix), the settings the tool takes; the others keep their defaults.
    """

    name: str
    summary: str
    run: Callable[[dict[str, Any], flags.FlagValues, list[str]], int]
    sections: Mapping[str, type] = field(default_factory=dict)
    define_inputs: Callable[[flags.FlagValues], None] = lambda flag_values: None
    positional: str = ""
    description: str = ""
    only: Mapping[str, Sequence[str]] = field(default_factory=dict)


def command_flags(command: Command) -> flags.FlagValues:
    """A fresh FlagValues holding the command's settings and inputs."""
    flag_values = flags.FlagValues()
    for prefix, cls in command.sections.items():
        settings_flags.define_setting_flags(
            flag_values,
            {prefix: cls},
            module_name=f"geoloc {command.name}: settings",
            only=command.only.get(prefix),
        )
    command.define_inputs(flag_values)
    return flag_values


def usage(command: Command, flag_values: flags.FlagValues) -> str:
    head = f"usage: geoloc {command.name} [--flag=value ...]" + (
        f" {command.positional}" if command.positional else ""
    )
    text = [head, "", command.summary]
    if command.description:
        text += ["", command.description]
    text += ["", flag_values.get_help(include_special_flags=False)]
    return "\n".join(text)


def run_command(command: Command, argv: Sequence[str]) -> int:
    """Parses argv (without the program name), runs the command, returns the exit status."""
    flag_values = command_flags(command)
    if any(arg in HELP_FLAGS for arg in argv):
        print(usage(command, flag_values))
        return 0
    try:
        rest = settings_flags.parse(flag_values, [f"geoloc {command.name}", *argv])[1:]
        if rest and not command.positional:
            raise ConfigError(
                f"geoloc {command.name}: unexpected argument(s) {' '.join(rest)}; every setting is a --flag"
            )
        if command.positional and not rest:
            raise ConfigError(f"geoloc {command.name}: expected {command.positional}")
        configs = settings_flags.configs_from_flags(flag_values, command.sections, command.only)
        return command.run(configs, flag_values, list(rest))
    except user_errors() as error:
        print(one_line(error), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"\ngeoloc {command.name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def require(flag_values: flags.FlagValues, *names: str) -> None:
    """Marks the tool's inputs that must be given (absl reports a missing one as one line)."""
    for name in names:
        flags.mark_flag_as_required(name, flag_values=flag_values)


@contextlib.contextmanager
def missing_files_are_user_errors() -> Iterator[None]:
    """A path the user gave that is not there (a FileNotFoundError from deep inside a library) is
    reported as one `error:` line naming it, like every other user error."""
    try:
        yield
    except FileNotFoundError as error:
        raise ConfigError(f"{error.filename or error}: no such file or directory") from None
