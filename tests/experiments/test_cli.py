"""The `geoloc` console script dispatches to each tool's main(argv)."""

import subprocess
import sys

from experiments import cli


def test_unknown_subcommand_is_an_error(capsys):
    assert cli.main(["teleport"]) == 2
    assert "unknown subcommand 'teleport'" in capsys.readouterr().err


def test_every_subcommand_module_has_main():
    import importlib
    for name, (module, _) in cli.SUBCOMMANDS.items():
        assert callable(getattr(importlib.import_module(module), "main")), name


def test_run_subcommand_passes_arguments_through():
    result = subprocess.run([sys.executable, "-m", "experiments.cli", "run", "--flagfile=nope.cfg"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "flagfile 'nope.cfg' not found" in result.stderr
