"""M1's resume checkpoints damaged after they were written: one error line naming the file and what
to delete, never a traceback or a silent restart; a run without checkpoints starts as ever.

The checkpoints are written by ``TrainingCheckpoints.save`` (what ``train_m1`` calls) on a one-layer
model, two of them (steps 2 and 4) with different values, and read back the way a resumed run reads
them (``begin_phase`` / ``restore_finished``); the last test resumes ``train_m1`` itself.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from experiments.errors import EXIT_USER_ERROR, one_line, user_errors
from geoloc_tf.m1.checkpoints import MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, Position, TrainingCheckpoints
from mesh.integrity import WrittenFileError, file_entry


def tiny_model() -> tuple[keras.Model, keras.optimizers.Optimizer]:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adagrad(0.1)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def write_two(directory: Path) -> tuple[keras.Model, keras.optimizers.Optimizer]:
    """ckpt-2 (every value v) and ckpt-4 (every value v + 1), through the trainer's own saver."""
    model, optimizer = tiny_model()
    checkpoints = TrainingCheckpoints(directory, model)
    assert checkpoints.begin_phase(0, optimizer) is None  # nothing to resume: a fresh start
    checkpoints.save(Position(epoch=0, step_in_epoch=2, global_step=2))
    for variable in [*model.variables, *optimizer.variables]:
        variable.assign(variable + 1)
    checkpoints.save(Position(epoch=1, step_in_epoch=1, global_step=4))
    return model, optimizer


def resume(directory: Path) -> tuple[Position | None, keras.Model]:
    model, optimizer = tiny_model()
    return TrainingCheckpoints(directory, model).begin_phase(0, optimizer), model


def one_error_line(error: BaseException, path: Path) -> str:
    """What `geoloc run` prints for it (it catches ``user_errors()`` and exits 2): one line."""
    assert isinstance(error, user_errors()) and EXIT_USER_ERROR == 2
    line = one_line(error)
    assert "\n" not in str(error) and line.startswith(f"error: {path}: "), line
    return line


def test_state_records_each_file_and_an_undamaged_checkpoint_resumes(tmp_path):
    directory = tmp_path / "checkpoints"
    model, _ = write_two(directory)
    latest = directory / "ckpt-4"
    state = json.loads((latest / STATE_FILE).read_text())
    assert state["files"] == {name: file_entry(latest / name) for name in (MODEL_FILE, OPTIMIZER_FILE)}
    position, resumed = resume(directory)
    assert position == Position(epoch=1, step_in_epoch=1, global_step=4)
    for got, want in zip(resumed.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_a_truncated_model_file_is_one_line_naming_it_and_the_checkpoint_to_delete(tmp_path):
    directory = tmp_path / "checkpoints"
    write_two(directory)
    damaged = directory / "ckpt-4" / MODEL_FILE
    size = damaged.stat().st_size
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(WrittenFileError) as raised:
        resume(directory)
    line = one_error_line(raised.value, damaged)
    assert f"100 bytes, the manifest says {size} (truncated since it was written)" in line
    assert f"delete the folder {directory / 'ckpt-4'} to resume from ckpt-2" in line
    assert f"or the folder {directory} to train M1 from the start" in line
    # The remedy works: without the damaged checkpoint the run resumes from the one before it.
    shutil.rmtree(directory / "ckpt-4")
    assert resume(directory)[0] == Position(epoch=0, step_in_epoch=2, global_step=2)


def test_an_optimizer_file_swapped_for_another_checkpoints_is_refused_not_restored(tmp_path):
    directory = tmp_path / "checkpoints"
    write_two(directory)
    swapped = directory / "ckpt-4" / OPTIMIZER_FILE
    shutil.copy(directory / "ckpt-2" / OPTIMIZER_FILE, swapped)  # same size, other values
    with pytest.raises(WrittenFileError) as raised:
        resume(directory)
    assert "sha256" in one_error_line(raised.value, swapped)
    # A finished run's restore (model only) checks it too: damage is never left for later.
    model, _ = tiny_model()
    with pytest.raises(WrittenFileError, match="sha256"):
        TrainingCheckpoints(directory, model).restore_finished()


@pytest.mark.parametrize("damage", ["cut", "removed"])
def test_a_damaged_or_missing_state_file_is_one_line(tmp_path, damage):
    directory = tmp_path / "checkpoints"
    write_two(directory)
    state = directory / "ckpt-4" / STATE_FILE
    if damage == "cut":
        state.write_text(state.read_text()[:20])
    else:
        state.unlink()  # not a fresh start, nor a silent fall-back to ckpt-2
    with pytest.raises(WrittenFileError) as raised:
        resume(directory)
    assert "not a checkpoint state" in one_error_line(raised.value, state)


def test_the_only_checkpoint_damaged_says_to_train_from_the_start(tmp_path):
    directory = tmp_path / "checkpoints"
    write_two(directory)
    shutil.rmtree(directory / "ckpt-2")
    (directory / "ckpt-4" / MODEL_FILE).write_bytes(b"PK")
    with pytest.raises(WrittenFileError, match=f"delete the folder {directory} to train M1 from the start$"):
        resume(directory)


def test_a_checkpoint_written_before_the_sizes_were_recorded_resumes_with_one_warning(tmp_path, caplog):
    directory = tmp_path / "checkpoints"
    model, _ = write_two(directory)
    state_path = directory / "ckpt-4" / STATE_FILE
    state = json.loads(state_path.read_text())
    del state["files"]
    state_path.write_text(json.dumps(state))
    with caplog.at_level(logging.WARNING, logger="mesh.integrity"):
        position, resumed = resume(directory)
    assert position is not None and position.global_step == 4
    np.testing.assert_array_equal(resumed.get_weights()[0], model.get_weights()[0])
    warned = [r.getMessage() for r in caplog.records if "written without a checksum" in r.getMessage()]
    assert len(warned) == 2 and str(directory / "ckpt-4" / MODEL_FILE) in warned[0]


def test_train_m1_resuming_from_a_truncated_checkpoint_stops_with_the_error(tiny_world, tmp_path):
    """The trainer's own resume: the check runs before any value is assigned, so a checkpoint of
    the tiny model above stands for M1's."""
    import mesh
    from data_pipelines.dataset import load
    from geoloc_tf.m1.training import train_m1
    from tests.geoloc_tf.test_m1_trainer import configs

    out = tmp_path / "m1"
    write_two(out / "checkpoints")
    damaged = out / "checkpoints" / "ckpt-4" / MODEL_FILE
    damaged.write_bytes(damaged.read_bytes()[:-1])
    with pytest.raises(WrittenFileError) as raised:
        train_m1(
            load(tiny_world.data_root),
            mesh.Mesh.load(tiny_world.mesh_path),
            out,
            out / "tb",
            configs(),
            seed=0,
        )
    one_error_line(raised.value, damaged)
    assert not (out / "m1.keras").exists()
