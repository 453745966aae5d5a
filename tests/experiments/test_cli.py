"""The `geoloc` console script dispatches to each tool's Command (the runner: its main(argv))."""

import subprocess
import sys

from experiments import cli


def test_help_lists_the_subcommands(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.SUBCOMMANDS:
        assert name in out


def test_unknown_subcommand_is_an_error(capsys):
    assert cli.main(["teleport"]) == 2
    assert "unknown subcommand 'teleport'" in capsys.readouterr().err


def test_every_subcommand_names_a_command_or_a_main():
    import importlib

    from experiments.commands import Command

    for name, (target, _) in cli.SUBCOMMANDS.items():
        module_name, _, attribute = target.partition(":")
        module = importlib.import_module(module_name)
        command = getattr(module, attribute or "COMMAND", None)
        assert (command.name == name if isinstance(command, Command)
                else callable(module.main)), name


def test_run_subcommand_passes_arguments_through():
    result = subprocess.run([sys.executable, "-m", "experiments.cli", "run", "--flagfile=nope.cfg"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "flagfile 'nope.cfg' not found" in result.stderr
