"""Ingestion: metadata files + image folder -> sharded TFRecords, per-split tables, summary.json.

    python -m data_pipelines.ingest --metadata=FILE[,FILE...] --images=DIR --out=DIR

Two phases, both resumable:

1. *Metadata* (one process per metadata file): stream every line, keep or count it by skip
   reason, hash user ids with the data set's salt. Each file's kept rows go to
   ``_work/parsed/NNNNN.parquet`` (+ ``.json`` with its counts). Then duplicates (first occurrence
   kept, in file order) and the stable splits (``splits``) are decided over all files at once.
2. *Images* (a process pool): the rows of each split, in file order, are cut into shards of
   ``examples_per_shard`` candidates. A worker reads, decodes and re-encodes each image (missing
   or bad images are counted, never fatal), writes ``records/<name>.tfrecord-XXXXX-of-YYYYY``
   under a temporary name, renames it into place, then writes ``_work/shards/<file>.json``.

A shard is done when its json exists, so a killed run rerun with the same settings redoes only
unfinished shards; since the shard plan depends on the metadata and settings alone (not on the
number of workers or timing), the result is byte-identical to an uninterrupted run. Finally the
per-split Parquet tables (``tables/<split>.parquet``, no pixels), ``manifest.json``, the tfds
metadata (``records/dataset_info.json``: ``tfds.builder_from_directory(out/records)`` reads the
data set) and, last, ``summary.json`` are written, each atomically.

``lines_read == examples_written + sum(skipped)`` holds by construction and is checked.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import math
import multiprocessing
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from data_pipelines import errors, splits
from mesh.atomic import write_atomic, write_text_atomic
from data_pipelines.config import IngestConfig, SplitConfig
from data_pipelines.hashing import UserHasher
from data_pipelines.readers import common as rcommon
from data_pipelines.readers import SKIP_REASONS, SkipLog, read_metadata_file
from data_pipelines.readers.autotags import read_outdoor_probabilities

log = logging.getLogger("data_pipelines.ingest")

SCHEMA_VERSION = 1
RECORDS_DIR = "records"
TABLES_DIR = "tables"
WORK_DIR = "_work"
FILE_FORMAT = "tfrecord"
PROGRESS_EVERY_S = 10.0
TFDS_SCRATCH_PREFIX = ".tfds_metadata-"  # scratch folders beside records/


# --------------------------------------------------------------------------- small helpers


def _tmp_name(path: str) -> str:
    """A temporary name unique across processes and machines sharing the output folder."""
    return f"{path}.tmp-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def atomic_write_json(path: str, value) -> None:
    write_text_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def atomic_write_parquet(df: pd.DataFrame, path: str) -> None:
    write_atomic(path, lambda f: df.to_parquet(f, index=False))


def shard_file_name(dataset_name: str, split: str, index: int, count: int) -> str:
    """tfds's default template ``{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}``."""
    return f"{dataset_name}-{split}.{FILE_FORMAT}-{index:05d}-of-{count:05d}"


def _fmt_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    return (
        time.strftime("%H:%M:%S", time.gmtime(seconds))
        if seconds < 86400
        else f"{seconds / 86400:.1f}d"
    )


def _fingerprint(config: IngestConfig) -> dict:
    """Settings that determine the output; a resumed run must match them (workers do not count)."""
    sources = []
    for path in config.metadata_paths:
        try:
            size = os.path.getsize(path)
        except OSError:
            raise errors.ConfigError(
                f"--metadata: {path}: no such file; expected a metadata file "
                "(YFCC100M, Multimedia Commons or CSV)"
            ) from None
        sources.append({"path": os.path.abspath(path), "bytes": size})
    return {
        "schema_version": SCHEMA_VERSION,
        "sources": sources,
        "images_dir": os.path.abspath(config.images_dir),
        "image_path_template": config.image_path_template,
        "max_side": config.max_side,
        "jpeg_quality": config.jpeg_quality,
        "examples_per_shard": config.examples_per_shard,
        "splits": dataclasses.asdict(config.splits),
        "autotags": [
            {"path": os.path.abspath(p), "bytes": os.path.getsize(p)} for p in config.autotags_paths
        ],
        "dataset_name": config.dataset_name,
    }


