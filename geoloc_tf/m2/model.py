"""M2 as a functional Keras model (paper §3.2, Table 2, Figure 3).

    [operator (1) on P_i (N + 1), T_i (3)]          Table 2 row 1: "Input, N+4"
    -> Dense 542*3, sigmoid  + batch norm + 50 % dropout          row 2
    -> Dense 542*3, ReLU     + batch norm + 50 % dropout          row 3
    -> Dense 542*3, sigmoid  + batch norm + 50 % dropout          row 4
    -> Dense N, softmax                                           row 5

Each hidden block is Dense (linear, He initialization as appendix A.2) -> BatchNormalization ->
activation -> Dropout: batch normalization goes before the nonlinearity as in Ioffe & Szegedy (2015),
which is where it keeps sigmoid units out of saturation; Table 2 does not give the order.

The per-photo blocks are built by ``hidden_blocks`` under fixed layer names so that M3 (Figure 3:
"M2 concatenated with M3 layers") applies the very same blocks per album photo and can start from a
trained M2's weights (``transfer_weights``).

Two input forms share every weight: "top_k" takes M1's stored top-k cell ids and probabilities (what
training reads; memory-safe), "dense" takes M1's full probability vector (what a serving signature fed
by M1 directly gives). Operator (1) makes them equivalent.
"""

from __future__ import annotations

from typing import Any

import keras

from geoloc_tf import errors
from geoloc_tf.layers import DensifyTopK, SparseLogPrior, TopKSparsifyNormalize
from geoloc_tf.m2.config import M2Config
from geoloc_tf.m2.data import CELL_IDS, CELL_PROBS, OUTDOOR, TIME
from geoloc_tf.time_features import NUM_TIME_FEATURES

#: Activations of Table 2's hidden rows 2-4.
HIDDEN_ACTIVATIONS: tuple[str, ...] = ("sigmoid", "relu", "sigmoid")
#: Name of M1's dense probability input in the "dense" form.
PROBS = "probs"
INPUT_FORMS: tuple[str, ...] = ("top_k", "dense")
#: Layer-name prefix of the per-photo part shared by M2 and M3.
PREFIX = "m2_"


def input_width(num_cells: int, config: M2Config) -> int:
    """Width of M2's input layer: N + 1 + 3 = N + 4 (Table 2 row 1), + 1 per extra input."""
    return num_cells + 1 + NUM_TIME_FEATURES + len(config.extra_inputs)


def model_inputs(
    num_cells: int, config: M2Config, input_form: str = "top_k", album_size: int | None = None
) -> dict[str, keras.KerasTensor]:
    """Keras inputs of M2 (per photo) or of M3 (``album_size`` photos per example)."""
    if input_form not in INPUT_FORMS:
        raise errors.ModelConfigError(f"input_form={input_form!r}: expected one of {INPUT_FORMS}")
    lead = () if album_size is None else (album_size,)
    if input_form == "top_k":
        inputs = {
            CELL_IDS: keras.Input(lead + (config.top_k,), dtype="int32", name=CELL_IDS),
            CELL_PROBS: keras.Input(lead + (config.top_k,), name=CELL_PROBS),
        }
    else:
        inputs = {PROBS: keras.Input(lead + (num_cells,), name=PROBS)}
    inputs[TIME] = keras.Input(lead + (NUM_TIME_FEATURES,), name=TIME)
    if OUTDOOR in config.extra_inputs:
        inputs[OUTDOOR] = keras.Input(lead + (1,), name=OUTDOOR)
    return inputs


def input_layer(inputs: dict[str, Any], num_cells: int, config: M2Config) -> tuple[Any, Any]:
    """Table 2 row 1: [operator (1) on P_i, |p0|, T_i (, outdoor)], width N + 4 (+ extras).

    Returns (that input, operator (1)'s (N + 1) output alone, for ``output_logits``)."""
    if CELL_IDS in inputs:
        probs = DensifyTopK(num_cells, name=PREFIX + "densify")([inputs[CELL_IDS], inputs[CELL_PROBS]])
    else:
        probs = inputs[PROBS]
    sparse = TopKSparsifyNormalize(config.top_k, name=PREFIX + "top_k")(probs)
    parts = [sparse, inputs[TIME]]
    if OUTDOOR in inputs:
        parts.append(inputs[OUTDOOR])
    x = keras.layers.Concatenate(name=PREFIX + "input")(parts)
    if config.input_activation is not None:
        x = keras.layers.Activation(config.input_activation, name=PREFIX + "input_activation")(x)
    return x, sparse


