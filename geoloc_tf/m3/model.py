"""M3 as a functional Keras model (paper §3.3, Figure 3).

    per photo of a 24-photo album: M2's input layer and hidden blocks (Table 2 rows 1-4)
    -> Bidirectional LSTM over the album, in posting-time order ("capitalizes on correlations in a
       single user's images", §3.3)
    -> softmax over the N cells for every photo

Figure 3: "M3 (Time-Albums) is properly described as M2 concatenated with M3 layers", so the
per-photo part is M2's very layers (same names: they can start from a trained M2).

Masking (§3.3: "albums are 0 padded and masking is utilized") is explicit: the "mask" input goes to
every batch normalization (padded photos stay out of the batch statistics) and to the LSTM (padded
steps leave its state unchanged), and training weights the loss by the mask. A padded position
therefore changes neither the outputs at real positions nor the loss; the tests check both.
"""

from __future__ import annotations

import keras

from geoloc_tf.m2.model import hidden_blocks, input_layer, model_inputs
from geoloc_tf.m3.config import M3Config
from geoloc_tf.m3.data import MASK


def build_m3(num_cells: int, config: M3Config | None = None, input_form: str = "top_k",
             name: str = "m3") -> keras.Model:
    """The M3 model for ``num_cells`` cells, uncompiled.

    Inputs (a dict): M2's inputs with an album axis, (album_size, ...) each, and "mask"
    (album_size,) bool. Output: (album_size, N) softmax per photo.
    """
    config = config or M3Config()
    inputs = model_inputs(num_cells, config.m2, input_form, album_size=config.album_size)
    mask = keras.Input((config.album_size,), dtype="bool", name=MASK)
    x = hidden_blocks(input_layer(inputs, num_cells, config.m2), config.m2, mask=mask)
    x = keras.layers.Bidirectional(
        keras.layers.LSTM(config.lstm_units, return_sequences=True), name="m3_bilstm")(x, mask=mask)
    outputs = keras.layers.Dense(num_cells, activation="softmax", kernel_initializer="he_normal",
                                 name="m3_output")(x)
    return keras.Model({**inputs, MASK: mask}, outputs, name=name)
