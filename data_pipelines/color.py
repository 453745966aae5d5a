"""Inception's colour jitter (brightness, saturation, hue, contrast) as one affine map of RGB pixels,
on any array library.

The host's augmentation (``augmentation``, TensorFlow in tf.data) and the accelerator's half of it
(``geoloc_tf.m1.device_augment``, keras.ops inside the train step, on TensorFlow or JAX) both call
``color_affine``, passing their array namespace; this module itself needs numpy alone.
"""

from __future__ import annotations

import numpy as np

from data_pipelines.config import InputConfig

# RGB <-> YIQ: hue is a rotation and saturation a scaling of the (I, Q) plane, so the colour
# jitter of one image is a single 3x3 matrix (plus brightness and contrast): one small matmul
# instead of tf.image's RGB->HSV->RGB round trips, which cost more than decoding on a CPU.
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    np.float64,
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def _rgb_matrix(yiq_matrix: np.ndarray) -> np.ndarray:
    """``yiq_matrix`` acting on the YIQ coordinates of RGB row vectors: (YIQ^-1 M YIQ)^T, float32."""
    return (_YIQ_TO_RGB @ yiq_matrix @ _RGB_TO_YIQ).T.astype(np.float32)


# The colour matrix for saturation s and hue angle h is KEEP + s cos(h) SCALE + s sin(h) ROTATE:
# luma kept, the (I, Q) plane scaled by s and rotated by h.
_KEEP = _rgb_matrix(np.diag([1.0, 0.0, 0.0]))
_SCALE = _rgb_matrix(np.diag([0.0, 1.0, 1.0]))
_ROTATE = _rgb_matrix(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]))


def color_affine(uniform, config: InputConfig, mean_rgb, xp):
    """(A, c) with the jittered pixel ``rgb @ A + c``, for pixels as row vectors in [0, 1], from
    four uniform [0, 1) draws (brightness, saturation, hue, contrast).

    Brightness (+b), saturation and hue (one matrix M in YIQ) and contrast k about the mean of the
    brightened and coloured image (``(mean_rgb + b) @ M``) are all affine, so they compose into
    ``A = k M`` and ``c = (b + (1 - k) mean_rgb) @ M``. ``uniform``: [..., 4], ``mean_rgb``:
    [..., 1, 3] (the image's mean before jitter), for one image or a batch ([n, 4], [n, 1, 3]);
    returns A [..., 3, 3] and c [..., 1, 3]. ``xp`` is the array namespace of the inputs (it
    needs ``cos``, ``sin`` and ``matmul``): ``tf.experimental.numpy``, ``keras.ops``, ``numpy``.
    """

    def draw(index, low, high):  # [..., 1, 1]: broadcasts over the matrix
        return low + uniform[..., index, None, None] * (high - low)

    brightness = draw(0, -config.brightness_delta, config.brightness_delta)
    saturation = draw(1, *config.saturation_range)
    hue = draw(2, -config.hue_delta, config.hue_delta) * (2.0 * np.pi)  # tf.image: delta in turns
    contrast = draw(3, *config.contrast_range)
    matrix = xp.cos(hue) * saturation * _SCALE + xp.sin(hue) * saturation * _ROTATE + _KEEP
    return contrast * matrix, xp.matmul(brightness + (1.0 - contrast) * mean_rgb, matrix)
