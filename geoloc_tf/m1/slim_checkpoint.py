"""Pretrained initialization of M1: TF-slim's ImageNet Inception-v4 checkpoint, or Keras weights.

The paper trains M1 starting "pre-trained on ImageNet" (appendix A.1). The published weights are
TF-slim's ``inception_v4.ckpt`` (inception_v4_2016_09_09), whose variables are named after slim's
scopes, e.g. ``InceptionV4/Mixed_5b/Branch_0/Conv2d_0a_1x1/weights`` and ``.../BatchNorm/beta``,
``moving_mean``, ``moving_variance`` (slim's batch norm has no gamma). ``inception_v4.py`` names
its layers after the same scopes, so the mapping is mechanical:

    Keras layer ``Mixed_5b.Branch_0.Conv2d_0a_1x1``            variable ``kernel``
      <-> ``InceptionV4/Mixed_5b/Branch_0/Conv2d_0a_1x1/weights``
    Keras layer ``Mixed_5b.Branch_0.Conv2d_0a_1x1.BatchNorm``  variable ``beta`` (``moving_*``)
      <-> ``InceptionV4/Mixed_5b/Branch_0/Conv2d_0a_1x1/BatchNorm/beta`` (``moving_*``)
    Keras layer ``Logits.Logits``                              variables ``kernel``, ``bias``
      <-> ``InceptionV4/Logits/Logits/weights``, ``.../biases``

Slim stores conv kernels as (height, width, in, out) and dense kernels as (in, out), as Keras does,
so values are copied unchanged. The logits (``InceptionV4/Logits/``) and the auxiliary head
(``InceptionV4/AuxLogits/``) are skipped by default: M1's softmax is over mesh cells, not the 1001
ImageNet classes. Every Keras variable left at its initial value is listed in the returned
``LoadReport`` and logged; any shape mismatch is a ``CheckpointError`` raised before anything is
assigned, so a failed load never leaves a half-loaded model.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from geoloc_tf import errors
from geoloc_tf.saving import load_keras

LOG = logging.getLogger(__name__)

#: Variable scope of slim's ``inception_v4``.
SLIM_SCOPE = "InceptionV4"
#: Checkpoint prefixes skipped by default: ImageNet classifiers M1 does not use.
SLIM_HEAD_PREFIXES = (f"{SLIM_SCOPE}/Logits/", f"{SLIM_SCOPE}/AuxLogits/")
#: Keras variable name -> slim variable name (last path component).
_SLIM_VARIABLE_NAMES = {
    "kernel": "weights",
    "bias": "biases",
    "beta": "beta",
    "gamma": "gamma",
    "moving_mean": "moving_mean",
    "moving_variance": "moving_variance",
}


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What an initialization did.

    Attributes:
      source: the checkpoint or weights file read.
      loaded: (Keras variable, source variable) pairs whose values were copied.
      not_loaded: Keras variables left as initialized (e.g. the cell logits), as ``layer/variable``.
      skipped: source variables left out on purpose (the ImageNet logits and auxiliary head).
      unused: other source variables that match no Keras variable (e.g. ``global_step``).
    """

    source: str
    loaded: tuple[tuple[str, str], ...]
    not_loaded: tuple[str, ...]
    skipped: tuple[str, ...]
    unused: tuple[str, ...]


def keras_variable_name(layer: keras.layers.Layer, variable: keras.Variable) -> str:
    """``layer/variable``: a Keras variable's name independent of where the model is nested."""
    return f"{layer.name}/{variable.name}"


def slim_variable_name(layer_name: str, variable_name: str, scope: str = SLIM_SCOPE) -> str:
    """Slim checkpoint name of a Keras variable of ``inception_v4.py`` (module docstring)."""
    leaf = _SLIM_VARIABLE_NAMES.get(variable_name, variable_name)
    return f"{scope}/{layer_name.replace('.', '/')}/{leaf}"


def _named_variables(model: keras.Model):
    """(layer, variable) for every variable of ``model``, in layer order, each once."""
    seen = set()
    for layer in model.layers:
        for variable in layer.weights:
            if id(variable) not in seen:
                seen.add(id(variable))
                yield layer, variable