def _init_metadata(config: IngestConfig) -> dict:
    """Creates or checks ``metadata.json`` (settings + salt). Returns it."""
    path = os.path.join(config.out_dir, "metadata.json")
    fingerprint = _fingerprint(config)
    if os.path.exists(path):
        with open(path) as f:
            existing = json.load(f)
        for key, value in fingerprint.items():
            if existing.get("settings", {}).get(key) != value:
                raise errors.ConfigError(
                    f"--out={config.out_dir}: holds a data set built with {key}="
                    f"{existing.get('settings', {}).get(key)!r}, now {value!r}; expected the same "
                    "settings to resume, or an empty output folder"
                )
        if config.salt is not None and config.salt != existing["user_hash_salt"]:
            raise errors.ConfigError(
                f"--salt differs from the salt in {path}; expected the same salt "
                "to resume, or an empty output folder"
            )
        return existing
    metadata = {
        "dataset_name": config.dataset_name,
        "description": "Geotagged photos for geoloc (paper §2): JPEG <= max_side px, photo id, "
        "salted user hash, posting time, lat/lon (1e-7 deg), accuracy, outdoor "
        "probability. Labels per mesh are joined at read time.",
        "user_hash_salt": config.salt if config.salt is not None else secrets.token_hex(16),
        "settings": fingerprint,
        "splits": {"names": list(splits.SPLITS), "m1_validation": list(splits.M1_VAL_SPLITS)},
    }
    atomic_write_json(path, metadata)
    return metadata


# --------------------------------------------------------------------------- phase 1: metadata


def parse_metadata_file(
    index: int, path: str, template: str | None, salt: str, work_dir: str, log_first_skips: int
) -> dict:
    """Parses one metadata file into ``work_dir/parsed/NNNNN.parquet`` + ``.json``; resumable."""
    stem = os.path.join(work_dir, "parsed", f"{index:05d}")
    if os.path.exists(stem + ".json"):
        with open(stem + ".json") as f:
            return json.load(f)
    skips = SkipLog(log_first_skips)
    hasher = UserHasher(salt)
    started = time.monotonic()
    last = [started]

    def progress(lines, position, size):
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            rate = lines / max(now - started, 1e-9)
            frac = position / size if size else 0.0
            eta = (now - started) * (1 - frac) / frac if frac > 0 else float("inf")
            log.info(
                "%s: %d lines (%.0f lines/s), %.1f%% of the file, ETA %s",
                path,
                lines,
                rate,
                100 * frac,
                _fmt_eta(eta),
            )

    chunks, lines_read = [], 0
    try:
        for lines_read, columns in read_metadata_file(
            path, template=template, user_hasher=hasher, skips=skips, on_progress=progress
        ):
            chunks.append(pd.DataFrame(columns))
    except (OSError, EOFError) as e:  # e.g. a truncated .bz2: stop with a clear message.
        raise errors.DatasetError(
            f"{path}: read error after line {lines_read} ({e}); expected an "
            "intact plain, .bz2 or .gz file"
        ) from None
    df = (
        pd.concat(chunks, ignore_index=True)
        if chunks
        else pd.DataFrame({c: [] for c in rcommon.COLUMNS})
    )
    atomic_write_parquet(df, stem + ".parquet")
    from data_pipelines.readers import detect_layout

    info = {
        "path": path,
        "layout": detect_layout(path),
        "lines_read": int(lines_read),
        "kept": int(len(df)),
        "skips": skips.to_json(),
        "seconds": round(time.monotonic() - started, 3),
    }
    atomic_write_json(stem + ".json", info)
    log.info(
        "%s: %s layout, %d lines, %d kept (%.0f lines/s)",
        path,
        info["layout"],
        lines_read,
        len(df),
        lines_read / max(info["seconds"], 1e-9),
    )
    return info


def _spawn_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    # spawn, not fork: the parent may hold TensorFlow threads (tests, runner), which fork breaks.
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn")
    )


def _parse_all(config: IngestConfig, salt: str, work_dir: str) -> list[dict]:
    os.makedirs(os.path.join(work_dir, "parsed"), exist_ok=True)
    args = [
        (i, p, config.image_path_template, salt, work_dir, config.log_first_skips)
        for i, p in enumerate(config.metadata_paths)
    ]
    workers = min(config.num_workers, len(args))
    if workers <= 1:
        return [parse_metadata_file(*a) for a in args]
    with _spawn_pool(workers) as pool:
        return list(pool.map(parse_metadata_file, *zip(*args)))


