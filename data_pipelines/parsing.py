"""A shard record's features, and the model's input made from them.

``parse`` reads a serialized record (``records.feature_spec``: only the features asked for, which
is cheaper); ``model_features`` is what the input pipeline hands the model: the image alone, or
with ``InputConfig.with_metadata`` the image and the photo's metadata; ``model_label`` the label
the loss gets: the cell alone, or with ``InputConfig.with_location`` the cell and the photo's
location.
"""

from __future__ import annotations

import tensorflow as tf

from data_pipelines import records
from data_pipelines.config import InputConfig
from data_pipelines.readers.common import COORD_SCALE

#: The features ``model_label`` reads with ``InputConfig.with_location``.
LOCATION_FEATURES: tuple[str, ...] = ("lat_e7", "lon_e7")


def parse(serialized, features: tuple[str, ...] | None = None, *, batched: bool = False):
    """One record's features (all of the schema, or only ``features``: parsing fewer is cheaper);
    ``batched``: ``serialized`` is a vector of records and each feature a vector."""
    spec = records.feature_spec(tf)
    if features is not None:
        spec = {name: spec[name] for name in features}
    if batched:
        return tf.io.parse_example(serialized, spec)
    return tf.io.parse_single_example(serialized, spec)


def model_features(image, example: dict, config: InputConfig):
    """The model's input: ``image`` alone, or with ``with_metadata`` a dict of it and the photo's
    metadata (per record, or per batch: the ops are elementwise)."""
    if not config.with_metadata:
        return image
    return {
        "image": image,
        "photo_id": example["photo_id"],
        "user_hash": example["user_hash"],
        "posted_at": example["posted_at"],
        "lat": tf.cast(example["lat_e7"], tf.float64) / COORD_SCALE,
        "lon": tf.cast(example["lon_e7"], tf.float64) / COORD_SCALE,
        "outdoor_prob": example["outdoor_prob"],
    }


def model_label(cell, example: dict, config: InputConfig):
    """The label the loss gets: ``cell`` (int32) alone, or with ``with_location`` a dict of it and
    the photo's true latitude and longitude in degrees, float32 (the precision the train step
    computes in), for M1's haversine label smoothing (per record, or per batch)."""
    cell = tf.cast(cell, tf.int32)
    if not config.with_location:
        return cell
    return {
        "cell": cell,
        "lat": tf.cast(tf.cast(example["lat_e7"], tf.float64) / COORD_SCALE, tf.float32),
        "lon": tf.cast(tf.cast(example["lon_e7"], tf.float64) / COORD_SCALE, tf.float32),
    }
