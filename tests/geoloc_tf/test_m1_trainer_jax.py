"""M1's A.1 training on the JAX backend: the step count of the TensorFlow loop, m1.keras loading on
TensorFlow, kill -9 and resume to the same weights, data parallel over two devices, and the one-line
refusal of a run directory checkpointed in the earlier tf.train format.

The JAX runs are fresh interpreters (``backend_runs.start_on_backend``); this process is on
TensorFlow. The network is a tiny Inception-v4 trained one Adagrad epoch and one SGD epoch.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from tests.geoloc_tf import backend_runs
from tests.geoloc_tf import test_m1_trainer as trainer

#: test_m1_trainer's tiny run with one Inception-A block (on JAX every distinct weight shape
#: compiles its own initializer), one Adagrad epoch, the loss logged every step, host augmentation.
MODEL = dict(trainer.MODEL, blocks=(1, 0, 0), log_every_steps=1, augment_on="host")
SAMPLER = dict(trainer.SAMPLER, cycle_epochs=1)
#: Two forced host devices for ``strategy="mirrored"``.
TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def train(world: str, out: str, strategy: str) -> dict:
    """What a JAX run does: seeds Keras (as the runner does before each stage), trains M1 on the
    tiny world, saves its predictions of fixed images beside m1.keras; answers the history."""
    import keras

    import mesh
    from data_pipelines.config import SamplerConfig
    from data_pipelines.dataset import load
    from geoloc_tf.m1.config import M1Config
    from geoloc_tf.m1.training import train_m1
    from geoloc_tf.runtime_config import RuntimeConfig

    keras.utils.set_random_seed(0)
    config = M1Config(**MODEL, sampler=SamplerConfig(**SAMPLER))
    result = train_m1(
        load(world + "/data"),
        mesh.Mesh.load(world + "/mesh.npz"),
        Path(out),
        Path(out) / "tb",
        config,
        RuntimeConfig(strategy=strategy),
        seed=0,
    )
    model = keras.saving.load_model(result.model_path)
    np.save(Path(out) / "predictions.npy", model.predict(fixed_images(), verbose=0))
    return {
        "backend": keras.backend.backend(),
        "devices": len(keras.distribution.list_devices()),
        "steps": result.global_steps,
        "history": result.history,
    }


def fixed_images() -> np.ndarray:
    return np.random.default_rng(3).uniform(-1, 1, (4, 75, 75, 3)).astype(np.float32)


def code(world: str, out: Path, strategy: str) -> str:
    return (
        "from tests.geoloc_tf.test_m1_trainer_jax import train\n"
        f"answer(train({world!r}, {str(out)!r}, {strategy!r}))"
    )


@pytest.fixture(scope="module")
def world(tiny_world) -> str:
    backend_runs.require_jax()
    return str(Path(tiny_world.data_root).parent)


@pytest.fixture(scope="module")
def one_device(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("m1_jax") / "run"
    return out, backend_runs.run_on_backend("jax", code(world, out, "auto"))


def test_trains_on_jax_with_the_step_count_of_the_tensorflow_loop(one_device, tiny_world):
    import keras

    import mesh
    from data_pipelines import labels
    from data_pipelines.config import SamplerConfig
    from data_pipelines.dataset import load
    from data_pipelines.sampler import CurriculumSampler

    out, run = one_device
    history = run["history"]
    assert run["backend"] == "jax"
    assert [h["phase"] for h in history] == ["adagrad_cycle_0", "sgd"]
    # The sampler's epochs, in full global batches of 8: the TensorFlow loop's steps.
    train_labels = labels.shard_labels(
        load(tiny_world.data_root), "m1_train", mesh.Mesh.load(tiny_world.mesh_path)
    )
    sampler = CurriculumSampler(
        labels.class_counts(np.concatenate(train_labels), mesh.Mesh.load(tiny_world.mesh_path).num_cells),
        SamplerConfig(**SAMPLER),
        seed=0,
    )
    examples = [int(sum(c.sum() for c in sampler.copies(train_labels, epoch))) for epoch in (0, 1)]
    assert [h["examples"] for h in history] == examples
    assert [h["steps"] for h in history] == [n // 8 for n in examples]
    assert run["steps"] == sum(n // 8 for n in examples)
    for h in history:  # 7-ish cells: a loss near log(cells), an accuracy in [0, 1]
        assert np.isfinite(h["loss"]) and 0 < h["loss"] < 10 and 0 <= h["accuracy"] <= 1
        assert h["val_photos"] == 16
    # m1.keras, written on JAX, loads on TensorFlow (this process) and predicts the same.
    model = keras.saving.load_model(out / "m1.keras")
    np.testing.assert_allclose(
        model.predict(fixed_images(), verbose=0), np.load(out / "predictions.npy"), atol=1e-5
    )
    kept = sorted(int(path.name.split("-")[1]) for path in (out / "checkpoints").iterdir())
    assert len(kept) == 2 and kept[-1] == run["steps"]  # the latest two, the last at the end


def test_kill_minus_9_and_resume_on_jax_ends_with_the_same_weights(one_device, world, tmp_path):
    import keras

    from geoloc_tf.m1.checkpoints import latest_checkpoint

    reference, expected = one_device
    out = tmp_path / "run"
    process = backend_runs.start_on_backend("jax", code(world, out, "auto"))
    deadline = time.monotonic() + 240
    while (
        latest_checkpoint(out / "checkpoints") is None
        and process.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert latest_checkpoint(out / "checkpoints") is not None and not (out / "m1.keras").exists()
    resumed = backend_runs.run_on_backend("jax", code(world, out, "auto"))
    assert resumed["steps"] == expected["steps"]
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1]
    assert history[0]["resumed_at_step"] > 0  # the interrupted epoch went on mid-way
    weights = keras.saving.load_model(out / "m1.keras").get_weights()
    for got, want in zip(weights, keras.saving.load_model(reference / "m1.keras").get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def step_losses(run: Path) -> list[float]:
    """The training loss TensorBoard holds per step (``log_every_steps=1``): the epoch's running
    mean, so the first is step 1's loss."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"), size_guidance={"tensors": 0}).Reload()
    return [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("train/loss_step")]