def _plan(config: IngestConfig, infos: list[dict], work_dir: str, skips: SkipLog):
    """Candidates (all files, file order) with split and shard assignment; counts duplicates."""
    frames = []
    for i, _ in enumerate(infos):
        df = pd.read_parquet(os.path.join(work_dir, "parsed", f"{i:05d}.parquet"))
        df["file_index"] = np.int32(i)
        frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    table["photo_id"] = table["photo_id"].astype(str)
    dup = table["photo_id"].duplicated(keep="first").to_numpy()
    if dup.any():
        for row in (
            table.loc[dup, ["file_index", "line", "photo_id"]]
            .head(config.log_first_skips)
            .itertuples()
        ):
            skips.add(
                rcommon.DUPLICATE_ID,
                config.metadata_paths[row.file_index],
                int(row.line),
                f"photo id {row.photo_id} seen before",
            )
        skips.counts[rcommon.DUPLICATE_ID] += int(dup.sum()) - min(
            int(dup.sum()), config.log_first_skips
        )
        table = table.loc[~dup].reset_index(drop=True)
    table = _join_outdoor_probabilities(table, config.autotags_paths)
    keys = table["user_hash"] if config.splits.by_user else table["photo_id"]
    table["split"] = splits.split_codes(keys.to_numpy(), config.splits)
    table["row_id"] = np.arange(len(table), dtype=np.int64)
    plan = []  # (split name, shard index, shard count, row slice of the split's rows)
    per_split = {}
    for code, name in enumerate(splits.SPLITS):
        rows = np.flatnonzero(table["split"].to_numpy() == code)
        per_split[name] = rows
        count = math.ceil(len(rows) / config.examples_per_shard)
        for k in range(count):
            plan.append(
                (
                    name,
                    k,
                    count,
                    rows[k * config.examples_per_shard : (k + 1) * config.examples_per_shard],
                )
            )
    return table, plan


def _join_outdoor_probabilities(table: pd.DataFrame, autotags_paths) -> pd.DataFrame:
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
            path, counts["lines"], counts["bad_lines"], counts["with_scene_tag"], int(fill.sum()))
    return table


# --------------------------------------------------------------------------- phase 2: images


@dataclasses.dataclass
class ShardTask:
    split: str
    index: int
    count: int
    file_name: str
    records_dir: str
    status_path: str
    images_dir: str
    max_side: int
    jpeg_quality: int
    log_first_skips: int
    metadata_paths: tuple[str, ...]
    rows: dict  # column -> numpy array (the shard's candidate rows, in order)


