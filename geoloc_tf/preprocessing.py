"""Image preprocessing of M1's evaluation, prediction and exported SavedModel: one definition.

The serving signature must see exactly the pixels the model was evaluated on, so the transform is
the data pipeline's own evaluation transform (`data_pipelines.augmentation.eval_image`): decode
the JPEG, keep the central `central_fraction` of each side (0.875, the Inception evaluation crop of
TF-slim's `inception_preprocessing.preprocess_for_eval`), resize bilinearly to the model's square
input (299 px for Inception-v4, paper §3.1.2) and scale [0, 1] to [-1, 1]. Decoding is one step
(``decode``) and everything after it another (``eval_pixels``: crop, resize, scale from decoded
uint8 pixels); ``eval_image`` is the two. Inference (``geoloc_tf.inference.m1_model``) decodes
photos on the host, once, with ``data_pipelines.images.decode_for_model``, and hands M1 the
pixels, several photos of different sizes packed into one flat buffer (``pack``, ``eval_packed``)
so one compiled function takes any batch. M1's LiteRT and ONNX exports take uint8 pixels at the
model's size (``resize_pixels``, ``pixels_packed``) and scale them themselves (``scale_pixels``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from data_pipelines.augmentation import eval_resize_pixels, eval_scale
from data_pipelines.config import InputConfig

#: Fraction of each side kept by the evaluation crop (slim `preprocess_for_eval` default).
CENTRAL_FRACTION = InputConfig.central_fraction


def _eval_config(image_size: int = 299, central_fraction: float = CENTRAL_FRACTION) -> InputConfig:
    return InputConfig(
        image_size=image_size, central_fraction=central_fraction, training=False, value_range=(-1.0, 1.0)
    )


def decode(image_bytes: tf.Tensor) -> tf.Tensor:
    """Encoded JPEG or PNG (scalar tf.string) -> uint8 (h, w, 3); grey and CMYK come out RGB."""
    return tf.io.decode_jpeg(image_bytes, channels=3)


def eval_pixels(pixels: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION) -> tf.Tensor:
    """Decoded uint8 (h, w, 3) pixels -> float32 (image_size, image_size, 3) in [-1, 1]: central
    crop, bilinear resize, scale (``data_pipelines.augmentation.eval_image`` after decoding)."""
    config = _eval_config(image_size, central_fraction)
    return eval_scale(eval_resize_pixels(pixels, config), config)


def eval_image(
    image_bytes: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION
) -> tf.Tensor:
    """Encoded JPEG (scalar tf.string) -> float32 (image_size, image_size, 3) in [-1, 1]:
    ``decode``, then ``eval_pixels``."""
    return eval_pixels(decode(image_bytes), image_size, central_fraction)


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


def resize_pixels(
    pixels: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION
) -> tf.Tensor:
    """Decoded uint8 (h, w, 3) -> uint8 (image_size, image_size, 3): the crop and resize of
    ``eval_pixels`` rounded to the nearest level, the pixels M1's LiteRT and ONNX exports take
    (``geoloc_tf.m1.portable``); ``scale_pixels`` of them differs from ``eval_pixels`` by at most
    1/255 (half a level)."""
    resized = eval_resize_pixels(pixels, _eval_config(image_size, central_fraction))
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def eval_pixels_batch(
    image_bytes: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION
) -> tf.Tensor:
    """A batch of encoded JPEGs (B,) -> uint8 (B, image_size, image_size, 3): ``decode`` then
    ``resize_pixels`` of each."""
    return tf.map_fn(
        lambda data: resize_pixels(decode(data), image_size, central_fraction),
        image_bytes,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.uint8),
    )


def scale_pixels(pixels: tf.Tensor) -> tf.Tensor:
    """uint8 pixels (..., 3) -> float32 in [-1, 1], as ``eval_image`` scales the resized photo."""
    return eval_scale(tf.cast(pixels, tf.float32), _eval_config())  # the size is not used


# ---------------------------------------------------------------------------- packed batches
#: The signature of a packed batch: every photo's pixels back to back (uint8), and each one's
#: (height, width). One compiled function takes any batch of any sizes.
PACKED_SIGNATURE = (tf.TensorSpec([None], tf.uint8), tf.TensorSpec([None, 2], tf.int32))


def pack(images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(flat uint8 pixels, int32 (B, 2) heights and widths) of uint8 (h, w, 3) arrays."""
    if not images:
        return np.zeros(0, np.uint8), np.zeros((0, 2), np.int32)
    for image in images:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected uint8 (h, w, 3) pixels; got {image.dtype} {image.shape}")
    flat = np.concatenate([image.reshape(-1) for image in images])
    return flat, np.array([image.shape[:2] for image in images], np.int32).reshape(-1, 2)


def _map_packed(flat: tf.Tensor, shapes: tf.Tensor, fn: Callable, spec: tf.TensorSpec) -> tf.Tensor:
    sizes = shapes[:, 0] * shapes[:, 1] * 3
    starts = tf.cumsum(sizes, exclusive=True)

    def one(i):
        pixels = tf.reshape(flat[starts[i] : starts[i] + sizes[i]], [shapes[i, 0], shapes[i, 1], 3])
        return fn(pixels)

    return tf.map_fn(one, tf.range(tf.shape(shapes)[0]), fn_output_signature=spec)


def eval_packed(
    flat: tf.Tensor, shapes: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION
) -> tf.Tensor:
    """A packed batch (``pack``) -> float32 (B, image_size, image_size, 3): ``eval_pixels`` of each."""
    return _map_packed(
        flat,
        shapes,
        lambda pixels: eval_pixels(pixels, image_size, central_fraction),
        tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )


def pixels_packed(
    flat: tf.Tensor, shapes: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION
) -> tf.Tensor:
    """A packed batch (``pack``) -> uint8 (B, image_size, image_size, 3): ``resize_pixels`` of each."""
    return _map_packed(
        flat,
        shapes,
        lambda pixels: resize_pixels(pixels, image_size, central_fraction),
        tf.TensorSpec([image_size, image_size, 3], tf.uint8),
    )
