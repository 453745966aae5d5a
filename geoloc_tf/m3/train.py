"""Training of M3 (§3.3): one random album per user per epoch, loss weighted by the album mask."""

from __future__ import annotations

from typing import Callable

import keras

from geoloc_tf import errors
from geoloc_tf.fit import EpochLoop, TrainingHistory
from geoloc_tf.m2.model import transfer_weights
from geoloc_tf.m3.config import M3Config
from geoloc_tf.m3.data import AlbumArrays
from geoloc_tf.m3.model import build_m3


def compile_m3(model: keras.Model, learning_rate: float) -> None:
    """Adam on per-photo cross-entropy; accuracy weighted by the mask (real photos only)."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  weighted_metrics=["accuracy"])


def train_m3(draw: Callable[[int], AlbumArrays], val: AlbumArrays, num_cells: int,
             config: M3Config | None = None, m2_model: keras.Model | None = None,
             tensorboard_dir: str | None = None) -> tuple[keras.Model, TrainingHistory]:
    """Train M3; returns the model (best weights) and its history.

    draw: ``draw(epoch)`` gives that epoch's training albums (§3.3: "a user was limited to a single
        random album per epoch"), e.g. ``geoloc_tf.m3.data.training_draws``.
    val: every validation photo once (``geoloc_tf.m3.data.album_arrays`` over all albums).
    m2_model: a trained M2 whose per-photo blocks start M3 when ``config.init_from_m2``.
    """
    config = config or M3Config()
    if config.init_from_m2 and m2_model is None:
        raise errors.ModelConfigError(
            "train_m3: M3Config.init_from_m2 is True but no m2_model was given; pass the trained "
            "M2 or set init_from_m2=False")
    keras.utils.set_random_seed(config.seed)
    model = build_m3(num_cells, config)
    if config.init_from_m2:
        copied = transfer_weights(m2_model, model)
        if config.freeze_m2:  # M2's part as trained: weights and batch-norm statistics fixed
            for name in copied:
                model.get_layer(name).trainable = False
    compile_m3(model, config.learning_rate)
    loop = EpochLoop(model, (val.inputs, val.labels, val.sample_weight), config.batch_size,
                     config.early_stopping_patience, tensorboard_dir,
                     monitor=config.early_stopping_metric)

    if config.init_from_m2 and config.residual_output:  # M3 starts near the trained M2
        loop.score_start()

    def epoch_data(epoch: int):
        albums = draw(epoch)
        return albums.inputs, albums.labels, albums.sample_weight

    loop.run_phase(f"adam{config.learning_rate:g}", config.learning_rate, config.max_epochs,
                   epoch_data)
    return model, loop.finish()
