"""M2 as one task: its inputs from M1's prediction tables, training, predictions, saving, export.

The stage (``run``), `geoloc predict` and `geoloc serve` (``geoloc_tf.inference.photo_predictor``),
`geoloc evaluate` (``geoloc_tf.evaluation.external``) and the export all go through here. A trained
M2 is saved with the ``M2Config`` it was built from (``RunLayout.task_config("m2")``), so whoever
loads it knows its inputs (M1's k, the extra inputs) from that config, never by inspecting the model.

Appendix A: "Validation data used for M1 was further sub-divided at random into training and
validation sets for training time-based models (M2 and M3), so that no data used to train M1 was
used to also train M2 and M3." M2 trains on split `m23_train`, early-stops on `m23_val`, and
predicts both (the evaluation scores `m23_val`, the photos no model trained on). Photos whose true
location lies in a cell the mesh dropped have no class: they leave training (as for M1, §3.1.1) but
are predicted and evaluated like every other photo.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import pandas as pd

from data_pipelines.splits import M23_TRAIN, M23_VAL
from geoloc_tf import errors, prediction_tables
from geoloc_tf.chunked_top_k import predict_top_k
from geoloc_tf.m2.config import DEFAULT_TOP_K, M2Config
from geoloc_tf.m2.data import OUTDOOR, M2Data
from geoloc_tf.run_layout import RunLayout
from geoloc_tf.saving import load_task_model, save_task_model
from mesh import settings
from mesh.atomic import write_text_atomic

log = logging.getLogger(__name__)

MODEL = "m2"
UNKNOWN_OUTDOOR = 0.5  # an unknown outdoor probability enters M2 as "can't tell"


# ---------------------------------------------------------------------- inputs from prediction tables
def photo_data(
    table: pd.DataFrame, top_ids: np.ndarray, top_probs: np.ndarray, mesh, config: M2Config
) -> M2Data:
    """M2's inputs for the photos of an M1 prediction table (its first ``config.top_k`` cells),
    labelled by the mesh."""
    k = config.top_k
    if len(table) and top_ids.shape[1] < k:
        raise errors.ModelConfigError(
            f"M1's predictions hold {top_ids.shape[1]} cells per photo; M2Config.top_k={k} needs "
            f"at least {k} (--predict_top_k)"
        )
    outdoor = table["outdoor_prob"].to_numpy(np.float32)
    outdoor = np.where(np.isfinite(outdoor) & (outdoor >= 0), outdoor, UNKNOWN_OUTDOOR)
    return M2Data(
        cell_ids=top_ids[:, :k].astype(np.int64),
        cell_probs=top_probs[:, :k],
        posted_at=table["posted_at"].to_numpy(np.int64),
        labels=mesh.locate(table["lat"].to_numpy(), table["lon"].to_numpy()),
        outdoor=outdoor.astype(np.float32),
    )


def read_split(layout: RunLayout, split: str, mesh, config: M2Config) -> tuple[pd.DataFrame, M2Data]:
    """M1's prediction table of ``split`` and M2's inputs for its photos."""
    table, ids, probs = prediction_tables.read_table(layout.prediction_table("m1", split))
    return table, photo_data(table, ids, probs, mesh, config)


def labelled(data: M2Data) -> M2Data:
    """Only the photos in kept cells (the ones that have a class to learn)."""
    labels = data.known_labels("labelled: data")
    keep = labels >= 0
    return M2Data(
        data.cell_ids[keep],
        data.cell_probs[keep],
        data.posted_at[keep],
        labels[keep],
        None if data.outdoor is None else data.outdoor[keep],
    )


# ---------------------------------------------------------------------- a trained M2
@dataclasses.dataclass(frozen=True)
class TrainedM2:
    """A trained M2 and the config it was built from."""

    model: keras.Model
    config: M2Config

    @property
    def num_cells(self) -> int:
        return int(self.model.output_shape[-1])

    @property
    def uses_outdoor(self) -> bool:
        return OUTDOOR in self.config.extra_inputs

    def inputs(self, data: M2Data) -> dict[str, np.ndarray]:
        return data.model_inputs(self.config.extra_inputs)

    def top_k(self, data: M2Data, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(cell ids, probabilities) of every photo's k best cells, best first."""
        return predict_top_k(self.model, self.inputs(data), k=k)

    def probabilities(self, data: M2Data) -> np.ndarray:
        """float32 [n, num_cells]: M2's softmax for every photo."""
        return np.asarray(self.model.predict_on_batch(self.inputs(data)), np.float32)

    def data_from_m1(
        self,
        m1_probabilities: np.ndarray,
        posted_at: Sequence[int],
        outdoor: Sequence[float | None] | None = None,
    ) -> M2Data:
        """M2's inputs from M1's full softmax (inference); an unknown outdoor probability is 0.5,
        as in training."""
        values = np.array(
            [
                UNKNOWN_OUTDOOR if outdoor is None or o is None else o
                for o in (outdoor or [None] * len(posted_at))
            ],
            np.float32,
        )
        return M2Data.from_dense(
            m1_probabilities, np.asarray(posted_at, np.int64), outdoor=values, k=self.config.top_k
        )

    def save(self, layout: RunLayout) -> Path:
        """The model file and its config beside it (``RunLayout``); returns the model file."""
        return save_task_model(layout, MODEL, self.model, {MODEL: self.config})

    @staticmethod
    def exists(layout: RunLayout) -> bool:
        return layout.model_file(MODEL).exists()

    @classmethod
    def load(cls, layout: RunLayout) -> "TrainedM2":
        """The run's trained M2 (``save``'s files)."""
        model, configs = load_task_model(layout, MODEL)
        return cls(model, settings.from_flat(M2Config, configs[MODEL]))

    def export(self, cell_latlon: np.ndarray, export_dir: str | Path, top_k: int) -> str:
        """M2's serving SavedModel (``geoloc_tf.metadata_export``)."""
        from geoloc_tf.metadata_export import export_metadata_model

        return export_metadata_model(
            self.model,
            cell_latlon,
            str(export_dir),
            m1_k=self.config.top_k,
            extra_inputs=self.config.extra_inputs,
            top_k=top_k,
        )


