"""Batch normalization's inference statistics recomputed with the current weights ("precise BN").

Beyond the paper. At inference a batch-norm layer normalizes with its moving mean and variance, an
exponential average (decay ``M1Config.batch_norm_decay``) of the batch statistics seen during
training. Those were measured on the weights of earlier steps, so after a short run, or after a
large step, they no longer match what the final weights produce. On the demo this made M1's
validation accuracy swing from epoch to epoch on the same weights (4.4, 9.2, 4.2, 5.1 % at 200 km
on a smoothly falling loss), mostly through the first layer, whose moving mean sat 0.17 standard
deviations off; recomputing the statistics lifted the final M1 from 5.1 % to 15.3 % (BUILD.md, "Why
the demo's M1 barely learns"). Wu and Johnson (2021, "Rethinking 'Batch' in BatchNorm", §3)
recommend exactly this: estimate the population statistics with the fixed final weights over many
batches ("PreciseBN"), instead of trusting the moving average.

How (``recalibrate``): every batch-norm layer's momentum is set to 0 while the model runs in training
mode through Keras' stateless API, which returns each layer's batch mean and variance as its new
moving statistics without writing any variable. Each layer's input is then normalized with the
batch's own statistics, exactly as in training, so a layer's statistics do not depend on the
statistics being estimated upstream. Over the batches the pass accumulates, per channel, the mean
and the mean of ``variance + mean**2``; the population variance is the second minus the square of
the first. With equal batches this is the exact mean and variance over every position of every
photo seen, which averaging per-batch variances is not (it leaves out the spread of the batch
means). The momenta are restored and the results written into the moving statistics once, at the
end; nothing is trained.

Which photos: the caller passes batches of M1 training photos preprocessed as at inference (the
central crop, ``InputConfig(training=False)``), a fixed random subset drawn once: the statistics are
those of the input inference sees, measured on photos the model may learn from (never on the
validation or test photos).
"""

from __future__ import annotations

import weakref
from typing import Callable, Iterable

import keras
import numpy as np

#: The compiled statistics pass of each model (``_statistics_fn``), built once per model.
_COMPILED: "weakref.WeakKeyDictionary[keras.Model, tuple[tuple[int, ...], Callable]]" = (
    weakref.WeakKeyDictionary()
)


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every ``keras.layers.BatchNormalization`` of ``model``, nested models included, each once."""
    found: dict[int, keras.layers.BatchNormalization] = {}
    stack = list(model.layers)
    while stack:
        layer = stack.pop(0)
        if isinstance(layer, keras.layers.BatchNormalization):
            found.setdefault(id(layer), layer)
        stack.extend(getattr(layer, "layers", []))
    return list(found.values())


def recalibrate(model: keras.Model, batches: Iterable[np.ndarray]) -> int:
    """Sets the moving mean and variance of every batch-norm layer of ``model`` to the population
    statistics of the images in ``batches`` (module docstring). Returns the images seen; with no
    image, or no batch-norm layer, nothing changes."""
    layers = [layer for layer in batch_norm_layers(model) if layer.trainable]
    if not layers:
        return 0
    positions = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
    where = [(positions[id(layer.moving_mean)], positions[id(layer.moving_variance)]) for layer in layers]
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    wanted = [i for pair in where for i in pair]
    momenta = [layer.momentum for layer in layers]
    sums = [np.zeros((2,) + tuple(layer.moving_mean.shape), np.float64) for layer in layers]
    seen = 0
    try:
        for layer in layers:
            layer.momentum = 0.0
        statistics = _statistics_fn(model, tuple(wanted))
        for images in batches:
            n = int(np.shape(images)[0])
            if n == 0:
                continue
            values = [
                np.asarray(keras.ops.convert_to_numpy(x), np.float64)
                for x in statistics(trainable, non_trainable, images)
            ]
            for k, total in enumerate(sums):
                mean, variance = values[2 * k], values[2 * k + 1]
                total[0] += n * mean
                total[1] += n * (variance + mean**2)
            seen += n
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    if seen == 0:
        return 0
    for layer, total in zip(layers, sums):
        mean = total[0] / seen
        variance = np.maximum(total[1] / seen - mean**2, 0.0)
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
    return seen


def _statistics_fn(model: keras.Model, wanted: tuple[int, ...]) -> Callable:
    """(trainable values, non-trainable values, images) -> the batch statistics at positions
    ``wanted`` of the non-trainable variables: one compiled forward pass in training mode
    (``tf.function`` or ``jax.jit``), traced with every batch-norm momentum at 0. Kept per model,
    so the pass is compiled once per training run, not once per epoch."""
    cached = _COMPILED.get(model)
    if cached is not None and cached[0] == wanted:
        return cached[1]

    def statistics(trainable, non_trainable, images):
        _, updated = model.stateless_call(trainable, non_trainable, images, training=True)
        return [updated[i] for i in wanted]

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(statistics, reduce_retracing=True)
    elif backend == "jax":
        import jax

        compiled = jax.jit(statistics)
    else:
        compiled = statistics
    _COMPILED[model] = (wanted, compiled)
    return compiled
