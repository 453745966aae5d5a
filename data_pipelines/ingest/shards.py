"""Phase 2 of ingestion: planned shards to TFRecord files, in a process pool, resumably.

A worker reads, decodes and re-encodes each photo of its shard (missing or bad images, and paths
outside the images folder or to anything but a regular file, are counted, never fatal:
``image_files``), writes ``records/<shard file>`` under a temporary name, renames it into place, then
writes the shard's status ``_work/shards/<shard file>.json``. A shard is done when both exist, so a
killed run redoes only unfinished shards. The worker records the shard's size and SHA-256 in its
status (and so in ``manifest.json``) once, as it writes it: hashing reads the file again at about
1 s per GB on one core, small next to decoding and re-encoding its photos. A rerun checks each
finished shard against its status, size and SHA-256 (``mesh.integrity.check_written``), before it
counts it as done: rerunning `geoloc ingest` with the same arguments on a finished data set is its
full verification (about 1 s per GB of shards); training checks only the sizes, at every start
(``data_pipelines.dataset`` says why). ``shard_tasks`` (what is left to do), ``write_shard`` (one
shard) and ``ordered_statuses`` (all of them, checked) are the steps both engines run: ``run_shards``
here in a process pool, ``beam_pipeline`` as Beam transforms.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import secrets
import socket
import time
from typing import Any

import pandas as pd

from data_pipelines import errors, splits
from data_pipelines.child_processes import spawn_pool
from data_pipelines.config import IngestConfig
from data_pipelines.ingest import image_files, layout
from data_pipelines.ingest.plan import PlannedShard
from data_pipelines.readers import SkipLog
from data_pipelines.readers import common as rcommon
from mesh.atomic import write_json_atomic
from mesh.integrity import check_written
from mesh.progress import Progress

log = logging.getLogger("data_pipelines.ingest")

#: In the names of half-written shards; files with it are removed once every shard is finished.
TMP_MARK = ".tmp-"


@dataclasses.dataclass
class ShardTask:
    """What a worker needs for one shard (plain values: it crosses a process boundary)."""

    file_name: str
    split: str
    index: int
    records_dir: str
    status_path: str
    images_dir: str
    max_image_side: int
    jpeg_quality: int
    max_pixels: int
    log_first_skips: int
    metadata_paths: tuple[str, ...]
    rows: dict  # column -> numpy array (the shard's candidate rows, in order)
    archives: tuple = ()  # data_pipelines.archives.Archive by container (images in archives)


def _tmp_name(path: str) -> str:
    """A temporary name beside `path`, unique across the processes and machines sharing the output
    folder. TFRecordWriter writes to a path, not to a file object, so mesh.atomic's helpers do not
    fit here."""
    return f"{path}{TMP_MARK}{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def write_shard(task: ShardTask) -> dict:
    """Reads, re-encodes and writes one shard; returns (and stores) its status. Never raises on
    bad photos: they are counted as missing_image / outside_images / not_a_file / bad_image."""
    import tensorflow as tf  # The workers are the only ingestion code that needs TensorFlow.

    from data_pipelines import images, records

    started = time.monotonic()
    skips = SkipLog(task.log_first_skips)
    r = task.rows
    skipped_rows, written = [], 0
    final = os.path.join(task.records_dir, task.file_name)
    tmp = _tmp_name(final)
    images_root = os.path.realpath(task.images_dir)
    in_archives = None
    if task.archives:
        from data_pipelines.archives import ArchiveReader

        in_archives = ArchiveReader(task.archives)
    with tf.io.TFRecordWriter(tmp) as writer:
        for j in range(len(r["row_id"])):
            source = task.metadata_paths[int(r["file_index"][j])]
            line = int(r["line"][j])
            container = int(r["container"][j])
            try:
                if container < 0:
                    data = image_files.read_image_file(images_root, r["image_path"][j])
                elif in_archives is None:
                    raise image_files.ImageSkipped(
                        rcommon.MISSING_IMAGE, f"{r['image_path'][j]}: archive {container} is not known"
                    )
                else:
                    data = in_archives.read(
                        container, r["image_path"][j], int(r["offset"][j]), int(r["size"][j])
                    )
            except image_files.ImageSkipped as e:
                skips.add(e.reason, source, line, e.detail)
                skipped_rows.append(int(r["row_id"][j]))
                continue
            try:
                jpeg, _, _ = images.reencode_jpeg(
                    data, task.max_image_side, task.jpeg_quality, task.max_pixels
                )
            except images.BadImage as e:
                path = (
                    os.path.join(task.images_dir, r["image_path"][j])
                    if container < 0
                    else f"{task.archives[container].parts[0]}: member {r['image_path'][j]}"
                )
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
    if in_archives is not None:
        in_archives.close()
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
    write_json_atomic(task.status_path, status)
    return status


def shard_tasks(
    config: IngestConfig,
    table: pd.DataFrame,
    plan: list[PlannedShard],
    out_dir: str,
    sources: tuple[str, ...],
    archives: list,
) -> tuple[list[ShardTask], dict[str, dict]]:
    """The plan's unfinished shards as tasks, and the statuses of its finished ones by file name.

    A finished shard is checked against its status (size and SHA-256) before it is counted: a shard
    truncated or replaced since it was written is one ``WrittenFileError`` line, not a data set
    whose manifest vouches for records it does not hold."""
    records_dir, status_dir = layout.records_dir(out_dir), layout.shard_status_dir(out_dir)
    os.makedirs(records_dir, exist_ok=True)
    os.makedirs(status_dir, exist_ok=True)
    columns = [*rcommon.COLUMNS, "file_index", "row_id"]  # the reader's columns + the plan's
    arrays = {c: table[c].to_numpy() for c in columns}
    statuses, tasks = {}, []
    for shard in plan:
        name = shard.file_name(config.dataset_name)
        status_path = os.path.join(status_dir, name + ".json")
        if os.path.exists(status_path) and os.path.exists(os.path.join(records_dir, name)):
            with open(status_path) as f:
                status = statuses[name] = json.load(f)
            entry = {"bytes": status["num_bytes"], "sha256": status["sha256"]} if "sha256" in status else None
            remedy = f"delete it and {status_path}, then rerun to write that shard again"
            check_written(os.path.join(records_dir, name), entry, remedy)
            continue
        tasks.append(
            ShardTask(
                name,
                shard.split,
                shard.index,
                records_dir,
                status_path,
                config.images_folder,
                config.max_image_side,
                config.jpeg_quality,
                config.max_pixels,
                config.log_first_skips,
                sources,
                {c: a[shard.rows] for c, a in arrays.items()},
                tuple(archives),
            )
        )
    return tasks, statuses


def run_shards(
    config: IngestConfig,
    table: pd.DataFrame,
    plan: list[PlannedShard],
    out_dir: str,
    sources: tuple[str, ...],
    archives: list,
) -> list[dict]:
    """Writes the unfinished shards in a process pool; returns the statuses of every shard of the
    plan, in plan order. ``sources`` name the rows' files in messages; ``archives`` hold the images
    of rows with a container."""
    tasks, statuses = shard_tasks(config, table, plan, out_dir, sources, archives)
    if statuses:
        log.info("resuming: %d of %d shards already written", len(statuses), len(plan))
    workers = min(config.num_workers, len(tasks))
    if workers == 1:
        import tensorflow  # noqa: F401  (import cost outside the per-shard timing and the rate)
    progress = Progress(
        sum(len(t.rows["row_id"]) for t in tasks), "photos", "images", enabled=bool(tasks), log=log
    )

    def report(status, task):
        statuses[status["file"]] = status
        progress.update(len(task.rows["row_id"]), note=f"{len(statuses)}/{len(plan)} shards")

    with progress:
        if workers <= 1:
            for task in tasks:
                report(write_shard(task), task)
            return ordered_statuses(config, plan, statuses, out_dir)
        try:
            with spawn_pool(workers) as pool:
                futures = {pool.submit(write_shard, task): task for task in tasks}
                for future in concurrent.futures.as_completed(futures):
                    report(future.result(), futures[future])
        except concurrent.futures.process.BrokenProcessPool as e:
            raise errors.DatasetError(
                f"{out_dir}: an ingestion worker process died ({e}); finished shards are kept, "
                "rerun to resume (expected: enough memory per worker, and a main script that can be "
                "re-imported by spawned processes, i.e. not stdin)"
            ) from None
    return ordered_statuses(config, plan, statuses, out_dir)


def ordered_statuses(
    config: IngestConfig, plan: list[PlannedShard], statuses: dict[str, dict], out_dir: str
) -> list[dict]:
    """Every shard's status in plan order; an error naming the first shards without one."""
    names = [shard.file_name(config.dataset_name) for shard in plan]
    missing = [n for n in names if n not in statuses]
    if missing:  # Cannot happen after a finished run; guards a shared folder edited meanwhile.
        raise errors.DatasetError(
            f"{out_dir}: shards {missing[:3]} have no status; expected every shard finished, rerun to resume"
        )
    return [statuses[n] for n in names]


