"""M3 as a functional Keras model (paper §3.3, Figure 3).

    per photo of a 24-photo album: M2's input layer and hidden blocks (Table 2 rows 1-4)
    -> Bidirectional LSTM over the album, in posting-time order ("capitalizes on correlations in a
       single user's images", §3.3)
    -> softmax over the N cells for every photo

Figure 3: "M3 (Time-Albums) is properly described as M2 concatenated with M3 layers", so the
per-photo part is M2's very layers (same names: they can start from a trained M2).

Output (``M3Config.residual_output``, our reading of Figure 3): M2's own output layer, kept as logits,
plus a correction computed from the LSTM state by a dense layer, through one softmax:

    p = softmax(W_m2 h + b_m2 + W_m3 BiLSTM(h) + b_m3),   W_m3 small, b_m3 = 0 at the start.

Started from a trained M2 (``init_from_m2``), M3 therefore begins within a small perturbation of M2
on every photo (``CORRECTION_INIT``: variance 0.1 / fan-in, about 0.15 logits whatever the LSTM's
width) and learns what the album adds. W_m3 = 0 would start M3 at exactly M2, but measured on the
synthetic world of tests/geoloc_tf/test_m2_m3_synthetic.py it learned far less before early
stopping (M3 0.58 with zeros, 0.76 with this initialization, M2 0.57): at zero the LSTM gets no
gradient until W_m3 has moved. Figure 3 puts "M3 layers" after M2 and does not say whether M2's
output layer survives; a fresh softmax on the LSTM alone (``residual_output=False``) throws away the
trained M2's mapping onto the N cells and must relearn it from the M2/M3 training split, which on a
small training set leaves M3 far below M2.

``M3Config.album_evidence`` (beyond the paper) adds ``alpha * log(mean softmax over the album)``
to those logits (``geoloc_tf.layers.AlbumEvidence``, alpha learned from 1): the album's pooled
evidence reaches every photo directly, which the demo's LSTM alone did not learn to pass on.

Masking (§3.3: "albums are 0 padded and masking is utilized") is explicit: the "mask" input goes to
every batch normalization (padded photos stay out of the batch statistics) and to the LSTM (padded
steps leave its state unchanged), and training weights the loss by the mask. A padded position
therefore changes neither the outputs at real positions nor the loss; the tests check both.
"""

from __future__ import annotations

import keras

from geoloc_tf.layers import AlbumEvidence
from geoloc_tf.m2.config import M2Config
from geoloc_tf.m2.model import hidden_blocks, input_layer, model_inputs, output_logits
from geoloc_tf.m3.config import M3Config
from geoloc_tf.m3.data import MASK

#: Initialization of the residual output's correction (module docstring): small, not zero.
CORRECTION_INIT = keras.initializers.VarianceScaling(
    scale=0.1, mode="fan_in", distribution="truncated_normal"
)


def build_m3(
    num_cells: int, config: M3Config, m2_config: M2Config, input_form: str = "top_k", name: str = "m3"
) -> keras.Model:
    """The M3 model for ``num_cells`` cells, uncompiled; its per-photo part is ``m2_config``'s M2.

    Inputs (a dict): M2's inputs with an album axis, (album_size, ...) each, and "mask"
    (album_size,) bool. Output: (album_size, N) softmax per photo.
    """
    inputs = model_inputs(num_cells, m2_config, input_form, album_size=config.album_size)
    mask = keras.Input((config.album_size,), dtype="bool", name=MASK)
    x, sparse = input_layer(inputs, num_cells, m2_config)
    photo = hidden_blocks(x, m2_config, mask=mask)
    album = keras.layers.Bidirectional(
        keras.layers.LSTM(config.lstm_units, return_sequences=True), name="m3_bilstm"
    )(photo, mask=mask)
    if not config.residual_output:
        outputs = keras.layers.Dense(
            num_cells, activation="softmax", kernel_initializer="he_normal", name="m3_output"
        )(album)
        return keras.Model({**inputs, MASK: mask}, outputs, name=name)
    # M2's output layer under its M2 name (so ``transfer_weights`` copies it), as logits, with
    # M1's log top-k when M2 has it (``M2Config.m1_prior``).
    m2_logits = output_logits(photo, sparse, num_cells, m2_config)
    correction = keras.layers.Dense(num_cells, name="m3_output", kernel_initializer=CORRECTION_INIT)(album)
    logits = keras.layers.Add(name="m3_logits")([m2_logits, correction])
    if config.album_evidence:
        logits = AlbumEvidence(name="m3_album_evidence")(logits, album_mask=mask)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="m3_softmax")(logits)
    return keras.Model({**inputs, MASK: mask}, outputs, name=name)
