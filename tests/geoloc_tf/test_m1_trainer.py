"""M1's A.1 training on a tiny real world: phases, epoch sizes, TensorBoard scalars, kill -9 and
resume to the same step count, MirroredStrategy over 2 logical CPUs, single-worker multi-worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

TRAIN_SCRIPT = """
import json, sys, logging
logging.basicConfig(level=logging.WARNING)
strategy = sys.argv[3]
if strategy == "mirrored":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from pathlib import Path
import mesh
from data_pipelines.config import SamplerConfig
from data_pipelines.dataset import load
from geoloc_tf.m1.config import M1Config
from geoloc_tf.m1.training import train_m1
from geoloc_tf.runtime_config import RuntimeConfig
config = M1Config(**json.loads(sys.argv[4]), sampler=SamplerConfig(**json.loads(sys.argv[5])))
out = Path(sys.argv[2])
result = train_m1(load(sys.argv[1] + "/data"), mesh.Mesh.load(sys.argv[1] + "/mesh.npz"), out,
                  out / "tb", config, RuntimeConfig(strategy=strategy), seed=0)
import tensorflow as tf
print("RESULT", json.dumps({"steps": result.global_steps, "replicas":
      __import__("geoloc_tf.distribute", fromlist=["x"]).make_strategy(strategy).num_replicas_in_sync}))
