"""Training of M2 (appendix A.2): He initialization, SAMME warm-up, Adam 0.005 then 0.001.

Trained only on the M2/M3 split, photos M1 never saw (appendix A, Figure 3), which the caller picks.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np

from geoloc_tf import errors
from geoloc_tf.chunked_top_k import predict_top_k
from geoloc_tf.epoch_loop import EpochData, EpochLoop, TrainingHistory, compile_model
from geoloc_tf.m2.boosting import samme_update
from geoloc_tf.m2.config import M2Config
from geoloc_tf.m2.data import M2Data
from geoloc_tf.m2.model import build_m2


def _every_epoch(data: EpochData) -> Callable[[int], EpochData]:
    """A ``draw`` for ``EpochLoop.run_phase`` that gives ``data`` in every epoch."""
    return lambda epoch: data


def train_m2(
    train: M2Data,
    val: M2Data,
    num_cells: int,
    config: M2Config,
    *,
    seed: int,
    tensorboard_dir: str | None = None,
) -> tuple[keras.Model, TrainingHistory]:
    """Train M2 on ``train``, early-stopping on ``val``; returns the model (best weights) and history.

    ``seed`` (the run's one seed) seeds Keras, numpy and TF: weights, dropout, shuffling.

    Schedule (appendix A.2): if ``boosting_rounds`` > 0, one uniform pass and then that many SAMME
    re-weighted passes (``geoloc_tf.m2.boosting``), all with Adam at the first learning rate; then one
    Adam phase per entry of ``learning_rates`` on uniform weights, each ended by early stopping on a
    sustained fall of validation accuracy. The returned model is in the "top_k" input form.
    """
    for name, split in (("train", train), ("val", val)):
        labels = split.known_labels(f"train_m2: {name}")
        if labels.size and (labels.min() < 0 or labels.max() >= num_cells):
            raise errors.ModelConfigError(
                f"train_m2: {name}.labels outside [0, {num_cells}), expected cell indices"
            )
    keras.utils.set_random_seed(seed)
    model = build_m2(num_cells, config)
    compile_model(model, config.learning_rates[0])

    train_x = train.model_inputs(config.extra_inputs)
    train_y = train.known_labels("train_m2: train")
    uniform = np.ones(len(train), np.float32)
    val_y = val.known_labels("train_m2: val")
    validation = (val.model_inputs(config.extra_inputs), val_y, np.ones(len(val), np.float32))
    loop = EpochLoop(
        model,
        validation,
        config.batch_size,
        config.early_stopping_patience,
        tensorboard_dir,
        monitor=config.early_stopping_metric,
    )

    if config.m1_prior:  # M2 starts as M1: keep that unless training beats it on validation
        loop.score_start()
    if config.boosting_rounds > 0:
        weights = uniform
        loop.run_phase(
            "boost0",
            config.learning_rates[0],
            config.boosting_epochs,
            lambda epoch: (train_x, train_y, uniform),
            early_stopping=False,
        )
        for boosting_round in range(1, config.boosting_rounds + 1):
            predicted, _ = predict_top_k(model, train_x, k=1)
            step = samme_update(weights, predicted[:, 0] != train_y, num_cells)
            loop.log_boosting(boosting_round, step.error, step.alpha)
            if not step.useful:
                break
            weights = step.weights.astype(np.float32)
            loop.run_phase(
                f"boost{boosting_round}",
                config.learning_rates[0],
                config.boosting_epochs,
                _every_epoch((train_x, train_y, weights)),
                boosting_round=boosting_round,
                early_stopping=False,
            )

    for learning_rate in config.learning_rates:
        loop.run_phase(
            f"adam{learning_rate:g}",
            learning_rate,
            config.max_epochs,
            lambda epoch: (train_x, train_y, uniform),
        )
    return model, loop.finish()
