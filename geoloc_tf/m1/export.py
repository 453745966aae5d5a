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

A second endpoint, ``serve_pixels``, takes what M1's LiteRT and ONNX files take
(``geoloc_tf.m1.portable``): uint8 pixels (B, S, S, 3) at M1's input side S, already decoded,
cropped and resized by ``preprocessing.eval_pixels_batch``; it returns the same four outputs. The
export stage checks those files against it on the same pixels.

**Retrieval is not in the export.** Retrieval inside the top cells (``geoloc_tf.retrieval.
cell_retrieval``) and the nearest indexed photos need M1's penultimate features and the feature
index of M1's training photos (``RUN_DIR/index/m1_train``: gigabytes of features, a FAISS index,
a photo table). Neither belongs in a SavedModel: the index is data that grows with the training set
and is searched by numpy or FAISS outside the graph, and the signatures return cells only, not
features. `geoloc predict` and `geoloc serve` therefore answer with retrieval
(``--cell_retrieval_cells``) only from a run directory (``--model=RUN_DIR``, which has m1/m1.keras
and, by default, its index); given an export they refuse the setting with one line saying so.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from geoloc_tf import errors, preprocessing
from geoloc_tf.m2.config import DEFAULT_TOP_K  # the top-10 cells M2/M3 take (§3.2), declared once there
from geoloc_tf.saving import save_keras, write_export_archive

#: Name of the serving endpoint (also exported as ``serving_default``).
ENDPOINT = "serve"
#: Name of the endpoint on decoded pixels (module doc).
PIXELS_ENDPOINT = "serve_pixels"


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


def top_cells(model: keras.Model, images, k: int):
    """(cell ids int32 (B, k), probabilities float32 (B, k)), best first: M1 on [-1, 1] images and
    its top-k, the one computation behind every exported form of M1."""
    probabilities = tf.cast(model(images, training=False), tf.float32)
    top = tf.math.top_k(probabilities, k=k)
    return tf.cast(top.indices, tf.int32), top.values


def checked_top_k(model: keras.Model, top_k: int) -> int:
    """``top_k`` capped at the number of cells; an ExportError below 1."""
    if int(top_k) < 1:
        raise errors.ExportError(f"top_k={top_k}; expected >= 1")
    return min(int(top_k), int(model.output_shape[-1]))


def _serving_fns(model: keras.Model, cell_latlon: np.ndarray, top_k: int, central_fraction: float) -> tuple:
    """(serve on JPEG bytes, serve_pixels on uint8 pixels), both returning the module doc's outputs."""
    image_size = int(model.input_shape[1])
    points = tf.constant(_check_label_points(cell_latlon, int(model.output_shape[-1])), tf.float64)
    k = checked_top_k(model, top_k)

    def answer(images):
        cell_ids, probabilities = top_cells(model, images, k)
        best = tf.gather(points, cell_ids[:, 0])
        return {"cell_ids": cell_ids, "probabilities": probabilities, "lat": best[:, 0], "lon": best[:, 1]}

    def serve(image_bytes):
        return answer(preprocessing.eval_batch(image_bytes, image_size, central_fraction))

    def serve_pixels(pixels):
        return answer(preprocessing.scale_pixels(pixels))

    return serve, serve_pixels


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
    return _serving_fns(model, cell_latlon, top_k, central_fraction)[0]


def pixels_signature(image_size: int) -> tf.TensorSpec:
    """uint8 (B, S, S, 3): the input of ``serve_pixels`` and of the LiteRT and ONNX files."""
    return tf.TensorSpec([None, image_size, image_size, 3], tf.uint8, name="pixels")


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
    ``serving_default`` signature (input ``image_bytes``), or ``.serve_pixels(uint8 pixels)``; see
    the module docstring for the outputs.
    """
    serve, serve_pixels = _serving_fns(model, cell_latlon, top_k, central_fraction)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=ENDPOINT,
        fn=serve,
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )
    archive.add_endpoint(
        name=PIXELS_ENDPOINT,
        fn=serve_pixels,
        input_signature=[pixels_signature(int(model.input_shape[1]))],
    )
    final = write_export_archive(archive, export_dir)
    if keras_path is not None:
        save_keras(model, keras_path)
    return ExportedM1(saved_model_dir=final, keras_path=keras_path)
