"""The runner's stages after M1's training on the Keras JAX backend: predict, M2, M3, evaluate and
export run on a tiny run directory made here on TensorFlow (tiny data, its mesh, a tiny untrained
M1); the export stage, whose formats are TensorFlow's, runs in a child process on TensorFlow and
writes the SavedModels that the same stage writes on TensorFlow; the stage records and the report
say which backend did what.

The JAX side runs in a fresh interpreter (``backend_runs.run_on_backend``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.geoloc_tf import backend_runs
from tests.geoloc_tf.conftest import build_tiny_world, jpeg, save_tiny_m1

#: The stages the JAX run runs; mesh, data and m1 are made on TensorFlow beforehand.
JAX_STAGES = ("predict", "m2", "m3", "evaluate", "export")
#: The same SavedModel (made by TensorFlow from the same .keras files) in two run directories.
SAME = 1e-6

JAX_SCRIPT = """
import logging, sys
from pathlib import Path
from experiments.config import RunConfig
from experiments.stages import run_stages
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
config = RunConfig.from_json(Path(RUN, "config.json").read_text())
outcomes = run_stages(config, Path(RUN), STAGES)
answer({outcome.name: round(outcome.seconds, 1) for outcome in outcomes})
"""


def tiny_config():
    from experiments.config import SECTIONS, RunConfig

    return RunConfig(
        data=SECTIONS["data"](source="demo"),
        m1=SECTIONS["m1"](image_size=75),
        predict=SECTIONS["predict"](top_k=3),
        m2=SECTIONS["m2"](top_k=3, hidden_units=8, boosting_rounds=0, learning_rates=(0.01,), max_epochs=1),
        m3=SECTIONS["m3"](album_size=4, lstm_units=4, max_epochs=1, batch_size=8),
        export=SECTIONS["export"](top_k=3),
    )


def made_upstream(run_dir: Path, config) -> None:
    """Records of the mesh, data and m1 stages for the files put in place by hand, as the runner
    writes them (so the real stages downstream accept them)."""
    from experiments.stages import STAGE_BY_NAME, Stage, run_stages

    artifacts = {"mesh": {"mesh": "mesh/mesh.npz"}, "data": {"data": "data"}, "m1": {"model": "m1/m1.keras"}}
    registry = [
        Stage(name, STAGE_BY_NAME[name].reads, STAGE_BY_NAME[name].needs, lambda c, r, a=files: a)
        for name, files in artifacts.items()
    ]
    run_stages(config, run_dir, list(artifacts), registry=registry)


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory):
    from geoloc_tf.run_layout import RunLayout
    from mesh import Mesh

    backend_runs.require_jax()
    world = build_tiny_world(tmp_path_factory.mktemp("world"))
    run_dir = tmp_path_factory.mktemp("run")
    layout = RunLayout(run_dir)
    (run_dir / "data").symlink_to(world.data_root)
    layout.mesh.parent.mkdir(parents=True)
    shutil.copy(world.mesh_path, layout.mesh)
    save_tiny_m1(run_dir, Mesh.load(layout.mesh).num_cells)
    config = tiny_config()
    layout.config.write_text(config.to_json())
    made_upstream(run_dir, config)
    seconds = backend_runs.run_on_backend(
        "jax", f"RUN, STAGES = {str(run_dir)!r}, {list(JAX_STAGES)!r}\n" + JAX_SCRIPT, timeout_s=600
    )
    print("stage seconds on JAX:", seconds)  # shown with pytest -s
    return run_dir, config, seconds


def test_every_stage_after_m1_runs_on_jax(jax_run):
    from experiments.stages.runner import read_record
    from geoloc_tf.prediction_tables import read_frame
    from geoloc_tf.run_layout import RunLayout

    run_dir, _, seconds = jax_run
    assert list(seconds) == list(JAX_STAGES)
    backends = {name: read_record(run_dir, name)["keras_backend"] for name in JAX_STAGES}
    assert backends == {"predict": "jax", "m2": "jax", "m3": "jax", "evaluate": "jax", "export": "tensorflow"}
    layout = RunLayout(run_dir)
    for model in ("m1", "m2", "m3"):
        table = read_frame(layout.prediction_table(model, "m23_val"))
        assert len(table) and len(table["top_ids"].iloc[0]) == 3
    # the child wrote M1 for the other runtimes installed too, checked against its SavedModel
    from geoloc_tf.m1 import portable

    runtimes = {f"m1_{name}" for name in portable.FORMATS if not portable.missing(name)}
    expected = runtimes | {"m1_check"} if runtimes else set()
    assert expected <= set(read_record(run_dir, "export")["artifacts"])


def test_the_report_says_which_backend_trained_and_predicted(jax_run):
    from geoloc_tf.run_layout import RunLayout

    layout = RunLayout(jax_run[0])
    report = layout.eval_report.read_text()
    # m1 was made on TensorFlow here (by hand, before the JAX run); predict, m2, m3 on JAX
    assert "Keras backend: tensorflow (m1); jax (predict, m2, m3)" in report
    results = json.loads((layout.eval_dir / "results.json").read_text())
    assert results["environment"]["stages"] == {
        "m1": "tensorflow",
        "predict": "jax",
        "m2": "jax",
        "m3": "jax",
    }
    assert "environment" not in json.loads((layout.eval_dir / "tables.json").read_text())


def serve(path: Path, inputs: dict) -> dict[str, np.ndarray]:
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return {name: value.numpy() for name, value in signature(**inputs).items()}


def metadata_inputs(path: Path, num_cells: int) -> dict:
    """Inputs for every argument of a SavedModel's signature: cell ids below ``num_cells``, the
    rest small fixed numbers."""
    import tensorflow as tf

    specs = tf.saved_model.load(str(path)).signatures["serving_default"].structured_input_signature[1]
    rng = np.random.default_rng(0)
    inputs = {}
    for name, spec in specs.items():
        shape = [2 if size is None else size for size in spec.shape]
        values = rng.integers(0, num_cells, shape) if spec.dtype.is_integer else rng.uniform(0, 1, shape)
        inputs[name] = tf.constant(values, dtype=spec.dtype)
    return inputs


def test_the_export_stage_on_jax_writes_the_savedmodels_tensorflow_writes(jax_run, tmp_path, monkeypatch):
    import tensorflow as tf

    from experiments.stages import export_stage
    from geoloc_tf.m1 import portable
    from geoloc_tf.run_layout import RunLayout
    from mesh import Mesh

    run_dir, config, _ = jax_run
    on_tf = tmp_path / "run"
    shutil.copytree(run_dir, on_tf, symlinks=True, ignore=shutil.ignore_patterns("export"))
    monkeypatch.setattr(portable, "missing", lambda name, modules="write": ["(left out here)"])
    export_stage.run(config, on_tf)  # this process: the TensorFlow backend; SavedModels only
    jax_layout, tf_layout = RunLayout(run_dir), RunLayout(on_tf)
    images = {"image_bytes": tf.constant([jpeg(40, 60, seed) for seed in range(3)])}
    cells = Mesh.load(jax_layout.mesh).num_cells
    for name in ("m1", "m2", "m3"):
        inputs = images if name == "m1" else metadata_inputs(tf_layout.export(name), cells)
        got, expected = serve(jax_layout.export(name), inputs), serve(tf_layout.export(name), inputs)
        assert set(got) == set(expected)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], atol=SAME, err_msg=f"{name} {key}")