def write_shard(task: ShardTask) -> dict:
    """Reads, re-encodes and writes one shard; returns (and stores) its status. Never raises on
    bad photos: they are counted as missing_image / bad_image."""
    import tensorflow as tf  # The workers are the only ingestion code that needs TensorFlow.

    from data_pipelines import images, records

    started = time.monotonic()
    skips = SkipLog(task.log_first_skips)
    r = task.rows
    skipped_rows, written = [], 0
    final = os.path.join(task.records_dir, task.file_name)
    tmp = _tmp_name(final)
    with tf.io.TFRecordWriter(tmp) as writer:
        for j in range(len(r["row_id"])):
            source = task.metadata_paths[int(r["file_index"][j])]
            line = int(r["line"][j])
            path = r["image_path"][j]
            if not os.path.isabs(path):
                path = os.path.join(task.images_dir, path)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                skips.add(rcommon.MISSING_IMAGE, source, line, f"{path}: {e.strerror}")
                skipped_rows.append(int(r["row_id"][j]))
                continue
            try:
                jpeg, _, _ = images.reencode_jpeg(data, task.max_side, task.jpeg_quality)
            except images.BadImage as e:
                skips.add(rcommon.BAD_IMAGE, source, line, f"{path}: {e}")
                skipped_rows.append(int(r["row_id"][j]))
                continue
            writer.write(
                records.make_example(
                    tf,
                    jpeg,
                    r["photo_id"][j],
                    r["user_hash"][j],
                    int(r["posted_at"][j]),
                    int(r["lat_e7"][j]),
                    int(r["lon_e7"][j]),
                    int(r["accuracy"][j]),
                    float(r["outdoor_prob"][j]),
                )
            )
            written += 1
    os.replace(tmp, final)
    digest = hashlib.sha256()
    with open(final, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    status = {
        "file": task.file_name,
        "split": task.split,
        "shard": task.index,
        "num_examples": written,
        "num_bytes": os.path.getsize(final),
        "sha256": digest.hexdigest(),
        "skipped_rows": skipped_rows,
        "skips": skips.to_json(),
        "candidates": len(r["row_id"]),
        "seconds": round(time.monotonic() - started, 4),
    }
    atomic_write_json(task.status_path, status)
    return status


def _run_shards(
    config: IngestConfig, table: pd.DataFrame, plan, out_dir: str, work_dir: str
) -> list[dict]:
    records_dir = os.path.join(out_dir, RECORDS_DIR)
    status_dir = os.path.join(work_dir, "shards")
    os.makedirs(records_dir, exist_ok=True)
    os.makedirs(status_dir, exist_ok=True)
    columns = [*rcommon.COLUMNS, "file_index", "row_id"]  # the reader's columns + the plan's
    arrays = {c: table[c].to_numpy() for c in columns}
    statuses, tasks = {}, []
    for position, (split, index, count, rows) in enumerate(plan):
        if position % config.num_tasks != config.task_index:
            continue
        name = shard_file_name(config.dataset_name, split, index, count)
        status_path = os.path.join(status_dir, name + ".json")
        if os.path.exists(status_path) and os.path.exists(os.path.join(records_dir, name)):
            with open(status_path) as f:
                statuses[name] = json.load(f)
            continue
        tasks.append(
            ShardTask(
                split,
                index,
                count,
                name,
                records_dir,
                status_path,
                config.images_dir,
                config.max_side,
                config.jpeg_quality,
                config.log_first_skips,
                tuple(config.metadata_paths),
                {c: a[rows] for c, a in arrays.items()},
            )
        )
    if statuses:
        log.info("resuming: %d of %d shards already written", len(statuses), len(plan))
    total = sum(len(t.rows["row_id"]) for t in tasks)
    started, last, done_photos = time.monotonic(), time.monotonic(), 0

    def report(status, task):
        nonlocal last, done_photos
        statuses[status["file"]] = status
        done_photos += len(task.rows["row_id"])
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S or done_photos == total:
            last = now
            rate = done_photos / max(now - started, 1e-9)
            log.info(
                "images: %d/%d shards, %d/%d photos (%.1f photos/s), ETA %s",
                len(statuses),
                len(plan),
                done_photos,
                total,
                rate,
                _fmt_eta((total - done_photos) / rate),
            )

    workers = min(config.num_workers, len(tasks))
    if workers <= 1:
        import tensorflow  # noqa: F401  (import cost outside the per-shard timing)

        started = last = time.monotonic()
        for task in tasks:
            report(write_shard(task), task)
    else:
        try:
            with _spawn_pool(workers) as pool:
                futures = {pool.submit(write_shard, task): task for task in tasks}
                for future in concurrent.futures.as_completed(futures):
                    report(future.result(), futures[future])
        except concurrent.futures.process.BrokenProcessPool as e:
            raise errors.DatasetError(
                f"{out_dir}: an ingestion worker process died ({e}); finished shards are kept, rerun "
                "to resume (expected: enough memory per worker, and a main script that can be "
                "re-imported by spawned processes, i.e. not stdin)"
            ) from None
    if config.num_tasks > 1:
        return list(statuses.values())
    missing = [
        n
        for n in (shard_file_name(config.dataset_name, s, i, c) for s, i, c, _ in plan)
        if n not in statuses
    ]
    if missing:  # Cannot happen in one process; guards a shared folder edited meanwhile.
        raise errors.DatasetError(
            f"{out_dir}: shards {missing[:3]} have no status; expected every "
            "shard finished, rerun to resume"
        )
    return [statuses[shard_file_name(config.dataset_name, s, i, c)] for s, i, c, _ in plan]


# --------------------------------------------------------------------------- finalize


def _write_tables(table: pd.DataFrame, plan, statuses: list[dict], out_dir: str) -> dict:
    """Per-split metadata tables in record order: the rows whose photo made it into a shard."""
    tables_dir = os.path.join(out_dir, TABLES_DIR)
    os.makedirs(tables_dir, exist_ok=True)
    skipped = np.zeros(len(table), dtype=bool)
    shard_of = np.full(len(table), -1, dtype=np.int32)
    for (split, index, count, rows), status in zip(plan, statuses):
        shard_of[rows] = index
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
            }
        )
        atomic_write_parquet(out, os.path.join(tables_dir, f"{name}.parquet"))
        counts[name] = int(len(out))
    return counts


