"""The `geoloc` console script dispatches to each tool."""

import subprocess
import sys

from experiments import cli


def test_unknown_subcommand_is_an_error(capsys):
    assert cli.main(["teleport"]) == 2
    assert "unknown subcommand 'teleport'" in capsys.readouterr().err


def test_every_subcommand_answers_help_with_its_options(capsys):
    for name in cli.SUBCOMMANDS:
        assert cli.main([name, "--help"]) == 0, name
        out = capsys.readouterr().out
        assert out.strip() and "--" in out, name


def test_run_subcommand_passes_arguments_through():
    result = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", "--flagfile=nope.cfg"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "flagfile 'nope.cfg' not found" in result.stderr


def test_runner_on_another_keras_backend_stops_before_writing(tmp_path):
    """The stages need the TensorFlow backend: on JAX the runner says so in one line, exit 2,
    before the run folder exists (the backend is read without importing Keras)."""
    import os

    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "experiments.run", "--flagfile=demo.cfg", f"--run_dir={run_dir}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "TensorFlow backend" in last and "Traceback" not in result.stderr
    assert not run_dir.exists()
