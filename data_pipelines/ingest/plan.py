"""The plan of phase 2: every kept photo of all files, with its split and its shard.

Duplicates are dropped over all files at once (first occurrence kept, in file order), unknown
outdoor probabilities are filled from the autotags files, the stable splits (``splits``) are
decided, and each split's rows, in file order, are cut into shards of ``examples_per_shard``. The plan
depends on the metadata and the settings alone (not on the number of workers or timing), which is
what makes a resumed run byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import pandas as pd

from data_pipelines import splits
from data_pipelines.config import IngestConfig
from data_pipelines.ingest import layout
from data_pipelines.readers import SkipLog
from data_pipelines.readers import common as rcommon
from data_pipelines.readers.autotags import read_outdoor_probabilities

log = logging.getLogger("data_pipelines.ingest")


@dataclasses.dataclass(frozen=True)
class PlannedShard:
    """One shard: its split, its index among the split's `count` shards, its rows of the table."""

    split: str
    index: int
    count: int
    rows: np.ndarray

    def file_name(self, dataset_name: str) -> str:
        return layout.shard_file_name(dataset_name, self.split, self.index, self.count)


def plan_shards(
    config: IngestConfig, num_files: int, out_dir: str, skips: SkipLog
) -> tuple[pd.DataFrame, list[PlannedShard]]:
    """The candidates of all files (file order) with split codes, and their shards; counts the
    duplicates into `skips`."""
    frames = []
    for i in range(num_files):
        df = pd.read_parquet(layout.parsed_stem(out_dir, i) + ".parquet")
        df["file_index"] = np.int32(i)
        frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    table["photo_id"] = table["photo_id"].astype(str)
    table = _drop_duplicates(table, config, skips)
    table = join_outdoor_probabilities(table, config.autotags)
    keys = splits.split_keys(table["photo_id"], table["user_hash"], config.splits)
    table["split"] = splits.split_codes(keys.to_numpy(), config.splits)
    table["row_id"] = np.arange(len(table), dtype=np.int64)
    plan: list[PlannedShard] = []
    size = config.examples_per_shard
    for code, name in enumerate(splits.SPLITS):
        rows = np.flatnonzero(table["split"].to_numpy() == code)
        count = math.ceil(len(rows) / size)
        plan.extend(PlannedShard(name, k, count, rows[k * size : (k + 1) * size]) for k in range(count))
    return table, plan


def _drop_duplicates(table: pd.DataFrame, config: IngestConfig, skips: SkipLog) -> pd.DataFrame:
    """Keeps the first row of each photo id; the first `log_first_skips` others are logged."""
    dup = table["photo_id"].duplicated(keep="first").to_numpy()
    if not dup.any():
        return table
    logged = table.loc[dup, ["file_index", "line", "photo_id"]].head(config.log_first_skips)
    for row in logged.itertuples():
        skips.add(
            rcommon.DUPLICATE_ID,
            config.metadata[row.file_index],
            int(row.line),
            f"photo id {row.photo_id} seen before",
        )
    skips.counts[rcommon.DUPLICATE_ID] += int(dup.sum()) - min(int(dup.sum()), config.log_first_skips)
    return table.loc[~dup].reset_index(drop=True)


def join_outdoor_probabilities(table: pd.DataFrame, autotags_paths) -> pd.DataFrame:
    """Fills unknown outdoor probabilities from YFCC100M autotags files (first file wins)."""
    for path in autotags_paths:
        tags, counts = read_outdoor_probabilities(path)
        for example in counts["bad_examples"]:
            log.warning("skipped autotags line %s", example)
        known = table["outdoor_prob"].notna().to_numpy()
        joined = table[["photo_id"]].merge(tags, on="photo_id", how="left")["outdoor_prob"]
        fill = ~known & joined.notna().to_numpy()
        table.loc[fill, "outdoor_prob"] = joined.to_numpy()[fill]
        log.info(
            "autotags %s: %d lines (%d bad), %d with an indoor/outdoor tag, %d photos filled",
            path,
            counts["lines"],
            counts["bad_lines"],
            counts["with_scene_tag"],
            int(fill.sum()),
        )
    return table
