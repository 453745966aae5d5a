"""M1's predictions for every photo, stored as Parquet tables that need no image work to read.

M2, M3, user averaging and the evaluation start from these tables (paper Figure 3: M2 takes M1's
top-10 cells). One table per split, `predictions/m1/<split>.parquet`, one row per photo in record
order:

| column | meaning |
|---|---|
| photo_id, user_hash, posted_at, lat, lon, outdoor_prob | the photo's kept metadata |
| top_ids (list of int32), top_probs (list of float32) | the k most probable cells, best first |
| top10_mass | sum of the 10 largest probabilities: the L1 norm |p0| of Figure 3, operator (1) |

With ``PredictConfig.store_features``, M1's penultimate (1536-d at full width) features of each
split go to the split's feature index (``geoloc_tf.retrieval.feature_index``, appendix B), in the
same photo order: the one store that the kNN row and `geoloc search` read.

Work is done one record shard at a time (``RunLayout.prediction_parts``, one atomic table per
shard, features included); a killed run redoes only the unfinished shards, then the parts are
joined into the split's table and index.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from data_pipelines import input_pipeline, splits
from data_pipelines.config import InputConfig
from data_pipelines.dataset import WrittenDataset
from geoloc_tf import prediction_tables
from geoloc_tf.m1 import inception_v4
from geoloc_tf.run_configs import PredictConfig
from geoloc_tf.run_layout import RunLayout

log = logging.getLogger(__name__)

MODEL = "m1"
MASS_K = prediction_tables.MASS_K
BATCH_SIZE = 128  # photos per forward pass


@dataclasses.dataclass(frozen=True)
class _Pass:
    """One prediction pass: the settings plus M1's input side (from M1's config) and batch."""

    config: PredictConfig
    image_size: int
    batch_size: int


def prediction_model(model: keras.Model, store_features: bool) -> keras.Model:
    """M1 returning (probabilities, features) when features are wanted, else probabilities."""
    if not store_features:
        return model
    features = model.get_layer(inception_v4.FEATURES_LAYER).output
    return keras.Model(model.inputs, [model.output, features], name=f"{model.name}_with_features")


def predict_splits(
    model: keras.Model,
    data: WrittenDataset,
    layout: RunLayout,
    config: PredictConfig,
    image_size: int,
    split_names: tuple[str, ...] = splits.SPLITS,
    batch_size: int = BATCH_SIZE,
) -> dict[str, str]:
    """Writes M1's prediction table of every split and, with ``config.store_features``, its feature
    index (``layout.index_dir(split)``, the run's one store of M1 features); returns split ->
    table path and ``<split>_features`` -> index folder. ``image_size``: M1's input side
    (``--m1_image_size``); ``model`` is the run's ``layout.m1_model``."""
    from geoloc_tf.retrieval.feature_index import assemble_index, index_meta

    net = prediction_model(model, config.store_features)
    infer = tf.function(lambda images: net(images, training=False))
    paths = {}
    for split in split_names:
        parts = predict_parts(
            infer, data, split, layout.prediction_parts(MODEL, split), config, image_size, batch_size
        )
        columns = list(prediction_tables.TABLE_COLUMNS)
        table = (
            pd.concat([prediction_tables.read_frame(part, columns) for part in parts], ignore_index=True)
            if parts
            else _empty_frame(config)
        )
        path = prediction_tables.write_table(table, layout.prediction_table(MODEL, split))
        paths[split] = str(path)
        log.info("predict %s: %d photos -> %s", split, len(table), path)
        if config.store_features:
            index = assemble_index(
                parts, layout.index_dir(split), index_meta(layout.m1_model, data, split, image_size)
            )
            paths[f"{split}_features"] = str(index.root)
    return paths


def predict_parts(
    infer,
    data: WrittenDataset,
    split: str,
    parts_dir: Path | str,
    config: PredictConfig,
    image_size: int,
    batch_size: int = BATCH_SIZE,
) -> list[Path]:
    """One prediction table per record shard of ``split``, ``parts_dir/NNNNN.parquet`` (atomic);
    parts that exist are kept, so a killed run redoes only unfinished shards. ``infer`` is
    ``prediction_model(...)`` under ``tf.function``. Returns every part, in shard order."""
    parts_dir = Path(parts_dir)
    parts_dir.mkdir(parents=True, exist_ok=True)
    lengths = data.shard_lengths(split)
    started, done_images = time.monotonic(), 0
    for shard in range(len(lengths)):
        part = parts_dir / f"{shard:05d}.parquet"
        if part.exists():
            continue
        frame = _predict_shard(infer, data, split, shard, _Pass(config, image_size, batch_size))
        prediction_tables.write_table(frame, part)
        done_images += len(frame)
        rate = done_images / max(time.monotonic() - started, 1e-9)
        remaining = sum(lengths[shard + 1 :])
        log.info(
            "predict %s: shard %d/%d, %.0f photos/s, ETA %.0f s",
            split,
            shard + 1,
            len(lengths),
            rate,
            remaining / max(rate, 1e-9),
        )
    return [parts_dir / f"{shard:05d}.parquet" for shard in range(len(lengths))]


def _predict_shard(infer, data: WrittenDataset, split: str, shard: int, run: _Pass) -> pd.DataFrame:
    config = run.config
    input_config = InputConfig(
        image_size=run.image_size,
        global_batch_size=run.batch_size,
        training=False,
        deterministic=True,
        with_metadata=True,
        drop_unlabeled=False,
        drop_remainder=False,
    )
    dataset = input_pipeline.make_dataset(data, split, None, input_config, shards=[shard])
    columns: dict[str, list] = {
        name: []
        for name in (
            "photo_id",
            "user_hash",
            "posted_at",
            "lat",
            "lon",
            "outdoor_prob",
            "top_ids",
            "top_probs",
            "top10_mass",
            "features",
        )
    }
    for features, _ in dataset:
        output = infer(features["image"])
        probabilities, embedding = output if config.store_features else (output, None)
        k = min(max(config.top_k, MASS_K), probabilities.shape[-1])
        values, indices = tf.math.top_k(probabilities, k=k)
        values, indices = values.numpy(), indices.numpy()
        columns["top_ids"].extend(indices[:, : config.top_k].astype(np.int32))
        columns["top_probs"].extend(values[:, : config.top_k].astype(np.float32))
        columns["top10_mass"].append(values[:, :MASS_K].sum(axis=1).astype(np.float32))
        if embedding is not None:
            columns["features"].extend(np.asarray(embedding, np.float32))
        for name in ("photo_id", "user_hash"):
            columns[name].extend(v.decode() for v in features[name].numpy())
        for name in ("posted_at", "lat", "lon", "outdoor_prob"):
            columns[name].append(features[name].numpy())
    metadata = pd.DataFrame(
        {
            "photo_id": columns["photo_id"],
            "user_hash": columns["user_hash"],
            "posted_at": _concat(columns["posted_at"], np.int64),
            "lat": _concat(columns["lat"], np.float64),
            "lon": _concat(columns["lon"], np.float64),
            "outdoor_prob": _concat(columns["outdoor_prob"], np.float32),
        }
    )
    frame = prediction_tables.table_from_top_k(
        metadata,
        np.asarray(columns["top_ids"]).reshape(len(metadata), -1),
        np.asarray(columns["top_probs"]).reshape(len(metadata), -1),
        _concat(columns["top10_mass"], np.float32),
    )
    if config.store_features:
        frame["features"] = columns["features"]
    return frame


def _concat(chunks: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(chunks).astype(dtype) if chunks else np.empty(0, dtype)


def _empty_frame(config: PredictConfig) -> pd.DataFrame:
    empty = np.zeros((0, config.top_k))
    return prediction_tables.table_from_top_k(
        pd.DataFrame({name: [] for name in prediction_tables.METADATA_COLUMNS}), empty, empty
    )
