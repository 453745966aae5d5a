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


def test_runner_on_an_unsupported_keras_backend_stops_before_writing(tmp_path):
    """The stages run on TensorFlow and JAX: on PyTorch the runner says so in one line, exit 2,
    before the run folder exists (the backend is read without importing Keras)."""
    import os

    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "experiments.run", "--flagfile=demo.cfg", f"--run_dir={run_dir}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KERAS_BACKEND": "torch"},
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "'torch'" in last and "Traceback" not in result.stderr
    assert "run on tensorflow and jax" in last
    assert not run_dir.exists()


def test_the_backend_check_accepts_tensorflow_and_jax_and_passes_keras_free_stages(monkeypatch):
    import importlib.util

    import pytest

    from experiments import run
    from experiments.errors import ConfigError

    monkeypatch.setitem(sys.modules, "keras", None)  # read from the environment, as before import
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    run.check_backend(["mesh", "m1"])
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    if importlib.util.find_spec("jax") is None:
        with pytest.raises(ConfigError, match="jax is not installed"):
            run.check_backend(["m1"])
    else:
        run.check_backend(["mesh", "m1"])
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    run.check_backend(["mesh"])  # numpy alone
    with pytest.raises(ConfigError, match="run on tensorflow and jax"):
        run.check_backend(["mesh", "predict"])
