"""SavedModel exports of M2 and M3 with serving signatures that take what a client has.

A client of M2 has M1's output for a photo (its top-k cells, from M1's SavedModel) and the posting
time; a client of M3 has the same for an album of up to 24 photos of one user. The signatures take
exactly that, compute the §3.2 time features inside the graph (the one `time_features` function
used in training), and return the top-k cells, their probabilities and the predicted lat/lon (the
top cell's label point, baked in as a constant), like M1's export:

- M2 `serve(cell_ids int32 (B, k), cell_probs float32 (B, k), posted_at int64 (B,)
  [, outdoor float32 (B,)])`
- M3 `serve(cell_ids int32 (B, 24, k), cell_probs float32 (B, 24, k), posted_at int64 (B, 24),
  mask bool (B, 24) [, outdoor float32 (B, 24)])`; padded positions are masked out.

The task modules (``geoloc_tf.m2.task``, ``geoloc_tf.m3.task``) call this with the inputs their
configs declare: M1's k, the extra inputs and the album size.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from geoloc_tf import errors
from geoloc_tf.m2.data import CELL_IDS, CELL_PROBS, OUTDOOR, TIME
from geoloc_tf.m3.data import MASK
from geoloc_tf.saving import write_export_archive
from geoloc_tf.time_features import time_features

ENDPOINT = "serve"


def _label_points(cell_latlon: np.ndarray, num_cells: int) -> tf.Tensor:
    points = np.asarray(cell_latlon, np.float64)
    if points.shape != (num_cells, 2):
        raise errors.ExportError(f"label points of shape {points.shape}; expected ({num_cells}, 2)")
    return tf.constant(points, tf.float64)


def _serving_fn(
    model: keras.Model,
    cell_latlon: np.ndarray,
    top_k: int,
    m1_k: int,
    extra_inputs: tuple[str, ...],
    album_size: int | None,
):
    num_cells = int(model.output_shape[-1])
    points = _label_points(cell_latlon, num_cells)
    k = min(int(top_k), num_cells)
    with_outdoor = OUTDOOR in extra_inputs
    album = album_size is not None

    def serve(cell_ids, cell_probs, posted_at, *rest):
        inputs = {CELL_IDS: cell_ids, CELL_PROBS: cell_probs, TIME: time_features(posted_at)}
        rest = list(rest)
        if album:
            inputs[MASK] = rest.pop(0)
        if with_outdoor:
            inputs[OUTDOOR] = tf.expand_dims(rest.pop(0), -1)
        probabilities = tf.cast(model(inputs, training=False), tf.float32)
        top = tf.math.top_k(probabilities, k=k)
        best = tf.gather(points, top.indices[..., 0])
        return {
            "cell_ids": tf.cast(top.indices, tf.int32),
            "probabilities": top.values,
            "lat": best[..., 0],
            "lon": best[..., 1],
        }

    lead: list[int | None] = [None, int(album_size)] if album_size is not None else [None]
    signature = [
        tf.TensorSpec(lead + [m1_k], tf.int32, name=CELL_IDS),
        tf.TensorSpec(lead + [m1_k], tf.float32, name=CELL_PROBS),
        tf.TensorSpec(lead, tf.int64, name="posted_at"),
    ]
    if album:
        signature.append(tf.TensorSpec(lead, tf.bool, name=MASK))
    if with_outdoor:
        signature.append(tf.TensorSpec(lead, tf.float32, name=OUTDOOR))
    return serve, signature


def export_metadata_model(
    model: keras.Model,
    cell_latlon: np.ndarray,
    export_dir: str,
    *,
    m1_k: int,
    extra_inputs: tuple[str, ...] = (),
    album_size: int | None = None,
    top_k: int = 5,
) -> str:
    """Writes M2's (``album_size`` None) or M3's serving SavedModel; returns its folder.

    ``m1_k``: M1's cells per photo the model takes (``M2Config.top_k``); ``extra_inputs``:
    ``M2Config.extra_inputs``; ``album_size``: ``M3Config.album_size`` for M3."""
    serve, signature = _serving_fn(model, cell_latlon, top_k, m1_k, extra_inputs, album_size)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=ENDPOINT, fn=serve, input_signature=signature)
    return write_export_archive(archive, export_dir)
