"""M1's score after every epoch: km accuracy on a fixed random subset of M1 validation.

The predicted cell's imagery centroid against the true location, at the paper's thresholds
(§3.1.3: 1, 25, 200, 750, 2500 km), and the cell accuracy; TensorBoard plots them per epoch. The
subset is read with tf.data and scored by a ``predict`` function of numpy batches, so the same code
serves every Keras backend (the trainer passes its compiled forward pass).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from data_pipelines import input_pipeline, labels
from data_pipelines.config import InputConfig
from data_pipelines.dataset import WrittenDataset
from mesh.geodesy import ACCURACY_THRESHOLDS_KM, accuracy_at_thresholds, great_circle_km

log = logging.getLogger(__name__)

VALIDATION_SPLIT = "m1_val"
#: The subset is read in batches of at most this many photos.
MAX_BATCH = 256


@dataclasses.dataclass(frozen=True)
class ValidationSubset:
    dataset: tf.data.Dataset
    photos: int


def validation_subset(
    data: WrittenDataset, mesh: Any, photos: int, image_size: int, batch_size: int, seed: int
) -> ValidationSubset | None:
    """A fixed random subset of ``photos`` M1-validation photos (``photo_subset``), with their
    metadata: what M1 is scored on after every epoch. None when ``photos`` is 0 or the split is
    empty."""
    subset = photo_subset(data, mesh, VALIDATION_SPLIT, photos, image_size, batch_size, seed, stream=7)
    if subset is None and photos > 0:
        log.warning("M1 validation split is empty: no km accuracy during training")
    return subset


def photo_subset(
    data: WrittenDataset,
    mesh: Any,
    split: str,
    photos: int,
    image_size: int,
    batch_size: int,
    seed: int,
    stream: int,
    split_labels: list[np.ndarray] | None = None,
) -> ValidationSubset | None:
    """A fixed random subset of ``photos`` photos of ``split``, preprocessed as at inference (the
    central crop), with their metadata: whole random shards, then random photos in them (reading
    only a few shards keeps the per-epoch cost bounded on a 2.7 M-photo split). ``stream`` keeps
    the draws of different subsets of one seed apart. ``split_labels``: the split's cells per
    shard when the caller has them (``labels.shard_labels``), else located here. None when
    ``photos`` is 0 or the split is empty."""
    if photos <= 0:
        return None
    lengths = data.shard_lengths(split)
    if not sum(lengths):
        return None
    rng = np.random.default_rng([seed, stream])
    order = rng.permutation(len(lengths))
    chosen, held = [], 0
    for shard in order:
        chosen.append(shard)
        held += lengths[shard]
        if held >= 2 * photos:
            break
    candidates = np.concatenate(
        [np.stack([np.full(lengths[s], s), np.arange(lengths[s])], 1) for s in chosen]
    )
    pick = candidates[rng.choice(len(candidates), size=min(photos, len(candidates)), replace=False)]
    copies = [np.zeros(n, np.int32) for n in lengths]
    for shard, index in pick:
        copies[shard][index] = 1
    if split_labels is None:
        split_labels = labels.shard_labels(data, split, mesh)
    input_config = InputConfig(
        image_size=image_size,
        global_batch_size=min(batch_size, MAX_BATCH),
        training=False,
        deterministic=True,
        seed=seed,
        with_metadata=True,
    )
    dataset = input_pipeline.make_dataset(data, split, split_labels, input_config, copies_by_shard=copies)
    return ValidationSubset(dataset, len(pick))


def evaluate(predict: Callable[[np.ndarray], Any], validation: ValidationSubset | None, mesh: Any) -> dict:
    """``val_*`` figures of M1 on the subset: photos, cell accuracy, median km error and accuracy
    at each threshold (empty without a subset). ``predict`` maps a batch of images to M1's
    probabilities (any array numpy converts), e.g. ``model.predict_on_batch``."""
    if validation is None:
        return {}
    top1_parts: list[np.ndarray] = []
    lat: list[np.ndarray] = []
    lon: list[np.ndarray] = []
    truth_parts: list[np.ndarray] = []
    for features, label in validation.dataset.as_numpy_iterator():
        top1_parts.append(np.argmax(np.asarray(predict(features["image"])), axis=-1))
        lat.append(features["lat"])
        lon.append(features["lon"])
        truth_parts.append(label)
    top1, truth = np.concatenate(top1_parts), np.concatenate(truth_parts)
    points = np.asarray(mesh.imagery_centroids)[top1]
    errors_km = great_circle_km(np.concatenate(lat), np.concatenate(lon), points[:, 0], points[:, 1])
    accuracy = accuracy_at_thresholds(errors_km, ACCURACY_THRESHOLDS_KM)
    labelled = truth >= 0
    return {
        "val_photos": int(len(top1)),
        "val_cell_accuracy": float(np.mean(top1[labelled] == truth[labelled]))
        if labelled.any()
        else math.nan,
        "val_median_km": float(np.median(errors_km)),
        **{f"val_accuracy_{key}km": value for key, value in accuracy.items()},
    }
