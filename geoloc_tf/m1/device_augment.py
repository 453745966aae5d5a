"""Where M1's training augmentation runs, and its accelerator half inside the train step.

``augment_on="device"``: the input pipeline only decodes each random crop and packs a batch's crops
into one flat uint8 buffer (``data_pipelines.device_augment.pack_crops``); the train step resizes,
flips, jitters and scales them on the accelerator before the forward pass (``device_augment``).
``"host"``: the input pipeline does all of it and yields float32 images. ``"auto"``: device when
training runs on GPUs or TPUs; host on CPUs, where the resize costs the same CPU either way and the
host form needs no unpacking step.

The accelerator's half is keras.ops alone, so it runs inside the TensorFlow train step (a
``tf.function`` under tf.distribute) and inside a jitted JAX one alike. Its shapes come from the
batch's static shapes only (the packed buffer's length, the number of crops, ``image_size``); the
crops' sizes, flips and colour draws are array values, so a jitted step compiles once per packed
length (at most ``InputConfig.device_flat_buckets`` of them). The packed buffer's length differs
from batch to batch and from replica to replica, so the training loop (``geoloc_tf.m1.training``)
calls ``images_for_model`` first thing in its step; m1.keras and the exports hold M1 alone.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from data_pipelines.color import color_affine
from data_pipelines.config import InputConfig

#: Device kinds (``keras.distribution.list_devices`` spelling) on which "auto" augments on device.
ACCELERATORS = ("gpu", "tpu")


def _device_kinds(where) -> list[str]:
    """Kinds ("cpu", "gpu", "tpu") of the devices training runs on: those of ``where``, a
    tf.distribute.Strategy (TensorFlow backend) or a keras.distribution DataParallel or
    ModelParallel; Keras' default devices when None."""
    if where is None:
        devices = keras.distribution.list_devices()
    elif isinstance(where, (keras.distribution.DataParallel, keras.distribution.ModelParallel)):
        devices = [str(d) for d in np.ravel(where.device_mesh.devices)]
    else:
        import tensorflow as tf

        try:
            names = where.extended.worker_devices
        except (RuntimeError, NotImplementedError):  # the default strategy: TensorFlow's placement
            names = [d.name for d in tf.config.list_logical_devices("GPU")]
        return [tf.DeviceSpec.from_string(name).device_type.lower() for name in names]
    return [device.split(":")[0].lower() for device in devices]


def augments_on_device(augment_on: str, where=None) -> bool:
    """``augment_on`` (auto, device or host: ``M1Config.augment_on``) resolved for ``where``
    training runs: a tf.distribute.Strategy (TensorFlow backend), a keras.distribution
    DataParallel or ModelParallel, or None (Keras' default devices: one JAX device)."""
    if augment_on != "auto":
        return augment_on == "device"
    return any(kind in ACCELERATORS for kind in _device_kinds(where))


def _bilinear_taps(length, out: int):
    """Source indices and weights of a half-pixel-centre bilinear resize of ``length`` pixels
    (float32 [n]) to ``out``: what ``tf.image.resize(method="bilinear")`` samples. Returns
    (i0, i1, w), each [n, out]: output k = (1 - w) * in[i0] + w * in[i1]."""
    length = length[:, None]
    src = (ops.arange(out, dtype="float32")[None] + 0.5) * (length / out) - 0.5
    src = ops.minimum(ops.maximum(src, 0.0), length - 1.0)
    low = ops.floor(src)
    i0 = ops.cast(low, "int32")
    i1 = ops.minimum(i0 + 1, ops.cast(length, "int32") - 1)
    return i0, i1, src - low


def device_resize(batch: dict, image_size: int):
    """Resize each crop of a ``pack_crops`` batch to ``image_size``, flipping where ``flip``
    says: float32 [n, size, size, 3] in [0, 255].

    Bilinear interpolation by four gathers from the packed pixels (crop i starts at pixel
    ``sum(h_j * w_j for j < i)``), with the half-pixel centres and edge clamping of
    ``tf.image.resize``: the result equals the host's resize of the crop up to float rounding. A
    flip reverses the column taps (half-pixel sampling is symmetric, so flipping after resizing
    equals resizing the flipped crop).
    """
    pixels = ops.reshape(ops.convert_to_tensor(batch["pixels"]), (-1, 3))
    size = ops.cast(batch["size"], "int32")
    height, width = size[:, 0], size[:, 1]
    area = height * width
    start = ops.cumsum(area) - area
    y0, y1, wy = _bilinear_taps(ops.cast(height, "float32"), image_size)
    x0, x1, wx = _bilinear_taps(ops.cast(width, "float32"), image_size)
    flip = ops.convert_to_tensor(batch["flip"])[:, None] > 0.5
    x0, x1, wx = (ops.where(flip, ops.flip(taps, axis=1), taps) for taps in (x0, x1, wx))
    row0 = start[:, None] + y0 * width[:, None]  # [n, size]: first pixel of each source row
    row1 = start[:, None] + y1 * width[:, None]

    def tap(rows, columns):  # [n, size, size, 3]
        return ops.cast(ops.take(pixels, rows[:, :, None] + columns[:, None, :], axis=0), "float32")

    def along_row(rows):
        left, right = tap(rows, x0), tap(rows, x1)
        return left + (right - left) * wx[:, None, :, None]

    top, bottom = along_row(row0), along_row(row1)
    return top + (bottom - top) * wy[:, :, None, None]


def device_augment(batch: dict, config: InputConfig):
    """The accelerator half of ``augment_on_device``: resize and flip (``device_resize``),
    colour jitter (``data_pipelines.color.color_affine``, as on the host), scaling, clipping.

    ``batch`` is a ``pack_crops`` batch (tensors of the backend, or numpy arrays); returns float32
    [batch, image_size, image_size, 3] in ``value_range``, the transform ``augment_image``
    applies on the host (up to float rounding).
    """
    side = config.image_size
    flat = ops.reshape(device_resize(batch, side), (-1, side * side, 3))
    low, high = config.value_range
    if config.color_jitter:
        mean = ops.mean(flat, axis=1, keepdims=True) / 255.0  # [n, 1, 3]
        a, c = color_affine(ops.convert_to_tensor(batch["color"], "float32"), config, mean, ops)
        flat = ops.matmul(flat, a * ((high - low) / 255.0)) + (c * (high - low) + low)
    else:
        flat = flat * ((high - low) / 255.0) + low
    return ops.reshape(ops.clip(flat, low, high), (-1, side, side, 3))


def images_for_model(features, input_config: InputConfig):
    """The model's float32 images from a training batch's features: the accelerator's half of
    augmentation for packed crops (``input_config.augment_on_device``), else the images as
    they are."""
    if input_config.augment_on_device:
        return device_augment(features, input_config)
    return features