def _write_tfds_metadata(config: IngestConfig, manifest: dict, records_dir: str) -> None:
    import tensorflow_datasets as tfds

    from data_pipelines import records

    split_infos = []
    for name, entry in manifest["splits"].items():
        if entry["shards"]:
            split_infos.append(
                tfds.core.SplitInfo(
                    name=name,
                    shard_lengths=[s["num_examples"] for s in entry["shards"]],
                    num_bytes=sum(s["num_bytes"] for s in entry["shards"]),
                )
            )
    if not split_infos:
        return
    # tfds writes its files in place. Let it write them into a scratch folder that holds empty
    # stand-ins of the shards (tfds reads only their names), then rename each into place, so a
    # reader never sees half a dataset_info.json. Scratch folders of killed runs go first.
    parent = os.path.dirname(os.path.abspath(records_dir))
    for name in os.listdir(parent):
        if name.startswith(TFDS_SCRATCH_PREFIX):
            shutil.rmtree(os.path.join(parent, name))
    scratch = tempfile.mkdtemp(prefix=TFDS_SCRATCH_PREFIX, dir=parent)
    try:
        shards = {s["file"] for entry in manifest["splits"].values() for s in entry["shards"]}
        for name in shards:
            open(os.path.join(scratch, name), "xb").close()  # an empty stand-in, never renamed
        tfds.folder_dataset.write_metadata(
            data_dir=scratch,
            features=records.tfds_features(),
            split_infos=split_infos,
            check_data=False,
            description="Geotagged photos for geoloc (multimodal geolocation paper §2); splits "
            "m1_train, m23_train, m23_val (appendix A); M1 validation = m23_train+m23_val.",
        )
        for name in sorted(set(os.listdir(scratch)) - shards):
            os.replace(os.path.join(scratch, name), os.path.join(records_dir, name))
    finally:
        shutil.rmtree(scratch)


def _steady_rate(statuses: list[dict], workers: int) -> float:
    """Photos per second of all workers together, from the per-shard worker times."""
    timed = [s for s in statuses if s.get("seconds")]
    seconds = sum(s["seconds"] for s in timed)
    photos = sum(s["num_examples"] for s in timed)
    return photos / seconds * max(1, min(workers, len(timed))) if seconds > 0 else 0.0


def _metadata_phase(config: IngestConfig):
    """Phase 1 (resumable): parse every metadata file, drop duplicates, decide the splits.

    Returns (infos, skips, table, plan, metadata)."""
    if not os.path.isdir(config.images_dir):
        raise errors.ConfigError(
            f"--images={config.images_dir}: not a folder; expected the folder holding the photos"
        )
    os.makedirs(config.out_dir, exist_ok=True)
    work_dir = os.path.join(config.out_dir, WORK_DIR)
    os.makedirs(work_dir, exist_ok=True)
    metadata = _init_metadata(config)
    infos = _parse_all(config, metadata["user_hash_salt"], work_dir)
    skips = SkipLog(config.log_first_skips)
    for info in infos:
        skips.merge(SkipLog.from_json(info["skips"], config.log_first_skips))
    table, plan = _plan(config, infos, work_dir, skips)
    return infos, skips, table, plan, metadata


