"""Where M1's training augmentation runs, and its accelerator half inside the train step.

``augment_on="device"``: the input pipeline only decodes each random crop and packs a batch's crops
into one flat uint8 buffer (``data_pipelines.device_augment``); the train step resizes, flips,
jitters and scales them on the accelerator before the forward pass. ``"host"``: the input pipeline
does all of it and yields float32 images. ``"auto"``: device when the strategy trains on GPUs or
TPUs; host on CPUs, where the resize costs the same CPU either way and the host form needs no
unpacking step.

The packed buffer's length differs from batch to batch and from replica to replica, so the
training loop (``geoloc_tf.m1.training``) feeds it to ``strategy.run`` itself and calls
``images_for_model`` first thing in each replica's step; m1.keras and the exports hold M1 alone.
"""

from __future__ import annotations

import tensorflow as tf

from data_pipelines.config import InputConfig
from data_pipelines.device_augment import device_augment


def augments_on_device(augment_on: str, strategy: tf.distribute.Strategy) -> bool:
    """``augment_on`` (auto, device or host: ``M1Config.augment_on``) resolved for ``strategy``."""
    if augment_on != "auto":
        return augment_on == "device"
    try:
        devices = strategy.extended.worker_devices
    except (RuntimeError, NotImplementedError):  # the default strategy: TensorFlow's placement
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    return any(tf.DeviceSpec.from_string(d).device_type in ("GPU", "TPU") for d in devices)


def images_for_model(features, input_config: InputConfig):
    """The model's float32 images from a training batch's features: the accelerator's half of
    augmentation for packed crops (``input_config.augment_on_device``), else the images as
    they are."""
    if input_config.augment_on_device:
        return device_augment(features, input_config)
    return features
