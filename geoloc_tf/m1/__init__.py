"""M1, the image model (paper §3.1.2, appendix A.1): Inception-v4 over mesh cells.

config           ``M1Config``: the network's and appendix A.1's settings (imports no TensorFlow)
inception_v4     the network (slim layout and names), ``features_model`` for retrieval
backbones        ``--m1_backbone``: keras.applications networks with the same head
partitions       one softmax head per extra, coarser mesh partition (``--mesh_partition_factors``)
targets          haversine label smoothing of the training target over the mesh (PIGEON)
slim_checkpoint  ImageNet initialization from TF-slim's inception_v4.ckpt or Keras weights
training         ``train_m1``: appendix A.1's phases as a tf.distribute training loop
checkpoints      the training state on disk, so a killed run resumes at the step it stopped at
device_augment   where training augmentation runs, and its accelerator half in the train step
batch_norm       batch normalization's inference statistics recomputed with the final weights
validation       km accuracy on a fixed validation subset after every epoch
predict_records  top-k cells of every photo of a data set, written as tables
export           SavedModel taking JPEG bytes -> top-k cells and lat/lon, and the .keras file
portable         M1 as a LiteRT (.tflite) and an ONNX (.onnx) file, and their loaders
export_check     how closely the LiteRT and ONNX files match the SavedModel, measured on photos

The names below are importable from the package itself; each loads its module on first use, so
that ``geoloc_tf.m1.config`` stays light and ``inception_v4`` (Keras only) loads on any Keras
backend without TensorFlow; the modules that need TensorFlow load it when first used.
"""

import importlib

_EXPORTS = {
    "BACKBONES": "config",
    "build_applications_model": "backbones",
    "build_m1_model": "backbones",
    "ExportedM1": "export",
    "export_m1": "export",
    "make_serving_fn": "export",
    "save_keras": "export",
    "FEATURE_DIM": "inception_v4",
    "FEATURES_LAYER": "inception_v4",
    "MIN_IMAGE_SIZE": "inception_v4",
    "InceptionV4Config": "inception_v4",
    "build_inception_v4": "inception_v4",
    "features_model": "inception_v4",
    "LoadReport": "slim_checkpoint",
    "initialize_from": "slim_checkpoint",
    "load_keras_model_weights": "slim_checkpoint",
    "load_keras_weights_file": "slim_checkpoint",
    "load_slim_checkpoint": "slim_checkpoint",
    "save_as_slim_checkpoint": "slim_checkpoint",
    "slim_name_map": "slim_checkpoint",
    "write_slim_checkpoint": "slim_checkpoint",
    "M1Config": "config",
    "M1TrainResult": "training",
    "train_m1": "training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
