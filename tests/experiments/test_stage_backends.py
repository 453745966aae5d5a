"""The Keras backend of a run: accepted by the runner, recorded (config.json, each stage's record),
never a setting that makes a finished stage stale; a stage that needs another backend runs in a child
process, whose failure is one line."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import pytest


def test_a_finished_stage_is_current_on_the_other_backend(tmp_path, run_config, monkeypatch):
    from experiments.stages import Stage, run_stages, runner

    calls = []

    def write(config, run_dir: Path) -> dict[str, str]:
        calls.append(runner.keras_backend())
        (run_dir / "out.txt").write_text("done")
        return {"out": "out.txt"}

    registry = (Stage("a", reads=("m2",), needs=(), run=write),)
    config = run_config()
    monkeypatch.setattr(runner, "keras_backend", lambda: "tensorflow")
    run_stages(config, tmp_path, ["a"], registry=registry)
    monkeypatch.setattr(runner, "keras_backend", lambda: "jax")
    outcomes = run_stages(config, tmp_path, ["a"], registry=registry)
    assert calls == ["tensorflow"] and outcomes[0].action == "skipped"
    assert runner.read_record(tmp_path, "a")["keras_backend"] == "tensorflow"  # who made it


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_config_json_records_the_backend_its_version_and_devices(tmp_path, run_config, monkeypatch):
    import jax

    from experiments import run
    from geoloc_tf.runtime_config import RuntimeConfig

    monkeypatch.setitem(sys.modules, "keras", None)  # as before Keras is imported: the environment
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    found = run.environment(run_config())
    assert found["keras_backend"] == "jax" and found["jax_version"] == importlib.metadata.version("jax")
    assert found["devices"] == [str(device) for device in jax.devices()]
    # multi_worker: JAX's distributed runtime starts in the stage, before anything lists devices
    assert "devices" not in run.environment(run_config(runtime=RuntimeConfig(strategy="multi_worker")))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    found = run.environment(run_config())
    assert found["keras_backend"] == "tensorflow" and "devices" not in found
    import tensorflow as tf

    assert found["tensorflow_version"] == tf.__version__


def test_a_failing_child_is_the_stages_failure_in_one_line(tmp_path, run_config):
    from experiments.errors import StageError
    from experiments.stages import STAGE_BY_NAME
    from experiments.stages.child import run_in_child

    # an empty run directory: the export stage finds no mesh
    with pytest.raises(StageError) as raised:
        run_in_child(STAGE_BY_NAME["export"], run_config(), tmp_path)
    message = str(raised.value)
    assert message.startswith("stage export (child process on the Keras tensorflow backend) failed: ")
    assert "mesh.npz: no such mesh file" in message and "\n" not in message and "Traceback" not in message


def test_the_backend_a_stage_needs_must_be_installed(tmp_path, run_config, monkeypatch):
    from experiments.errors import StageError
    from experiments.stages import STAGE_BY_NAME, child

    monkeypatch.setattr(child.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(StageError, match="tensorflow is not installed"):
        child.run_in_child(STAGE_BY_NAME["export"], run_config(), tmp_path)
