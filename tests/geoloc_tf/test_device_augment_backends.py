"""The accelerator's half of augmentation (``geoloc_tf.m1.device_augment``, keras.ops) equals the
host's augmentation (``data_pipelines.augmentation.augment_image``, tf.data) on both Keras backends.

Here (TensorFlow) six JPEGs of different sizes are augmented on the host and, from the same seeds,
packed by the host half (``pack_crops``); two such batches, with flips and colour jitter on and
crops of several sizes. The device half runs on them in a ``tf.function`` here and under
``jax.jit`` in a fresh interpreter on JAX (``backend_runs.run_on_backend``), which reads the
packed batches from .npy files and writes its images back; TensorFlow is blocked there, as on a
machine with JAX and no TensorFlow.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from data_pipelines.augmentation import augment_image
from data_pipelines.config import InputConfig
from data_pipelines.device_augment import pack_crops
from geoloc_tf.m1.device_augment import images_for_model
from tests.geoloc_tf import backend_runs

#: Pixels in [-1, 1]: the two halves differ by float rounding only (the resize's taps and weights
#: are the same; sums run in another order).
ATOL = 2e-4
#: (height, width) of the JPEGs: each crop covers 8-100 % of its photo, so sizes vary.
PHOTOS = ((48, 64), (64, 48), (40, 40), (64, 64), (30, 50), (56, 36))
CROP_SIDE = 64  # no photo is larger: no crop is shrunk before packing
KEYS = ("pixels", "size", "flip", "color")
HOST = InputConfig(training=True, image_size=24, global_batch_size=len(PHOTOS))
#: One packed length for every batch (``device_flat_buckets=1``): the largest a batch can hold.
DEVICE = dataclasses.replace(HOST, augment_on_device=True, device_flat_buckets=1)
PLAIN = dataclasses.replace(HOST, color_jitter=False)


@pytest.fixture(scope="module")
def batches(tmp_path_factory) -> tuple[Path, list[dict[str, np.ndarray]]]:
    """Two packed batches and their host augmentations ("host"; "host_plain" without colour
    jitter), also as ``<batch>_<key>.npy``."""
    root = tmp_path_factory.mktemp("device_augment")
    rng = np.random.default_rng(0)
    jpegs = [tf.io.encode_jpeg(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).numpy() for h, w in PHOTOS]
    out = []
    for index in range(2):
        seeds = tf.constant([[index, i] for i in range(len(PHOTOS))], tf.int64)
        packed = pack_crops(tf.constant(jpegs), seeds, DEVICE, CROP_SIDE, len(PHOTOS))
        batch = {key: packed[key].numpy() for key in KEYS}
        for name, config in (("host", HOST), ("host_plain", PLAIN)):
            batch[name] = np.stack([augment_image(j, s, config).numpy() for j, s in zip(jpegs, seeds)])
        for key, value in batch.items():
            np.save(root / f"{index}_{key}.npy", value)
        out.append(batch)
    return root, out


def test_the_batches_hold_crops_of_several_sizes_flipped_and_not(batches):
    _, (first, second) = batches
    sizes = np.concatenate([first["size"], second["size"]])
    assert len({tuple(size) for size in sizes}) >= 8 and (sizes <= CROP_SIDE).all()
    assert set(np.concatenate([first["flip"], second["flip"]])) == {0.0, 1.0}
    assert first["pixels"].shape == second["pixels"].shape == (3 * len(PHOTOS) * CROP_SIDE**2,)


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("color_jitter", [True, False])
def test_device_half_on_tensorflow_equals_host_augmentation(batches, jit_compile, color_jitter):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("this process runs Keras on another backend")
    config = dataclasses.replace(DEVICE, color_jitter=color_jitter)
    augment = tf.function(lambda batch: images_for_model(batch, config), jit_compile=jit_compile)
    for batch in batches[1]:
        images = augment({key: tf.constant(batch[key]) for key in KEYS}).numpy()
        np.testing.assert_allclose(images, batch["host" if color_jitter else "host_plain"], atol=ATOL)


JAX_RUN = """
import time
import numpy as np
import geoloc_tf
from tests.geoloc_tf.backend_runs import block_tensorflow
block_tensorflow()
import jax
import keras
from data_pipelines.config import InputConfig
from geoloc_tf.m1.device_augment import augments_on_device, images_for_model

config = InputConfig(**{config!r})
traces = []
def augment(batch):
    traces.append(1)  # runs once per trace
    return images_for_model(batch, config)
augment = jax.jit(augment)
seconds = []
for index in range(2):
    batch = {{key: np.load(f"{root}/{{index}}_{{key}}.npy") for key in {keys!r}}}
    started = time.perf_counter()
    np.save(f"{root}/{{index}}_jax.npy", np.asarray(augment(batch)))
    seconds.append(round(time.perf_counter() - started, 3))
devices = keras.distribution.list_devices()
answer({{
    "backend": keras.backend.backend(),
    "traces": len(traces),
    "seconds": seconds,
    "devices": devices,
    "auto_default": augments_on_device("auto", None),
    "auto_cpus": augments_on_device("auto", keras.distribution.DataParallel(devices=devices)),
    "auto_gpus": augments_on_device("auto", keras.distribution.DataParallel(devices=["gpu:0", "gpu:1"])),
    "device_cpus": augments_on_device("device", None),
}})
"""


def test_device_half_under_jax_jit_equals_host_augmentation_and_compiles_once(batches, monkeypatch):
    backend_runs.require_jax()
    root, host = batches
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    config = {field.name: getattr(DEVICE, field.name) for field in dataclasses.fields(DEVICE)}
    run = backend_runs.run_on_backend("jax", JAX_RUN.format(config=config, root=str(root), keys=KEYS))
    print("jax device_augment seconds (first with the compile):", run["seconds"])  # pytest -s
    assert run["backend"] == "jax"
    for index in range(2):
        np.testing.assert_allclose(np.load(root / f"{index}_jax.npy"), host[index]["host"], atol=ATOL)
    # Two batches of the same packed length and number of crops: one trace, one compile.
    assert run["traces"] == 1
    # "auto" augments on the device on GPUs (or TPUs) only; two CPUs here.
    assert run["devices"] == ["cpu:0", "cpu:1"]
    assert (run["auto_default"], run["auto_cpus"], run["auto_gpus"], run["device_cpus"]) == (
        False,
        False,
        True,
        True,
    )
