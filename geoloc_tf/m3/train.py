"""Training of M3 (§3.3): one random album per user per epoch, loss weighted by the album mask."""

from __future__ import annotations

from typing import Callable

import keras

from geoloc_tf import errors
from geoloc_tf.epoch_loop import EpochLoop, TrainingHistory, compile_model
from geoloc_tf.m2.config import M2Config
from geoloc_tf.m2.model import transfer_weights
from geoloc_tf.m3.config import M3Config
from geoloc_tf.m3.data import AlbumArrays
from geoloc_tf.m3.model import build_m3


def train_m3(
    draw: Callable[[int], AlbumArrays],
    val: AlbumArrays,
    num_cells: int,
    config: M3Config,
    m2_config: M2Config,
    *,
    seed: int,
    m2_model: keras.Model | None = None,
    tensorboard_dir: str | None = None,
) -> tuple[keras.Model, TrainingHistory]:
    """Train M3; returns the model (best weights) and its history.

    draw: ``draw(epoch)`` gives that epoch's training albums (§3.3: "a user was limited to a single
        random album per epoch"), e.g. ``geoloc_tf.m3.data.training_draws``.
    val: every validation photo once (``geoloc_tf.m3.data.album_arrays`` over all albums).
    m2_config: the M2 whose per-photo part M3 repeats (that of ``m2_model``).
    seed: the run's one seed (weights, dropout, shuffling).
    m2_model: a trained M2 whose per-photo blocks start M3 when ``config.init_from_m2``.
    """
    if config.init_from_m2 and m2_model is None:
        raise errors.ModelConfigError(
            "train_m3: M3Config.init_from_m2 is True but no m2_model was given; pass the trained "
            "M2 or set init_from_m2=False"
        )
    keras.utils.set_random_seed(seed)
    model = build_m3(num_cells, config, m2_config)
    if config.init_from_m2:
        copied = transfer_weights(m2_model, model)
        if config.freeze_m2:  # M2's part as trained: weights and batch-norm statistics fixed
            for name in copied:
                model.get_layer(name).trainable = False
    compile_model(model, config.learning_rate, masked=True)
    loop = EpochLoop(
        model,
        (val.inputs, val.labels, val.sample_weight),
        config.batch_size,
        config.early_stopping_patience,
        tensorboard_dir,
        monitor=config.early_stopping_metric,
    )

    if config.init_from_m2 and config.residual_output:  # M3 starts near the trained M2
        loop.score_start()

    def epoch_data(epoch: int):
        albums = draw(epoch)
        return albums.inputs, albums.labels, albums.sample_weight

    loop.run_phase(f"adam{config.learning_rate:g}", config.learning_rate, config.max_epochs, epoch_data)
    return model, loop.finish()