def slim_name_map(model: keras.Model, scope: str = SLIM_SCOPE) -> dict[str, keras.Variable]:
    """Slim checkpoint name -> Keras variable, for every variable of an Inception-v4 model."""
    return {
        slim_variable_name(layer.name, variable.name, scope): variable
        for layer, variable in _named_variables(model)
    }


def _assign_checked(pairs, source: str) -> None:
    """Checks every shape, then assigns; ``pairs`` are (variable, value, source name, keras name)."""
    for variable, value, source_name, keras_name in pairs:
        if tuple(value.shape) != tuple(variable.shape):
            raise errors.CheckpointError(
                f"{source}: variable {source_name!r} has shape {tuple(value.shape)} but the model's "
                f"{keras_name!r} has shape {tuple(variable.shape)}; expected equal shapes (is the "
                "width multiplier, block count or number of cells the same?)"
            )
    for variable, value, _, _ in pairs:
        variable.assign(np.asarray(value).astype(variable.dtype))


def _log_report(report: LoadReport) -> None:
    LOG.info("initialized %d variables from %s", len(report.loaded), report.source)
    if report.not_loaded:
        LOG.warning(
            "%d variables not loaded from %s (left as initialized): %s",
            len(report.not_loaded),
            report.source,
            ", ".join(report.not_loaded),
        )
    if report.unused:
        LOG.warning(
            "%d variables of %s match nothing in the model: %s",
            len(report.unused),
            report.source,
            ", ".join(report.unused),
        )


def load_slim_checkpoint(
    model: keras.Model,
    checkpoint: str,
    *,
    scope: str = SLIM_SCOPE,
    skip_prefixes: tuple[str, ...] = SLIM_HEAD_PREFIXES,
) -> LoadReport:
    """Copies a TF-slim Inception-v4 checkpoint into ``model`` by name (appendix A.1: ImageNet init).

    Args:
      model: from ``inception_v4.build_inception_v4`` (any width/blocks matching the checkpoint).
      checkpoint: checkpoint prefix (``.../inception_v4.ckpt``) or a directory holding one.
      scope: the slim variable scope, ``InceptionV4``.
      skip_prefixes: checkpoint names starting with one of these are not loaded; pass ``()`` to
        load the 1001-class ImageNet logits too (into a model with ``num_cells=1001``).

    Returns:
      The ``LoadReport``; its ``not_loaded`` lists (and the log shows) every Keras variable that kept
      its initial value.

    Raises:
      CheckpointError: the checkpoint cannot be read, or a variable's shape differs (message names
        the variable and both shapes); nothing is assigned then.
    """
    try:
        reader = tf.train.load_checkpoint(checkpoint)
    except (ValueError, tf.errors.OpError) as error:
        raise errors.CheckpointError(
            f"{checkpoint}: cannot read a TensorFlow checkpoint ({error}); expected the prefix of "
            "inception_v4.ckpt (with its .index file) or a directory holding a checkpoint"
        ) from error
    shapes = reader.get_variable_to_shape_map()
    by_slim_name = slim_name_map(model, scope)
    keras_names = {id(v): keras_variable_name(layer, v) for layer, v in _named_variables(model)}
    skipped = sorted(n for n in shapes if any(n.startswith(p) for p in skip_prefixes))
    pairs, loaded = [], []
    for slim_name, variable in by_slim_name.items():
        if slim_name not in shapes or slim_name in skipped:
            continue
        value = reader.get_tensor(slim_name)
        pairs.append((variable, value, slim_name, keras_names[id(variable)]))
        loaded.append((keras_names[id(variable)], slim_name))
    _assign_checked(pairs, checkpoint)
    used = {slim_name for _, slim_name in loaded}
    report = LoadReport(
        source=checkpoint,
        loaded=tuple(loaded),
        not_loaded=tuple(keras_names[id(v)] for n, v in by_slim_name.items() if n not in used),
        skipped=tuple(skipped),
        unused=tuple(sorted(n for n in shapes if n not in used and n not in skipped)),
    )
    _log_report(report)
    return report


