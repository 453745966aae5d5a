"""The TFRecord schema of the written data set (one ``tf.train.Example`` per photo).

Kept per photo (no more, for privacy: README "Responsible use"): image (JPEG), photo id, hashed user id, posting time (UTC
epoch s, §2, -1 unknown), latitude/longitude as int64 1e-7 degrees (exact to ~1 cm: the 1 km
threshold of §3.1.3 must not suffer float32's ~1 m at 180 deg), accuracy (Flickr level 1-16,
-1 unknown) and outdoor probability (§4.1.2, -1 unknown). Nothing else.

The same keys and encodings as ``tfds_features()``, so ``tfds.builder_from_directory`` reads the
shards as they are. No labels: labels depend on the mesh and are joined at read time
(``labels``), so one written data set serves every mesh (§3.1.1).
"""

from __future__ import annotations

import numpy as np

KEYS = (
    "image",
    "photo_id",
    "user_hash",
    "posted_at",
    "lat_e7",
    "lon_e7",
    "accuracy",
    "outdoor_prob",
)


def make_example(
    tf,
    image: bytes,
    photo_id: str,
    user_hash: str,
    posted_at: int,
    lat_e7: int,
    lon_e7: int,
    accuracy: int,
    outdoor_prob: float,
) -> bytes:
    """Serializes one photo; ``tf`` is the tensorflow module (imported by the caller)."""
    feature = tf.train.Feature
    b = lambda v: feature(bytes_list=tf.train.BytesList(value=[v]))
    i = lambda v: feature(int64_list=tf.train.Int64List(value=[int(v)]))
    f = lambda v: feature(float_list=tf.train.FloatList(value=[float(v)]))
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": b(image),
                "photo_id": b(photo_id.encode("utf-8")),
                "user_hash": b(user_hash.encode("ascii")),
                "posted_at": i(posted_at),
                "lat_e7": i(lat_e7),
                "lon_e7": i(lon_e7),
                "accuracy": i(accuracy),
                "outdoor_prob": f(-1.0 if np.isnan(outdoor_prob) else outdoor_prob),
            }
        )
    ).SerializeToString(deterministic=True)  # sorted map keys: byte-identical reruns


def feature_spec(tf) -> dict:
    """``tf.io.parse_example`` spec of the schema."""
    return {
        "image": tf.io.FixedLenFeature([], tf.string),
        "photo_id": tf.io.FixedLenFeature([], tf.string),
        "user_hash": tf.io.FixedLenFeature([], tf.string),
        "posted_at": tf.io.FixedLenFeature([], tf.int64),
        "lat_e7": tf.io.FixedLenFeature([], tf.int64),
        "lon_e7": tf.io.FixedLenFeature([], tf.int64),
        "accuracy": tf.io.FixedLenFeature([], tf.int64),
        "outdoor_prob": tf.io.FixedLenFeature([], tf.float32),
    }


def tfds_features():
    """The same schema as a tfds FeaturesDict (for dataset_info.json / builder_from_directory)."""
    import tensorflow_datasets as tfds  # Only when writing tfds metadata.

    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
            "photo_id": tfds.features.Text(),
            "user_hash": tfds.features.Text(),
            "posted_at": tfds.features.Scalar(np.int64, doc="posting time, UTC epoch seconds"),
            "lat_e7": tfds.features.Scalar(np.int64, doc="latitude in 1e-7 degrees"),
            "lon_e7": tfds.features.Scalar(np.int64, doc="longitude in 1e-7 degrees"),
            "accuracy": tfds.features.Scalar(np.int64, doc="Flickr accuracy 1-16, -1 unknown"),
            "outdoor_prob": tfds.features.Scalar(np.float32, doc="outdoor probability, -1 unknown"),
        }
    )
