"""The host's half of training augmentation split between the host and the accelerator
(``augment_on_device``).

The host decodes each image's random crop and nothing more (``host_part_of_device_augment``), and
one map call per batch packs the crops back to back into one flat uint8 buffer (``pack_crops``);
the accelerator's half (``geoloc_tf.m1.device_augment.device_augment``, keras.ops, on any Keras
backend) unpacks, resizes, flips, jitters and scales them inside the train step. The transform is
the one ``augmentation.augment_image`` applies on the host, from the same draws, up to float
rounding.

Why: on a CPU the resize costs about as much as the decode, and a batch padded to the data set's
``max_side`` moves 2-3 times the bytes of the crops it holds (on a 2-core host that capped the
pipeline at about two-thirds of the read+decode ceiling); packed crops bring the host's work below
that ceiling's (experiments/benchmarks/input_bench.py).
"""

from __future__ import annotations

import tensorflow as tf

from data_pipelines.augmentation import decode_random_crop, draws
from data_pipelines.config import InputConfig
from data_pipelines.dataset import WrittenDataset


def device_crop_side(config: InputConfig, data: WrittenDataset) -> int:
    """Largest crop side ``augment_on_device`` ships: ``config.device_crop_side``, or the data
    set's ``max_side`` when that is 0."""
    return int(config.device_crop_side or data.max_side)


def host_part_of_device_augment(image_bytes, seed, config: InputConfig, crop_side: int) -> dict:
    """The host half of ``augment_on_device`` for one image: decode the random crop, nothing more.

    Returns ``{"pixels": uint8[h, w, 3], "size": int32[2], "flip": float32 (1: flip),
    "color": float32[4]}``: the decoded crop, its size, the flip decision and the four colour
    draws, from the same seeds as ``augment_image``. A crop larger than ``crop_side`` (a data set
    with larger images than its ``max_side``) is shrunk to fit here, keeping its aspect ratio, so
    a batch never holds more than ``crop_side``^2 pixels per image. ``pack_crops`` batches these.
    """
    crop_seed, uniform = draws(seed)
    crop = decode_random_crop(image_bytes, crop_seed, config)
    crop = tf.cond(
        tf.reduce_max(tf.shape(crop)[:2]) > crop_side,
        lambda: tf.cast(
            tf.round(tf.image.resize(crop, [crop_side, crop_side], preserve_aspect_ratio=True)), tf.uint8
        ),
        lambda: crop,
    )
    # float32 1.0 / 0.0, not bool: tf.distribute cannot aggregate bool tensors.
    flip = tf.cast(uniform[0] < 0.5, tf.float32) if config.flip else tf.constant(0.0)
    return {"pixels": crop, "size": tf.shape(crop)[:2], "flip": flip, "color": uniform[1:]}


def packed_length_step(config: InputConfig, batch_size: int, crop_side: int) -> int:
    """Multiple of which ``pack_crops`` makes its flat buffer's length: the largest a batch of
    ``batch_size`` crops can hold, divided by ``config.device_flat_buckets`` and rounded up to
    whole pixels (3 bytes); 3 when ``device_flat_buckets`` is 0 (no rounding)."""
    if config.device_flat_buckets <= 0:
        return 3
    return 3 * -(-batch_size * crop_side * crop_side // config.device_flat_buckets)


def pack_crops(images, seeds, config: InputConfig, crop_side: int, batch_size: int) -> dict:
    """The host half of ``augment_on_device`` for a batch: ``host_part_of_device_augment`` on
    each of the JPEGs ``images`` (string [n]) with its ``seeds`` (int64 [n, 2]), the crops packed
    back to back.

    Returns ``{"pixels": uint8[T], "size": int32[n, 2], "flip": float32[n],
    "color": float32[n, 4]}``: crop i's pixels, row-major RGB, start at byte
    ``3 * sum(h_j * w_j for j < i)``. The buffer holds the crops' bytes and nothing else, but for
    zeros at its end that round ``T`` up to a multiple of ``packed_length_step`` (at most
    ``device_flat_buckets`` lengths a batch, so an XLA-compiled train step compiles a bounded
    number of times). A batch padded to ``crop_side`` x ``crop_side`` instead moved 2-3 times the
    bytes for average Inception crops (area 8-100 %) and, on a 2-core host, held the pipeline to
    about two-thirds of the read+decode ceiling; packed, it runs above it (input_bench.py).

    The crops are decoded one after another inside this call: the parallelism is across batches
    (the ``map`` over batches runs with AUTOTUNE parallel calls).
    """
    n = tf.shape(images)[0]
    crops = tf.TensorArray(tf.uint8, size=n + 1, infer_shape=False, element_shape=[None])
    sizes = tf.TensorArray(tf.int32, size=n, element_shape=[2])
    uniforms = tf.TensorArray(tf.float32, size=n, element_shape=[5])

    def decode(i, crops, sizes, uniforms):
        part = host_part_of_device_augment(images[i], seeds[i], config, crop_side)
        return (
            i + 1,
            crops.write(i, tf.reshape(part["pixels"], [-1])),
            sizes.write(i, part["size"]),
            uniforms.write(i, tf.concat([part["flip"][None], part["color"]], 0)),
        )

    _, crops, sizes, uniforms = tf.while_loop(
        lambda i, *_: i < n, decode, (tf.constant(0), crops, sizes, uniforms)
    )
    size = sizes.stack()
    total = 3 * tf.reduce_sum(tf.cast(size[:, 0], tf.int64) * tf.cast(size[:, 1], tf.int64))
    step = packed_length_step(config, batch_size, crop_side)
    crops = crops.write(n, tf.zeros([(-total) % step], tf.uint8))
    uniforms = uniforms.stack()
    return {"pixels": crops.concat(), "size": size, "flip": uniforms[:, 0], "color": uniforms[:, 1:]}