def split_coordinates(config: IngestConfig, split: str = splits.M1_TRAIN) -> tuple[np.ndarray, np.ndarray]:
    """lat, lon (degrees) of the photos of one split, from the metadata phase alone (no images).

    This is what the mesh is built on (the M1 training photos, §3.1.1) before any image is
    re-encoded; the later `run_ingestion` with the same config reuses the phase's work. Photos whose
    image later turns out missing or broken are still counted here: the mesh sees the metadata.
    """
    _, _, table, _, _ = _metadata_phase(config)
    rows = table["split"].to_numpy() == splits.SPLITS.index(split)
    scale = rcommon.COORD_SCALE
    return (table["lat_e7"].to_numpy()[rows] / scale, table["lon_e7"].to_numpy()[rows] / scale)


def run_ingestion(config: IngestConfig) -> dict:
    """Runs (or resumes) an ingestion; returns the summary dict also written to summary.json."""
    started = time.monotonic()
    out_dir = config.out_dir
    work_dir = os.path.join(out_dir, WORK_DIR)
    infos, skips, table, plan, metadata = _metadata_phase(config)
    parse_seconds = time.monotonic() - started
    log.info(
        "metadata: %d lines, %d candidates in %d shards",
        sum(i["lines_read"] for i in infos),
        len(table),
        len(plan),
    )

    image_started = time.monotonic()
    statuses = _run_shards(config, table, plan, out_dir, work_dir)
    image_seconds = time.monotonic() - image_started
    if config.num_tasks > 1:  # One machine's part: no tables / manifest / summary yet.
        written = sum(s["num_examples"] for s in statuses)
        log.info(
            "task %d of %d: %d shards, %d examples written; run once more with num_tasks=1 "
            "to finish",
            config.task_index,
            config.num_tasks,
            len(statuses),
            written,
        )
        return {
            "finished": False,
            "task_index": config.task_index,
            "num_tasks": config.num_tasks,
            "shards_written": len(statuses),
            "examples_written": written,
            "photos_per_s_steady": round(_steady_rate(statuses, config.num_workers), 1),
        }
    for status in statuses:
        skips.merge(SkipLog.from_json(status["skips"], config.log_first_skips))

    # Half-written files of killed runs: every shard is finished now, nobody else writes here.
    for folder in (os.path.join(out_dir, RECORDS_DIR), os.path.join(work_dir, "shards")):
        for name in os.listdir(folder):
            if ".tmp-" in name:
                os.remove(os.path.join(folder, name))
    split_counts = _write_tables(table, plan, statuses, out_dir)
    manifest = {
        "dataset_name": config.dataset_name,
        "schema_version": SCHEMA_VERSION,
        "records_dir": RECORDS_DIR,
        "tables_dir": TABLES_DIR,
        "splits": {},
    }
    for name in splits.SPLITS:
        shards = [
            {k: s[k] for k in ("file", "num_examples", "num_bytes", "sha256")}
            for s in statuses
            if s["split"] == name
        ]
        manifest["splits"][name] = {
            "num_examples": sum(s["num_examples"] for s in shards),
            "table": f"{TABLES_DIR}/{name}.parquet",
            "shards": shards,
        }
    atomic_write_json(os.path.join(out_dir, "manifest.json"), manifest)
    _write_tfds_metadata(config, manifest, os.path.join(out_dir, RECORDS_DIR))

    lines_read = sum(i["lines_read"] for i in infos)
    written = sum(s["num_examples"] for s in statuses)
    skipped = {reason: int(skips.counts.get(reason, 0)) for reason in SKIP_REASONS}
    if lines_read != written + sum(skipped.values()) or written != sum(split_counts.values()):
        raise errors.DatasetError(
            f"{out_dir}: counting identity broken: lines_read={lines_read}, examples_written="
            f"{written}, skipped={sum(skipped.values())}, tables={sum(split_counts.values())}; "
            "expected lines_read == examples_written + sum(skipped)"
        )
    seconds = time.monotonic() - started
    summary = {
        "finished": True,
        "lines_read": lines_read,
        "examples_written": written,
        "skipped": skipped,
        "skipped_examples": {k: v for k, v in skips.examples.items() if v},
        "splits": split_counts,
        "m1_validation": sum(split_counts[s] for s in splits.M1_VAL_SPLITS),
        "files": [
            {"path": i["path"], "layout": i["layout"], "lines_read": i["lines_read"]} for i in infos
        ],
        "num_shards": len(plan),
        "timing": {
            "seconds": round(seconds, 3),
            "metadata_seconds": round(parse_seconds, 3),
            "image_seconds": round(image_seconds, 3),
            "lines_per_s": round(lines_read / max(parse_seconds, 1e-9), 1),
            "photos_per_s": round(written / max(image_seconds, 1e-9), 1),
            # Without process start-up and TensorFlow import (what 14 M photos see):
            "photos_per_s_steady": round(_steady_rate(statuses, config.num_workers), 1),
            "workers": config.num_workers,
        },
    }
    atomic_write_json(os.path.join(out_dir, "summary.json"), summary)
    log.info(
        "done: %d lines, %d examples written, %d skipped, %.1f photos/s",
        lines_read,
        written,
        sum(skipped.values()),
        summary["timing"]["photos_per_s"],
    )
    return summary


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m data_pipelines.ingest",
        description="Ingest a geotagged photo collection (YFCC100M, Multimedia Commons or CSV) "
        "into sharded TFRecords + tables (resumable: rerun the same command).",
    )
    p.add_argument(
        "--metadata",
        required=True,
        help="metadata file(s), comma-separated; .bz2/.gz read transparently",
    )
    p.add_argument("--images", required=True, help="folder holding the photos")
    p.add_argument(
        "--autotags",
        default="",
        help="YFCC100M autotags file(s), comma-separated: indoor/outdoor confidences give the "
        "outdoor probability (paper §4.1.2)",
    )
    p.add_argument("--out", required=True, help="output folder of the data set")
    p.add_argument(
        "--image_path_template",
        default=None,
        help="image path under --images, fields {id} {hash} {ext} {secret} {server} "
        "{farm} with slices, e.g. '{hash[0:3]}/{hash[3:6]}/{hash}.jpg'",
    )
    p.add_argument(
        "--max_side",
        type=int,
        default=IngestConfig.max_side,
        help="longest image side kept, pixels",
    )
    p.add_argument("--jpeg_quality", type=int, default=IngestConfig.jpeg_quality)
    p.add_argument("--examples_per_shard", type=int, default=IngestConfig.examples_per_shard)
    p.add_argument("--workers", type=int, default=0, help="processes; 0 = all cores")
    p.add_argument("--salt", default=None, help="user-id hashing salt (default: random, stored)")
    p.add_argument(
        "--task_index", type=int, default=0, help="this machine's index when --num_tasks > 1"
    )
    p.add_argument(
        "--num_tasks",
        type=int,
        default=1,
        help="machines sharing the output folder (each writes every num_tasks-th "
        "shard); finish with one run with --num_tasks=1",
    )
    p.add_argument("--split_seed", type=int, default=0)
    p.add_argument("--split_by_user", action="store_true")
    p.add_argument("--m1_train_weight", type=float, default=SplitConfig.m1_train_weight)
    p.add_argument("--m1_val_weight", type=float, default=SplitConfig.m1_val_weight)
    p.add_argument("--m23_val_fraction", type=float, default=SplitConfig.m23_val_fraction)
    return p


def config_from_args(args: argparse.Namespace) -> IngestConfig:
    return IngestConfig(
        metadata_paths=tuple(p for p in args.metadata.split(",") if p),
        autotags_paths=tuple(p for p in args.autotags.split(",") if p),
        images_dir=args.images,
        out_dir=args.out,
        image_path_template=args.image_path_template,
        max_side=args.max_side,
        jpeg_quality=args.jpeg_quality,
        examples_per_shard=args.examples_per_shard,
        workers=args.workers,
        salt=args.salt,
        task_index=args.task_index,
        num_tasks=args.num_tasks,
        splits=SplitConfig(
            m1_train_weight=args.m1_train_weight,
            m1_val_weight=args.m1_val_weight,
            m23_val_fraction=args.m23_val_fraction,
            seed=args.split_seed,
            by_user=args.split_by_user,
        ),
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 2 bad input) without a traceback."""
    args = _parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        summary = run_ingestion(config_from_args(args))
    except errors.DataPipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    keys = (
        ("lines_read", "examples_written", "skipped", "splits")
        if summary["finished"]
        else ("task_index", "num_tasks", "shards_written", "examples_written")
    )
    print(json.dumps({k: summary[k] for k in keys}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
