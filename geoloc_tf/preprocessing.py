"""Image preprocessing of M1's evaluation, prediction and exported SavedModel: one definition.

The serving signature must see exactly the pixels the model was evaluated on, so the transform is
the data pipeline's own evaluation transform (`data_pipelines.augmentation.eval_image`): decode
the JPEG, keep the central `central_fraction` of each side (0.875, the Inception evaluation crop of
TF-slim's `inception_preprocessing.preprocess_for_eval`), resize bilinearly to the model's square
input (299 px for Inception-v4, paper §3.1.2) and scale [0, 1] to [-1, 1]. This module only gives
it the signature the export and `geoloc evaluate` need (a size instead of an InputConfig) and a
batched form, and splits it in two for M1's LiteRT and ONNX exports: the host makes uint8 pixels
(``eval_pixels_batch``), the model scales them (``scale_pixels``).
"""

from __future__ import annotations

import tensorflow as tf

from data_pipelines.augmentation import eval_image as _pipeline_eval_image
from data_pipelines.augmentation import eval_resize, eval_scale
from data_pipelines.config import InputConfig

#: Fraction of each side kept by the evaluation crop (slim `preprocess_for_eval` default).
CENTRAL_FRACTION = InputConfig.central_fraction


def _eval_config(image_size: int = 299, central_fraction: float = CENTRAL_FRACTION) -> InputConfig:
    return InputConfig(
        image_size=image_size, central_fraction=central_fraction, training=False, value_range=(-1.0, 1.0)
    )


def eval_image(
    image_bytes: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION
) -> tf.Tensor:
    """Encoded JPEG (scalar tf.string) -> float32 (image_size, image_size, 3) in [-1, 1].

    Grey-scale and CMYK JPEGs come out as RGB.
    """
    return _pipeline_eval_image(image_bytes, _eval_config(image_size, central_fraction))


def eval_batch(
    image_bytes: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION
) -> tf.Tensor:
    """A batch of encoded JPEGs (shape (B,), tf.string) -> float32 (B, image_size, image_size, 3).

    Images of different sizes are fine: each is decoded and resized on its own (`tf.map_fn`).
    """
    return tf.map_fn(
        lambda data: eval_image(data, image_size, central_fraction),
        image_bytes,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )


def eval_pixels_batch(
    image_bytes: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION
) -> tf.Tensor:
    """A batch of encoded JPEGs (B,) -> uint8 (B, image_size, image_size, 3): the pixels M1's
    LiteRT and ONNX exports take (``geoloc_tf.m1.portable``).

    The same decode, central crop and bilinear resize as ``eval_batch``, rounded to the nearest
    level: ``scale_pixels`` of them differs from ``eval_batch`` by at most 1/255 (half a level).
    """
    config = _eval_config(image_size, central_fraction)

    def pixels(data):
        resized = eval_resize(data, config)
        return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)

    return tf.map_fn(
        pixels, image_bytes, fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.uint8)
    )


def scale_pixels(pixels: tf.Tensor) -> tf.Tensor:
    """uint8 pixels (..., 3) -> float32 in [-1, 1], as ``eval_image`` scales the resized photo."""
    return eval_scale(tf.cast(pixels, tf.float32), _eval_config())  # the size is not used
