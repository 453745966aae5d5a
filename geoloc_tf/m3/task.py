"""M3 as one task: user albums from M1's prediction tables, training, predictions, saving, export.

§3.3: every user's photos, in posting-time order, are cut into albums of 24 (zero-padded, masked);
training draws one random album per user per epoch; evaluation predicts every photo exactly once.
M3 trains on the albums of split `m23_train`, early-stops on `m23_val` (appendix A), starts its
per-photo blocks from the trained M2 (Figure 3: "M2 concatenated with M3 layers"), and writes
prediction tables for both splits in the common format (`geoloc_tf.prediction_tables`).
Photos in dropped cells stay in the albums (they are context) with weight 0 in the loss.

A trained M3 is saved with its ``M3Config`` and the ``M2Config`` of its per-photo part, so the
stage, `geoloc evaluate` and the export know its inputs without inspecting the model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from data_pipelines import albums as album_lib
from data_pipelines.splits import M23_TRAIN, M23_VAL
from geoloc_tf import prediction_tables
from geoloc_tf.chunked_top_k import predict_top_k
from geoloc_tf.m2 import task as m2_task
from geoloc_tf.m2.config import DEFAULT_TOP_K, M2Config
from geoloc_tf.m2.data import M2Data
from geoloc_tf.m3.config import M3Config
from geoloc_tf.m3.data import AlbumArrays, album_arrays, photo_values, training_draws
from geoloc_tf.run_layout import RunLayout
from geoloc_tf.saving import load_task_model, save_task_model
from mesh import settings
from mesh.atomic import write_text_atomic

log = logging.getLogger(__name__)

MODEL = "m3"
ALBUMS_PER_PREDICT_CHUNK = 256  # bounds memory: 256 x 24 photos x N cells of floats


def with_known_labels_only(arrays: AlbumArrays) -> AlbumArrays:
    """Photos without a class (dropped cells, label -1) weigh nothing in the loss."""
    known = arrays.labels >= 0
    return AlbumArrays(arrays.inputs, np.where(known, arrays.labels, 0), arrays.mask & known)


@dataclasses.dataclass(frozen=True)
class TrainedM3:
    """A trained M3, its config and the config of its per-photo M2 part."""

    model: keras.Model
    config: M3Config
    m2: M2Config

    def albums(self, table: pd.DataFrame) -> album_lib.Albums:
        """The albums of a prediction table's photos (§3.3), every photo in exactly one."""
        return album_lib.build_albums(table, self.config.album_size)

    def top_k(self, data: M2Data, albums: album_lib.Albums, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k cells of every photo (table order), each photo predicted once, inside its album."""
        arrays = album_arrays(data, albums, extra_inputs=self.m2.extra_inputs)
        ids, probs = predict_top_k(self.model, arrays.inputs, k=k, chunk_size=ALBUMS_PER_PREDICT_CHUNK)
        return photo_values(ids, albums), photo_values(probs, albums)

    def save(self, layout: RunLayout) -> Path:
        """The model file and both configs beside it (``RunLayout``); returns the model file."""
        return save_task_model(layout, MODEL, self.model, {MODEL: self.config, "m2": self.m2})

    @staticmethod
    def exists(layout: RunLayout) -> bool:
        return layout.model_file(MODEL).exists()

    @classmethod
    def load(cls, layout: RunLayout) -> "TrainedM3":
        """The run's trained M3 (``save``'s files)."""
        model, configs = load_task_model(layout, MODEL)
        return cls(
            model, settings.from_flat(M3Config, configs[MODEL]), settings.from_flat(M2Config, configs["m2"])
        )

    def export(self, cell_latlon: np.ndarray, export_dir: str | Path, top_k: int) -> str:
        """M3's serving SavedModel (``geoloc_tf.metadata_export``)."""
        from geoloc_tf.metadata_export import export_metadata_model

        return export_metadata_model(
            self.model,
            cell_latlon,
            str(export_dir),
            m1_k=self.m2.top_k,
            extra_inputs=self.m2.extra_inputs,
            album_size=self.config.album_size,
            top_k=top_k,
        )


def run(
    layout: RunLayout, mesh, config: M3Config, m2_config: M2Config, *, seed: int, top_k: int = DEFAULT_TOP_K
) -> dict[str, str]:
    """Trains M3 (from the run's trained M2 when ``config.init_from_m2``), writes the model, its
    configs, ``history.json`` and M3's prediction tables of both M2/M3 splits."""
    from geoloc_tf.m3.train import train_m3

    splits = {}
    for split in (M23_TRAIN, M23_VAL):
        table, data = m2_task.read_split(layout, split, mesh, m2_config)
        splits[split] = (table, data, album_lib.build_albums(table, config.album_size))
    _, train_data, train_albums = splits[M23_TRAIN]
    _, val_data, val_albums = splits[M23_VAL]
    extra = m2_config.extra_inputs
    draws = training_draws(train_data, train_albums, seed=seed, extra_inputs=extra)

    def draw(epoch: int) -> AlbumArrays:
        return with_known_labels_only(draws(epoch))

    val = with_known_labels_only(album_arrays(val_data, val_albums, extra_inputs=extra))
    log.info(
        "M3: %d training albums (%d users), %d validation albums",
        train_albums.num_albums,
        len(train_albums.users),
        val_albums.num_albums,
    )
    m2_model = m2_task.TrainedM2.load(layout).model if config.init_from_m2 else None
    model, history = train_m3(
        draw,
        val,
        mesh.num_cells,
        config,
        m2_config,
        seed=seed,
        m2_model=m2_model,
        tensorboard_dir=str(layout.tensorboard(MODEL)),
    )
    trained = TrainedM3(model, config, m2_config)
    artifacts = {"model": str(trained.save(layout))}
    write_text_atomic(layout.history(MODEL), json.dumps(history.to_dict(), indent=2))
    for split, (table, data, albums) in splits.items():
        ids, probs = trained.top_k(data, albums, top_k)
        path = prediction_tables.write_table(
            prediction_tables.table_from_top_k(table, ids, probs), layout.prediction_table(MODEL, split)
        )
        artifacts[split] = str(path)
        labels = data.known_labels(f"M3 {split}")
        known = labels >= 0
        log.info(
            "M3 %s: cell accuracy %.3f on %d labelled photos",
            split,
            float(np.mean(ids[known, 0] == labels[known])) if known.any() else float("nan"),
            int(known.sum()),
        )
    return artifacts
