"""M2 from M1's stored predictions: training on the M2/M3 split, then predictions for evaluation.

Appendix A: "Validation data used for M1 was further sub-divided at random into training and
validation sets for training time-based models (M2 and M3), so that no data used to train M1 was
used to also train M2 and M3." M2 trains on split `m23_train`, early-stops on `m23_val`, and
predicts both (the evaluation scores `m23_val`, the photos no model trained on). Photos whose true
location lies in a cell the mesh dropped have no class: they leave training (as for M1, §3.1.1) but
are predicted and evaluated like every other photo.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipelines.splits import M23_TRAIN, M23_VAL
from geoloc_tf import prediction_tables
from geoloc_tf.m2.config import M2Config
from geoloc_tf.m2.data import M2Data
from geoloc_tf.m2.train import train_m2
from geoloc_tf.saving import save_keras
from geoloc_tf.top_k_predictions import predict_top_k
from mesh.atomic import write_text_atomic

log = logging.getLogger(__name__)

MODEL_FILE = "m2.keras"
UNKNOWN_OUTDOOR = 0.5  # an unknown outdoor probability enters M2 as "can't tell"


def m2_data(table: pd.DataFrame, top_ids: np.ndarray, top_probs: np.ndarray, mesh, k: int
            ) -> M2Data:
    """M2's inputs for the photos of an M1 prediction table, labelled by the mesh."""
    outdoor = table["outdoor_prob"].to_numpy(np.float32)
    outdoor = np.where(np.isfinite(outdoor) & (outdoor >= 0), outdoor, UNKNOWN_OUTDOOR)
    return M2Data(cell_ids=top_ids[:, :k].astype(np.int64), cell_probs=top_probs[:, :k],
                  posted_at=table["posted_at"].to_numpy(np.int64),
                  labels=mesh.locate(table["lat"].to_numpy(), table["lon"].to_numpy()),
                  outdoor=outdoor.astype(np.float32))


def labelled(data: M2Data) -> M2Data:
    """Only the photos in kept cells (the ones that have a class to learn)."""
    keep = data.labels >= 0
    return M2Data(data.cell_ids[keep], data.cell_probs[keep], data.posted_at[keep],
                  data.labels[keep], None if data.outdoor is None else data.outdoor[keep])


def load_split(predictions_dir: Path, split: str, mesh, k: int
               ) -> tuple[pd.DataFrame, M2Data]:
    table, ids, probs = prediction_tables.read_table(
        prediction_tables.table_path(predictions_dir, "m1", split))
    return table, m2_data(table, ids, probs, mesh, k)


def run_m2(predictions_dir: Path | str, mesh, out_dir: Path | str, tensorboard_dir: Path | str,
           config: M2Config, top_k: int = 10) -> dict[str, str]:
    """Trains M2, writes `out_dir/m2.keras`, `history.json` and M2's prediction tables."""
    predictions_dir, out_dir = Path(predictions_dir), Path(out_dir)
    tables = {split: load_split(predictions_dir, split, mesh, config.top_k)
              for split in (M23_TRAIN, M23_VAL)}
    train, val = labelled(tables[M23_TRAIN][1]), labelled(tables[M23_VAL][1])
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"M2 needs labelled photos in {M23_TRAIN} and {M23_VAL}; got {len(train)} "
                         f"and {len(val)} (photos in dropped cells have no class)")
    log.info("M2: training on %d photos, validating on %d", len(train), len(val))
    model, history = train_m2(train, val, mesh.num_cells, config, str(tensorboard_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    save_keras(model, str(out_dir / MODEL_FILE))
    write_text_atomic(out_dir / "history.json", json.dumps(history.to_dict(), indent=2))
    artifacts = {"model": str(out_dir / MODEL_FILE)}
    for split, (table, data) in tables.items():
        ids, probs = predict_top_k(model, data.model_inputs(config.extra_inputs), k=top_k)
        path = prediction_tables.write_table(
            prediction_tables.table_from_top_k(table, ids, probs),
            prediction_tables.table_path(predictions_dir, "m2", split))
        artifacts[split] = str(path)
        accuracy = float(np.mean(ids[:, 0] == data.labels)) if len(data) else float("nan")
        log.info("M2 %s: cell accuracy %.3f (M1 %.3f) on %d photos", split, accuracy,
                 float(np.mean(data.m1_top1() == data.labels)), len(data))
    return artifacts