@pytest.mark.slow  # 50 s; CI covers two JAX devices in prediction and device augmentation
def test_data_parallel_over_two_devices_trains_as_one_device(one_device, world, tmp_path):
    single_out, single = one_device
    out = tmp_path / "mirrored"
    run = backend_runs.run_on_backend("jax", code(world, out, "mirrored"), env=TWO_DEVICES)
    assert run["devices"] == 2
    assert run["steps"] == single["steps"]
    # The same first batch, weights and dropout masks, the mean over the global batch: step 1's
    # loss agrees to float rounding. Adagrad's first steps move every weight by about the rate
    # whatever its gradient's size, so rounding grows over the run: the epochs agree loosely.
    two, one = step_losses(out), step_losses(single_out)
    assert len(two) == len(one) == run["steps"]
    np.testing.assert_allclose(two[0], one[0], rtol=1e-5)
    np.testing.assert_allclose(
        [h["loss"] for h in run["history"]], [h["loss"] for h in single["history"]], rtol=0.1
    )


def test_a_run_checkpointed_in_the_tf_train_format_fails_in_one_line(tmp_path):
    from geoloc_tf import errors
    from geoloc_tf.m1.checkpoints import TrainingCheckpoints

    old = tmp_path / "checkpoints"
    old.mkdir()
    (old / "checkpoint").write_text('model_checkpoint_path: "ckpt-12"\n')
    (old / "ckpt-12.index").write_bytes(b"")
    with pytest.raises(errors.ModelConfigError) as error:
        TrainingCheckpoints(old, model=None)
    message = str(error.value)
    assert str(old) in message and "remove" in message and "earlier version" in message
    assert "\n" not in message
