"""M3 from M1's stored predictions: user albums, training, and per-photo predictions.

§3.3: every user's photos, in posting-time order, are cut into albums of 24 (zero-padded, masked);
training draws one random album per user per epoch; evaluation predicts every photo exactly once.
M3 trains on the albums of split `m23_train`, early-stops on `m23_val` (appendix A), starts its
per-photo blocks from the trained M2 (Figure 3: "M2 concatenated with M3 layers"), and writes
prediction tables for both splits in the common format (`geoloc_tf.prediction_tables`).
Photos in dropped cells stay in the albums (they are context) with weight 0 in the loss.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import keras
import numpy as np

from data_pipelines import albums as album_lib
from data_pipelines.splits import M23_TRAIN, M23_VAL
from geoloc_tf import prediction_tables
from geoloc_tf.m2.data import M2Data
from geoloc_tf.m2.pipeline import load_split
from geoloc_tf.m3.config import M3Config
from geoloc_tf.m3.data import AlbumArrays, album_arrays, photo_values, training_draws
from geoloc_tf.m3.train import train_m3
from geoloc_tf.saving import save_keras
from geoloc_tf.top_k_predictions import predict_top_k
from mesh.atomic import write_text_atomic

log = logging.getLogger(__name__)

MODEL_FILE = "m3.keras"
ALBUMS_PER_PREDICT_CHUNK = 256  # bounds memory: 256 x 24 photos x N cells of floats


def with_known_labels_only(arrays: AlbumArrays) -> AlbumArrays:
    """Photos without a class (dropped cells, label -1) weigh nothing in the loss."""
    known = arrays.labels >= 0
    return AlbumArrays(arrays.inputs, np.where(known, arrays.labels, 0), arrays.mask & known)


def run_m3(predictions_dir: Path | str, mesh, out_dir: Path | str, tensorboard_dir: Path | str,
           config: M3Config, m2_model_path: Path | str | None, top_k: int = 10) -> dict[str, str]:
    """Trains M3, writes `out_dir/m3.keras`, `history.json` and M3's prediction tables."""
    predictions_dir, out_dir = Path(predictions_dir), Path(out_dir)
    splits = {}
    for split in (M23_TRAIN, M23_VAL):
        table, data = load_split(predictions_dir, split, mesh, config.m2.top_k)
        splits[split] = (table, data, album_lib.build_albums(table, config.album_size))
    _, train_data, train_albums = splits[M23_TRAIN]
    _, val_data, val_albums = splits[M23_VAL]
    extra = config.m2.extra_inputs
    draws = training_draws(train_data, train_albums, seed=config.seed, extra_inputs=extra)

    def draw(epoch: int) -> AlbumArrays:
        return with_known_labels_only(draws(epoch))

    val = with_known_labels_only(album_arrays(val_data, val_albums, extra_inputs=extra))
    log.info("M3: %d training albums (%d users), %d validation albums", train_albums.num_albums,
             len(train_albums.users), val_albums.num_albums)
    m2_model = keras.saving.load_model(m2_model_path) if config.init_from_m2 else None
    model, history = train_m3(draw, val, mesh.num_cells, config, m2_model, str(tensorboard_dir))
    save_keras(model, str(out_dir / MODEL_FILE))
    write_text_atomic(out_dir / "history.json", json.dumps(history.to_dict(), indent=2))
    artifacts = {"model": str(out_dir / MODEL_FILE)}
    for split, (table, data, albums) in splits.items():
        ids, probs = predict_albums(model, data, albums, extra, top_k)
        path = prediction_tables.write_table(prediction_tables.table_from_top_k(table, ids, probs),
                                             prediction_tables.table_path(predictions_dir, "m3", split))
        artifacts[split] = str(path)
        known = data.labels >= 0
        log.info("M3 %s: cell accuracy %.3f on %d labelled photos", split,
                 float(np.mean(ids[known, 0] == data.labels[known])) if known.any() else float("nan"),
                 int(known.sum()))
    return artifacts


def predict_albums(model: keras.Model, data: M2Data, albums: album_lib.Albums,
                   extra_inputs: tuple[str, ...], top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k cells of every photo (table order), each photo predicted once, inside its album."""
    arrays = album_arrays(data, albums, extra_inputs=extra_inputs)
    ids, probs = predict_top_k(model, arrays.inputs, k=top_k, chunk_size=ALBUMS_PER_PREDICT_CHUNK)
    return photo_values(ids, albums), photo_values(probs, albums)
