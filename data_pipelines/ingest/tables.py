"""The per-split Parquet tables: every photo that made it into a shard, in record order, no pixels.

Columns: photo_id, user_hash, posted_at, lat, lon (degrees), lat_e7, lon_e7 (exact), accuracy,
outdoor_prob, shard (index among the split's shards), index_in_shard, and the data set's own
administrative areas country, region, sub_region, city ("" unknown; OSV-5M and MP16-Pro name them),
the ground truth of the evaluation's admin-level accuracy.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from data_pipelines import splits
from data_pipelines.ingest import layout
from data_pipelines.ingest.plan import PlannedShard
from data_pipelines.readers import common as rcommon
from mesh.atomic import write_parquet_atomic


def write_tables(
    table: pd.DataFrame, plan: list[PlannedShard], statuses: list[dict], out_dir: str
) -> dict[str, int]:
    """Writes ``tables/<split>.parquet`` for every split; returns each split's row count."""
    os.makedirs(os.path.join(out_dir, layout.TABLES_DIR), exist_ok=True)
    skipped = np.zeros(len(table), dtype=bool)
    shard_of = np.full(len(table), -1, dtype=np.int32)
    for shard, status in zip(plan, statuses):
        shard_of[shard.rows] = shard.index
        skipped[np.asarray(status["skipped_rows"], dtype=np.int64)] = True
    counts = {}
    for code, name in enumerate(splits.SPLITS):
        keep = (table["split"].to_numpy() == code) & ~skipped
        sub = table.loc[keep]
        shard = shard_of[keep]
        index_in_shard = pd.Series(shard).groupby(shard).cumcount()
        out = pd.DataFrame(
            {
                "photo_id": sub["photo_id"].to_numpy(),
                "user_hash": sub["user_hash"].to_numpy(),
                "posted_at": sub["posted_at"].to_numpy(np.int64),
                "lat": sub["lat_e7"].to_numpy(np.int64) / rcommon.COORD_SCALE,
                "lon": sub["lon_e7"].to_numpy(np.int64) / rcommon.COORD_SCALE,
                "lat_e7": sub["lat_e7"].to_numpy(np.int64),
                "lon_e7": sub["lon_e7"].to_numpy(np.int64),
                "accuracy": sub["accuracy"].to_numpy(np.int16),
                "outdoor_prob": sub["outdoor_prob"].to_numpy(np.float32),
                "shard": shard,
                "index_in_shard": index_in_shard.to_numpy(np.int64),
                **{name: sub[name].to_numpy().astype(str) for name in rcommon.ADMIN_COLUMNS},
            }
        )
        write_parquet_atomic(os.path.join(out_dir, layout.table_path(name)), out)
        counts[name] = int(len(out))
    return counts