# ---------------------------------------------------------------------- the stage
def run(
    layout: RunLayout, mesh, config: M2Config, *, seed: int, top_k: int = DEFAULT_TOP_K
) -> dict[str, str]:
    """Trains M2 on M1's predictions, writes the model, its config, ``history.json`` and M2's
    prediction tables of both M2/M3 splits; returns artifact -> path."""
    from geoloc_tf.m2.train import train_m2

    tables = {split: read_split(layout, split, mesh, config) for split in (M23_TRAIN, M23_VAL)}
    train, val = labelled(tables[M23_TRAIN][1]), labelled(tables[M23_VAL][1])
    if len(train) == 0 or len(val) == 0:
        raise ValueError(
            f"M2 needs labelled photos in {M23_TRAIN} and {M23_VAL}; got {len(train)} "
            f"and {len(val)} (photos in dropped cells have no class)"
        )
    log.info("M2: training on %d photos, validating on %d", len(train), len(val))
    model, history = train_m2(
        train, val, mesh.num_cells, config, seed=seed, tensorboard_dir=str(layout.tensorboard(MODEL))
    )
    trained = TrainedM2(model, config)
    artifacts = {"model": str(trained.save(layout))}
    write_text_atomic(layout.history(MODEL), json.dumps(history.to_dict(), indent=2))
    for split, (table, data) in tables.items():
        ids, probs = trained.top_k(data, top_k)
        path = prediction_tables.write_table(
            prediction_tables.table_from_top_k(table, ids, probs), layout.prediction_table(MODEL, split)
        )
        artifacts[split] = str(path)
        accuracy = float(np.mean(ids[:, 0] == data.labels)) if len(data) else float("nan")
        log.info(
            "M2 %s: cell accuracy %.3f (M1 %.3f) on %d photos",
            split,
            accuracy,
            float(np.mean(data.m1_top1() == data.labels)),
            len(data),
        )
    return artifacts