def load_keras_model_weights(
    model: keras.Model, path: str, *, skip_layers: tuple[str, ...] = ()
) -> LoadReport:
    """Copies weights from a saved ``.keras`` model into ``model``, matching ``layer/variable`` names.

    Used to start a training cycle from the previous cycle's model (appendix A.1: "previous weights
    loaded and the model re-trained"), or from any M1 the user has. Layers named in ``skip_layers``
    (e.g. ``("Logits.Logits",)`` when the number of cells differs) are not loaded.
    """
    if not os.path.exists(path):
        raise errors.CheckpointError(f"{path}: no such file; expected a .keras model file")
    try:
        source = load_keras(path)
    except errors.ExportError as error:
        raise errors.CheckpointError(str(error)) from None
    available = {keras_variable_name(layer, v): v for layer, v in _named_variables(source)}
    pairs, loaded, not_loaded = [], [], []
    for layer, variable in _named_variables(model):
        name = keras_variable_name(layer, variable)
        if layer.name in skip_layers or name not in available:
            not_loaded.append(name)
            continue
        pairs.append((variable, available[name].numpy(), name, name))
        loaded.append((name, name))
    _assign_checked(pairs, path)
    used = {name for name, _ in loaded}
    report = LoadReport(
        source=path,
        loaded=tuple(loaded),
        not_loaded=tuple(not_loaded),
        skipped=tuple(n for n in available if n.split("/")[0] in skip_layers),
        unused=tuple(n for n in available if n not in used and n.split("/")[0] not in skip_layers),
    )
    _log_report(report)
    return report


def load_keras_weights_file(model: keras.Model, path: str) -> LoadReport:
    """Loads a ``.weights.h5`` file saved from the same architecture (every variable must match)."""
    if not os.path.exists(path):
        raise errors.CheckpointError(f"{path}: no such file; expected a .weights.h5 file")
    try:
        model.load_weights(path)
    except (ValueError, OSError, KeyError) as error:
        raise errors.CheckpointError(
            f"{path}: cannot load into model {model.name!r} ({error}); a .weights.h5 file must come "
            "from the same architecture, width and number of cells; use a .keras file to load by "
            "name"
        ) from error
    names = [keras_variable_name(layer, v) for layer, v in _named_variables(model)]
    report = LoadReport(
        source=path, loaded=tuple((n, n) for n in names), not_loaded=(), skipped=(), unused=()
    )
    _log_report(report)
    return report


def initialize_from(model: keras.Model, path: str, *, skip_logits: bool = True) -> LoadReport:
    """``--m1_init_checkpoint``: dispatches on the file kind.

    ``*.keras`` -> ``load_keras_model_weights``; ``*.weights.h5`` -> ``load_keras_weights_file``;
    anything else is read as a TF-slim checkpoint (``load_slim_checkpoint``). ``skip_logits``
    leaves the classifier (``Logits.Logits``) as initialized, for a different set of cells.
    """
    if path.endswith(".keras"):
        return load_keras_model_weights(model, path, skip_layers=("Logits.Logits",) if skip_logits else ())
    if path.endswith(".weights.h5"):
        return load_keras_weights_file(model, path)
    return load_slim_checkpoint(model, path, skip_prefixes=SLIM_HEAD_PREFIXES if skip_logits else ())


def write_slim_checkpoint(prefix: str, tensors: dict[str, np.ndarray]) -> str:
    """Writes ``tensors`` as a TF checkpoint with exactly these variable names; returns the prefix.

    ``tf.train.Checkpoint`` names variables by object path, so it cannot write slim's names; the
    ``SaveV2`` op writes any names. Used by the tests (a synthetic slim checkpoint) and by
    ``save_as_slim_checkpoint`` (hand an M1 backbone to slim-based tools).
    """
    names = sorted(tensors)
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.convert_to_tensor(tensors[n]) for n in names],
    )
    return prefix


def save_as_slim_checkpoint(model: keras.Model, prefix: str, scope: str = SLIM_SCOPE) -> str:
    """Writes an Inception-v4 model's variables under their slim names (the inverse of loading)."""
    return write_slim_checkpoint(
        prefix, {name: np.asarray(v.numpy()) for name, v in slim_name_map(model, scope).items()}
    )
