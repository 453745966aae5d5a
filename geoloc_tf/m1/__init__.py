"""M1, the image model (paper §3.1.2, appendix A.1): Inception-v4 over mesh cells.

inception_v4     the network (slim layout and names), ``features_model`` for retrieval
backbones        ``--m1_backbone``: keras.applications networks with the same head
slim_checkpoint  ImageNet initialization from TF-slim's inception_v4.ckpt or Keras weights
export           SavedModel taking JPEG bytes -> top-k cells and lat/lon, and the .keras file
"""

from geoloc_tf.m1.backbones import BACKBONES, build_applications_model, build_m1_model
from geoloc_tf.m1.export import ExportedM1, export_m1, make_serving_fn, save_keras
from geoloc_tf.m1.inception_v4 import (
    FEATURE_DIM,
    FEATURES_LAYER,
    MIN_IMAGE_SIZE,
    InceptionV4Config,
    build_inception_v4,
    features_model,
)
from geoloc_tf.m1.slim_checkpoint import (
    LoadReport,
    initialize_from,
    load_keras_model_weights,
    load_keras_weights_file,
    load_slim_checkpoint,
    save_as_slim_checkpoint,
    slim_name_map,
    write_slim_checkpoint,
)

__all__ = [
    "BACKBONES",
    "FEATURE_DIM",
    "FEATURES_LAYER",
    "MIN_IMAGE_SIZE",
    "ExportedM1",
    "InceptionV4Config",
    "LoadReport",
    "build_applications_model",
    "build_inception_v4",
    "build_m1_model",
    "export_m1",
    "features_model",
    "initialize_from",
    "load_keras_model_weights",
    "load_keras_weights_file",
    "load_slim_checkpoint",
    "make_serving_fn",
    "save_as_slim_checkpoint",
    "save_keras",
    "slim_name_map",
    "write_slim_checkpoint",
]
