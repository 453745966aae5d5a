"""Export of M1: a SavedModel that maps JPEG bytes to cells and a location, plus the .keras file.

The serving signature is what a user of the paper's system calls on a photo (§3.1.2): it takes a
batch of encoded JPEGs (``tf.string``, shape (B,)), applies ``geoloc_tf.preprocessing.eval_batch``
(decode, central crop, resize, [-1, 1]) and M1, and returns

    cell_ids       int32   (B, k)  top-k mesh cells, most probable first
    probabilities  float32 (B, k)  their softmax probabilities
    lat, lon       float64 (B,)    the label point of the top-1 cell, in degrees

The label points are the cells' imagery centroids ("the lat/lon centroid of the image
population", §3.1.2), passed in by the caller as a ``(num_cells, 2)`` [lat, lon] array and baked
into the graph as a constant, so the SavedModel needs no side file. The export is written with
``keras.export.ExportArchive`` under a temporary name and renamed into place.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from geoloc_tf import errors, preprocessing
from geoloc_tf.saving import save_keras, write_export_archive

#: Name of the serving endpoint (also exported as ``serving_default``).
ENDPOINT = "serve"
#: Top-k of the paper's M2/M3 inputs (the top-10 cells, Table 2).
DEFAULT_TOP_K = 10


@dataclasses.dataclass(frozen=True)
class ExportedM1:
    """Paths written by ``export_m1``."""

    saved_model_dir: str
    keras_path: str | None


def _check_label_points(cell_latlon: np.ndarray, num_cells: int) -> np.ndarray:
    points = np.asarray(cell_latlon, dtype=np.float64)
    if points.shape != (num_cells, 2):
        raise errors.ExportError(
            f"cell_latlon has shape {points.shape}; expected ({num_cells}, 2) [lat, lon] degrees, one "
            "row per cell of the model's softmax"
        )
    if not np.all(np.isfinite(points)):
        raise errors.ExportError("cell_latlon holds NaN or infinite values; expected degrees")
    if np.any(np.abs(points[:, 0]) > 90) or np.any(np.abs(points[:, 1]) > 180):
        row = int(np.flatnonzero((np.abs(points[:, 0]) > 90) | (np.abs(points[:, 1]) > 180))[0])
        raise errors.ExportError(
            f"cell_latlon row {row} = {points[row].tolist()}; expected lat in [-90, 90] and lon in "
            "[-180, 180] (columns are [lat, lon])"
        )
    return points


def make_serving_fn(
    model: keras.Model,
    cell_latlon: np.ndarray,
    *,
    top_k: int = DEFAULT_TOP_K,
    central_fraction: float = preprocessing.CENTRAL_FRACTION,
):
    """The function behind the serving signature: JPEG bytes (B,) -> dict of outputs (module doc).

    Returned undecorated so ``ExportArchive`` traces it; wrap it in ``tf.function`` to call it in
    process (the tests compare the two).
    """
    num_cells = int(model.output_shape[-1])
    image_size = int(model.input_shape[1])
    points = tf.constant(_check_label_points(cell_latlon, num_cells), tf.float64)
    k = min(int(top_k), num_cells)
    if k < 1:
        raise errors.ExportError(f"top_k={top_k}; expected >= 1")

    def serve(image_bytes):
        images = preprocessing.eval_batch(image_bytes, image_size, central_fraction)
        probabilities = tf.cast(model(images, training=False), tf.float32)
        top = tf.math.top_k(probabilities, k=k)
        best = tf.gather(points, top.indices[:, 0])
        return {
            "cell_ids": tf.cast(top.indices, tf.int32),
            "probabilities": top.values,
            "lat": best[:, 0],
            "lon": best[:, 1],
        }

    return serve


def export_m1(
    model: keras.Model,
    cell_latlon: np.ndarray,
    export_dir: str,
    *,
    top_k: int = DEFAULT_TOP_K,
    keras_path: str | None = None,
    central_fraction: float = preprocessing.CENTRAL_FRACTION,
) -> ExportedM1:
    """Writes M1's serving SavedModel to ``export_dir`` (and ``model`` to ``keras_path`` if given).

    Load it with ``tf.saved_model.load(export_dir)`` and call ``.serve(jpeg_bytes)`` or the
    ``serving_default`` signature (input ``image_bytes``); see the module docstring for the outputs.
    """
    serve = make_serving_fn(model, cell_latlon, top_k=top_k, central_fraction=central_fraction)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=ENDPOINT,
        fn=serve,
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )
    final = write_export_archive(archive, export_dir)
    if keras_path is not None:
        save_keras(model, keras_path)
    return ExportedM1(saved_model_dir=final, keras_path=keras_path)