def hidden_blocks(x: Any, config: M2Config, mask: Any = None) -> Any:
    """Table 2 rows 2-4. ``mask`` (M3's album mask) keeps padded photos out of batch statistics."""
    for i, activation in enumerate(HIDDEN_ACTIVATIONS, start=1):
        x = keras.layers.Dense(
            config.hidden_units, kernel_initializer="he_normal", name=f"{PREFIX}block{i}_dense"
        )(x)
        x = keras.layers.BatchNormalization(name=f"{PREFIX}block{i}_bn")(x, mask=mask)
        x = keras.layers.Activation(activation, name=f"{PREFIX}block{i}_{activation}")(x)
        x = keras.layers.Dropout(config.dropout, name=f"{PREFIX}block{i}_dropout")(x)
    return x


def build_m2(
    num_cells: int, config: M2Config | None = None, input_form: str = "top_k", name: str = "m2"
) -> keras.Model:
    """The M2 model of Table 2 for ``num_cells`` cells (N = 538 coarse, 6565 fine), uncompiled.

    Inputs (a dict): "cell_ids" (k,) int32 + "cell_probs" (k,) in the "top_k" form, or "probs" (N,)
    in the "dense" form; "time" (3,) from ``geoloc_tf.time_features``; "outdoor" (1,) if configured.
    Output: softmax over the N cells.
    """
    config = config or M2Config()
    if num_cells < config.top_k:
        raise errors.ModelConfigError(
            f"build_m2: num_cells={num_cells}, expected at least top_k={config.top_k}"
        )
    inputs = model_inputs(num_cells, config, input_form)
    x, sparse = input_layer(inputs, num_cells, config)
    logits = output_logits(hidden_blocks(x, config), sparse, num_cells, config)
    outputs = keras.layers.Activation("softmax", dtype="float32", name=PREFIX + "softmax")(logits)
    return keras.Model(inputs, outputs, name=name)


def output_logits(hidden: Any, sparse: Any, num_cells: int, config: M2Config) -> Any:
    """Table 2 row 5 before its softmax: Dense N on the last hidden block, plus M1's log top-k
    probabilities when ``config.m1_prior`` (then the Dense starts at zero, so M2 starts as M1's
    renormalized top-k). Shared with M3, whose per-photo part is M2's."""
    logits = keras.layers.Dense(
        num_cells, name=PREFIX + "output", kernel_initializer="zeros" if config.m1_prior else "he_normal"
    )(hidden)
    if config.m1_prior:
        prior = SparseLogPrior(config.top_k, name=PREFIX + "m1_prior")(sparse)
        logits = keras.layers.Add(name=PREFIX + "logits")([logits, prior])
    return logits


def transfer_weights(
    source: keras.Model, target: keras.Model, prefix: str = PREFIX, skip: tuple[str, ...] = ()
) -> list[str]:
    """Copy the weights of every layer named ``prefix*`` present in both models; returns the names.

    Used to start M3's per-photo blocks from a trained M2, and to move a trained M2 between its
    "top_k" and "dense" input forms. Raises ``CheckpointError`` on a shape mismatch.
    """
    target_layers = {layer.name: layer for layer in target.layers}
    copied = []
    for layer in source.layers:
        if not layer.name.startswith(prefix) or layer.name in skip:
            continue
        other = target_layers.get(layer.name)
        if other is None or not layer.weights:
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        other_shapes = [tuple(w.shape) for w in other.weights]
        if shapes != other_shapes:
            raise errors.CheckpointError(
                f"transfer_weights: layer {layer.name} has weights {shapes} in {source.name} but "
                f"{other_shapes} in {target.name}"
            )
        other.set_weights(layer.get_weights())
        copied.append(layer.name)
    return copied