"""

MODEL = dict(
    image_size=75,
    width_multiplier=0.05,
    blocks=(1, 1, 1),
    global_batch_size=8,
    sgd_epochs=1,
    checkpoint_every_steps=3,
    log_every_steps=2,
    validation_photos=16,
    precise_bn_photos=16,
    shuffle_buffer=64,
)
SAMPLER = dict(examples_per_cell=3, alpha_schedule=(0.0,), cycle_epochs=2)


def configs(**changes):
    from data_pipelines.config import SamplerConfig
    from geoloc_tf.m1.config import M1Config

    sampler = SamplerConfig(**{**SAMPLER, **changes.pop("sampler", {})})
    return M1Config(**{**MODEL, **changes}, sampler=sampler)


def run_script(tiny_world, out: Path, strategy: str, model=MODEL, sampler=SAMPLER, kill_when=None):
    world = str(Path(tiny_world.data_root).parent)
    script = out.parent / "train_script.py"
    script.write_text(TRAIN_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    command = [sys.executable, str(script), world, str(out), strategy, json.dumps(model), json.dumps(sampler)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_when is not None:
        deadline = time.monotonic() + 240
        while not kill_when() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        return None
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    line = next(l for l in stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.fixture(scope="module")
def uninterrupted(tiny_world, tmp_path_factory):
    import mesh
    from data_pipelines.dataset import load
    from geoloc_tf.m1.training import train_m1

    out = tmp_path_factory.mktemp("m1_uninterrupted")
    result = train_m1(
        load(tiny_world.data_root), mesh.Mesh.load(tiny_world.mesh_path), out, out / "tb", configs(), seed=0
    )
    return out, result


def test_phases_epoch_sizes_and_learning_rates(uninterrupted, tiny_world):
    import mesh

    _, result = uninterrupted
    history = result.history
    cells = mesh.Mesh.load(tiny_world.mesh_path).num_cells
    assert [h["phase"] for h in history] == ["adagrad_cycle_0", "adagrad_cycle_0", "sgd"]
    # A.1: epoch size = cells x examples_per_cell, growing 6 % per epoch; the SGD epoch is the
    # whole training split, every photo once.
    assert history[0]["epoch_size"] == cells * 3
    assert history[1]["epoch_size"] == round(cells * 3 * 1.06)
    from data_pipelines import labels
    from data_pipelines.dataset import load

    train_labels = np.concatenate(
        labels.shard_labels(load(tiny_world.data_root), "m1_train", mesh.Mesh.load(tiny_world.mesh_path))
    )
    assert history[2]["examples"] == int((train_labels >= 0).sum())
    assert [h["learning_rate"] for h in history] == [0.01, 0.01, 0.01]  # SGD epoch 0: 100 %
    assert result.global_steps == sum(h["steps"] for h in history)
    for h in history:
        assert h["steps"] == h["examples"] // 8  # full global batches only
        assert h["precise_bn_photos"] == 16  # batch-norm statistics recomputed before validation


def test_the_saved_model_holds_the_recomputed_batch_norm_statistics(uninterrupted, tiny_world):
    """m1.keras's moving statistics are those of its final weights on the calibration photos:
    recomputing them again on the same photos changes nothing (moving averages would change)."""
    import keras

    import mesh
    from data_pipelines.dataset import load
    from geoloc_tf.m1 import batch_norm
    from geoloc_tf.m1.training import TRAIN_SPLIT
    from geoloc_tf.m1.validation import photo_subset

    out, result = uninterrupted
    model = keras.saving.load_model(result.model_path)
    layers = batch_norm.batch_norm_layers(model)
    saved = [(l.moving_mean.numpy().copy(), l.moving_variance.numpy().copy()) for l in layers]
    subset = photo_subset(
        load(tiny_world.data_root), mesh.Mesh.load(tiny_world.mesh_path), TRAIN_SPLIT, 16, 75, 8, 0, stream=11
    )
    images = (f["image"] for f, _ in subset.dataset.as_numpy_iterator())
    assert batch_norm.recalibrate(model, images) == 16
    for layer, (mean, variance) in zip(layers, saved):
        np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(layer.moving_variance.numpy(), variance, rtol=1e-4, atol=1e-5)


def test_model_file_and_tensorboard_scalars(uninterrupted):
    import keras
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, result = uninterrupted
    model = keras.saving.load_model(result.model_path)
    assert model.output_shape[-1] > 1
    events = EventAccumulator(str(out / "tb"), size_guidance={"tensors": 0}).Reload()
    tags = set(events.Tags()["tensors"])
    for tag in (
        "train/loss",
        "train/cell_accuracy",
        "train/learning_rate",
        "sampler/alpha",
        "sampler/epoch_size",
        "train/loss_step",
        "validation/accuracy_1km",
        "validation/accuracy_25km",
        "validation/accuracy_200km",
        "validation/accuracy_750km",
        "validation/accuracy_2500km",
    ):
        assert tag in tags, (tag, sorted(tags))
    import tensorflow as tf

    alphas = [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("sampler/alpha")]
    assert alphas == [0.0, 0.0, 1.0]


def test_kill_minus_9_and_resume_reaches_the_same_step_count(uninterrupted, tiny_world, tmp_path):
    from geoloc_tf.m1.checkpoints import latest_checkpoint

    _, expected = uninterrupted
    out = tmp_path / "run"
    saved = lambda: latest_checkpoint(out / "checkpoints") is not None  # noqa: E731
    run_script(tiny_world, out, "auto", kill_when=saved)  # killed after its first save
    assert saved() and not (out / "m1.keras").exists()
    resumed = run_script(tiny_world, out, "auto")
    assert resumed["steps"] == expected.global_steps
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1, 2]
    assert history[0]["resumed_at_step"] > 0  # the interrupted epoch went on mid-way


def test_a_run_killed_before_writing_its_model_writes_the_trained_one(uninterrupted, tiny_world, tmp_path):
    import shutil

    import keras

    import mesh
    from data_pipelines.dataset import load
    from geoloc_tf.m1.training import train_m1

    out, expected = uninterrupted
    rerun = tmp_path / "rerun"
    shutil.copytree(out / "checkpoints", rerun / "checkpoints")  # every epoch, no m1.keras
    shutil.copy(out / "history.json", rerun / "history.json")
    result = train_m1(
        load(tiny_world.data_root),
        mesh.Mesh.load(tiny_world.mesh_path),
        rerun,
        rerun / "tb",
        configs(),
        seed=0,
    )
    assert result.global_steps == expected.global_steps and len(result.history) == 3
    trained = keras.saving.load_model(expected.model_path).get_weights()
    for saved, original in zip(keras.saving.load_model(result.model_path).get_weights(), trained):
        np.testing.assert_array_equal(saved, original)


@pytest.mark.parametrize("strategy, replicas", [("mirrored", 2), ("multi_worker", 1)])
def test_distribution_strategies_train(tiny_world, tmp_path, strategy, replicas):
    one_epoch = dict(SAMPLER, cycle_epochs=1)
    result = run_script(
        tiny_world, tmp_path / strategy, strategy, model=dict(MODEL, sgd_epochs=0), sampler=one_epoch
    )
    assert result["replicas"] == replicas
    assert result["steps"] > 0
    assert (tmp_path / strategy / "m1.keras").exists()


def test_augmentation_on_the_device_trains_under_mirrored_strategy(tiny_world, tmp_path):
    # augment_on="device": the input pipeline yields packed uint8 crops and the DeviceAugment
    # layer unpacks and resizes them inside the (distributed) train step; m1.keras is M1 alone.
    import keras

    one_epoch = dict(SAMPLER, cycle_epochs=1)
    out = tmp_path / "device"
    result = run_script(
        tiny_world, out, "mirrored", model=dict(MODEL, sgd_epochs=0, augment_on="device"), sampler=one_epoch
    )
    history = json.loads((out / "history.json").read_text())
    assert result["replicas"] == 2 and history[0]["augment_on"] == "device"
    assert result["steps"] == history[0]["examples"] // MODEL["global_batch_size"] > 0
    assert np.isfinite(history[0]["loss"])
    model = keras.saving.load_model(out / "m1.keras")
    assert tuple(model.input_shape) == (None, MODEL["image_size"], MODEL["image_size"], 3)


def test_augment_on_auto_means_host_on_cpus_and_rejects_unknown_values():
    import tensorflow as tf

    from geoloc_tf.m1.device_augment import augments_on_device
    from mesh.settings import SettingError

    strategy = tf.distribute.get_strategy()
    assert augments_on_device("auto", strategy) is bool(tf.config.list_logical_devices("GPU"))
    assert augments_on_device("device", strategy) is True
    assert augments_on_device("host", strategy) is False
    mirrored_cpus = tf.distribute.MirroredStrategy(["/cpu:0"])
    assert augments_on_device("auto", mirrored_cpus) is False
    with pytest.raises(SettingError, match="M1Config.augment_on='gpu': must be one of auto"):
        configs(augment_on="gpu")


def test_predict_writes_every_photo_of_every_split_with_top_k(uninterrupted, tiny_world, tmp_path):
    import keras

    from data_pipelines.dataset import load
    from geoloc_tf.m1.predict_records import predict_splits
    from geoloc_tf.prediction_tables import read_table as read_predictions
    from geoloc_tf.retrieval.feature_index import FeatureIndex
    from geoloc_tf.run_configs import PredictConfig
    from geoloc_tf.run_layout import RunLayout

    _, result = uninterrupted
    model = keras.saving.load_model(result.model_path)
    data = load(tiny_world.data_root)
    layout = RunLayout(tmp_path)
    paths = predict_splits(
        model, data, layout, PredictConfig(top_k=3, store_features=True), image_size=75, batch_size=16
    )
    splits = ("m1_train", "m23_train", "m23_val")
    assert set(paths) == set(splits) | {f"{split}_features" for split in splits}
    for split in splits:
        table, ids, probs = read_predictions(paths[split])
        expected = data.table(split)
        assert list(table["photo_id"]) == list(expected["photo_id"])  # every photo, record order
        np.testing.assert_allclose(table["lat"], expected["lat"])
        assert ids.shape == (len(table), 3) and np.all(np.diff(probs, axis=1) <= 0)
        assert np.all(table["top10_mass"] >= probs.sum(axis=1) - 1e-6)  # 10 >= 3 cells of mass
        assert np.all(table["top10_mass"] <= 1 + 1e-6)
        assert "features" not in table  # the features live in the split's index, in table order
        index = FeatureIndex.open(layout.index_dir(split))
        assert list(index.photos["photo_id"]) == list(table["photo_id"])
        assert index.dim == 78  # 1536 x 0.05 width: Inception-C's 6 x 13
    # a rerun finds every shard done and rewrites nothing but the joined tables
    parts = sorted(layout.prediction_dir("m1").rglob("_parts/*/*.parquet"))
    mtimes = [p.stat().st_mtime_ns for p in parts]
    predict_splits(
        model, data, layout, PredictConfig(top_k=3, store_features=True), image_size=75, batch_size=16
    )
    assert [p.stat().st_mtime_ns for p in parts] == mtimes
