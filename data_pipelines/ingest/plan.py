"""The plan of phase 2: every kept photo of all files, with its split and its shard.

Duplicates are dropped over all files at once (first occurrence kept, in file order), unknown
outdoor probabilities are filled from the autotags files, the stable splits (``splits``) are
decided, and each split's rows, in file order, are cut into shards of ``examples_per_shard``. The plan
depends on the metadata and the settings alone (not on the number of workers or timing), which is
what makes a resumed run byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from typing import Any, Callable

import numpy as np
import pandas as pd

from data_pipelines import errors, splits
from data_pipelines.config import IngestConfig
from data_pipelines.ingest import layout
from data_pipelines.readers import SkipLog
from data_pipelines.readers import common as rcommon
from data_pipelines.readers.autotags import read_outdoor_probabilities
from data_pipelines.readers.formats import Format
from mesh.atomic import write_json_atomic, write_parquet_atomic

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
    config: IngestConfig, fmt: Format, sources: tuple[str, ...], out_dir: str, skips: SkipLog
) -> tuple[pd.DataFrame, list[PlannedShard], list]:
    """The candidates of all files (file order) with split codes, their shards, and the archives
    holding their images (``data_pipelines.archives.Archive``, in container order; empty for plain
    files); counts the duplicates and the photos in no archive into `skips`."""
    frames = []
    for i in range(len(sources)):
        df = pd.read_parquet(layout.parsed_stem(out_dir, i) + ".parquet")
        df["file_index"] = np.int32(i)
        frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    table["photo_id"] = table["photo_id"].astype(str)
    table = _drop_duplicates(table, config, sources, skips)
    archives: list = []
    if fmt.index_archives is not None:
        table, archives = join_archive_index(table, fmt, config, sources, out_dir, skips)
    elif fmt.metadata_are_archives:
        archives = metadata_archives(sources, config.images_folder)
    table = join_outdoor_probabilities(table, config.autotags, config.max_line_bytes)
    keys = splits.split_keys(table["photo_id"], table["user_hash"], config.splits)
    table["split"] = splits.split_codes(keys.to_numpy(), config.splits)
    table["row_id"] = np.arange(len(table), dtype=np.int64)
    plan: list[PlannedShard] = []
    size = config.examples_per_shard
    for code, name in enumerate(splits.SPLITS):
        rows = np.flatnonzero(table["split"].to_numpy() == code)
        count = math.ceil(len(rows) / size)
        plan.extend(PlannedShard(name, k, count, rows[k * size : (k + 1) * size]) for k in range(count))
    return table, plan, archives


def archive_index(fmt: Format, images_root: str, out_dir: str):
    """The archives under the images folder and their members, built once per output folder
    (``_work/archives.json`` + ``_work/archive_index.parquet``) and read back by a resumed run."""
    from data_pipelines import archives

    index_path, list_path = layout.archive_index_file(out_dir), layout.archives_file(out_dir)
    if os.path.exists(index_path) and os.path.exists(list_path):
        with open(list_path) as f:
            listed = [archives.Archive(a["kind"], tuple(a["parts"])) for a in json.load(f)]
        return archives.ArchiveIndex(listed, pd.read_parquet(index_path))
    if fmt.index_archives is None:
        raise errors.ConfigError(
            f"--format={fmt.name} keeps no images in archives; expected an archive format"
        )
    started = time.monotonic()
    index = fmt.index_archives(images_root, SkipLog())
    write_parquet_atomic(index_path, index.members)
    write_json_atomic(list_path, [{"kind": a.kind, "parts": list(a.parts)} for a in index.archives])
    log.info(
        "archive index: %d members in %d archives under %s (%.1f s)",
        len(index.members),
        len(index.archives),
        images_root,
        time.monotonic() - started,
    )
    return index


def join_archive_index(
    table: pd.DataFrame,
    fmt: Format,
    config: IngestConfig,
    sources: tuple[str, ...],
    out_dir: str,
    skips: SkipLog,
) -> tuple[pd.DataFrame, list]:
    """Each row's image located in the archives by its key (``image_path``); a row whose key is in
    no archive is skipped as ``missing_image`` (first archive wins for a key found twice), and, for
    a format whose archives hold placeholders (MP16-Pro), a row whose member is one as
    ``placeholder_image`` (``archives.placeholder_members``). The Beam pipeline plans through here
    too, so both engines skip the same rows."""
    from data_pipelines import archives

    index = archive_index(fmt, os.path.realpath(config.images_folder), out_dir)
    located, found = index.locate(table)
    skip_rows(
        skips,
        rcommon.MISSING_IMAGE,
        table.loc[~found],
        sources,
        config.log_first_skips,
        lambda row: (
            f"member {row.image_path} is in none of the {len(index.archives)} archives under "
            f"{config.images_folder}"
        ),
    )
    if fmt.placeholders:
        located, placeholders = archives.split_placeholders(located)
        skip_rows(
            skips,
            rcommon.PLACEHOLDER_IMAGE,
            placeholders,
            sources,
            config.log_first_skips,
            lambda row: (
                f"member {row.image_path} has {row.size} bytes, at most "
                f"{archives.PLACEHOLDER_MAX_BYTES}: a placeholder for a deleted photo, not the photo"
            ),
        )
    return located, list(index.archives)


def metadata_archives(sources: tuple[str, ...], images: str) -> list:
    """webdataset: the metadata files are the archives (container = file position), and like every
    image they must lie inside the images folder."""
    from data_pipelines import archives
    from data_pipelines.ingest.image_files import resolve_inside

    root = os.path.realpath(images)
    out = []
    for path in sources:
        resolved = resolve_inside(root, os.path.abspath(path))
        if resolved is None:
            raise errors.ConfigError(
                f"{path}: outside the images folder {images}; expected the shards inside --images"
            )
        out.append(archives.Archive("tar", (resolved,)))
    return out


def _drop_duplicates(
    table: pd.DataFrame, config: IngestConfig, sources: tuple[str, ...], skips: SkipLog
) -> pd.DataFrame:
    """Keeps the first row of each photo id; the first `log_first_skips` others are logged."""
    dup = table["photo_id"].duplicated(keep="first").to_numpy()
    if not dup.any():
        return table
    skip_rows(
        skips,
        rcommon.DUPLICATE_ID,
        table.loc[dup],
        sources,
        config.log_first_skips,
        lambda row: f"photo id {row.photo_id} seen before",
    )
    return table.loc[~dup].reset_index(drop=True)


def skip_rows(
    skips: SkipLog,
    reason: str,
    rows: pd.DataFrame,
    sources: tuple[str, ...],
    log_first: int,
    detail: Callable[[Any], str],
) -> None:
    """Counts ``rows`` (of the plan's table: file_index, line, ...) as skipped for ``reason``; the
    first ``log_first`` are logged with their file:line and ``detail(row)``, the rest only counted."""
    for row in rows.head(log_first).itertuples():
        skips.add(reason, sources[row.file_index], int(row.line), detail(row))
    skips.counts[reason] += len(rows) - min(len(rows), log_first)


def join_outdoor_probabilities(table: pd.DataFrame, autotags_paths, max_line_bytes: int) -> pd.DataFrame:
    """Fills unknown outdoor probabilities from YFCC100M autotags files (first file wins)."""
    for path in autotags_paths:
        tags, counts = read_outdoor_probabilities(path, max_line_bytes)
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