def remove_half_written(out_dir: str) -> None:
    """Removes the temporaries of killed runs. Only once every shard is finished: then nobody else
    writes here."""
    for folder in (layout.records_dir(out_dir), layout.shard_status_dir(out_dir)):
        for name in os.listdir(folder):
            if TMP_MARK in name or (name.startswith(".") and name.endswith(".tmp")):
                os.remove(os.path.join(folder, name))


def manifest(config: IngestConfig, statuses: list[dict], tables: dict[str, dict]) -> dict:
    """``manifest.json``: each split's shards in order, with counts, sizes and sha256, and its table
    with ``table_file``, the table's ``mesh.integrity.file_entry`` (``tables``, by split name)."""
    out: dict[str, Any] = {
        "dataset_name": config.dataset_name,
        "schema_version": layout.SCHEMA_VERSION,
        "records_dir": layout.RECORDS_DIR,
        "tables_dir": layout.TABLES_DIR,
        "splits": {},
    }
    for name in splits.SPLITS:
        shards = [
            {k: s[k] for k in ("file", "num_examples", "num_bytes", "sha256")}
            for s in statuses
            if s["split"] == name
        ]
        out["splits"][name] = {
            "num_examples": sum(s["num_examples"] for s in shards),
            "table": layout.table_path(name),
            "table_file": tables[name],
            "shards": shards,
        }
    return out


def steady_rate(statuses: list[dict], workers: int) -> float:
    """Photos per second of all workers together, from the per-shard worker times."""
    timed = [s for s in statuses if s.get("seconds")]
    seconds = sum(s["seconds"] for s in timed)
    photos = sum(s["num_examples"] for s in timed)
    return photos / seconds * max(1, min(workers, len(timed))) if seconds > 0 else 0.0
