"""Phase 1 of ingestion: each metadata file, streamed, to the rows it keeps and its skip counts.

One process per file. Each line is kept or counted by skip reason, and user ids are hashed with the
data set's salt; a file's kept rows go to ``_work/parsed/NNNNN.parquet`` (+ ``.json`` with its
counts, written last). A file whose ``.json`` exists is done, so a rerun parses only the rest.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import multiprocessing
import os
import time
from typing import Any

import pandas as pd

from data_pipelines.child_processes import spawn_pool
from data_pipelines.config import IngestConfig
from data_pipelines.hashing import UserHasher
from data_pipelines.ingest import layout
from data_pipelines.readers import SkipLog, detect_layout, read_metadata_file
from data_pipelines.readers import common as rcommon
from data_pipelines.readers.formats import Format, ReadOptions
from mesh.atomic import write_json_atomic, write_parquet_atomic
from mesh.progress import Progress

log = logging.getLogger("data_pipelines.ingest")


def parse_metadata_file(
    index: int,
    path: str,
    template: str | None,
    salt: str,
    out_dir: str,
    log_first_skips: int,
    fmt: str,
    options: ReadOptions,
) -> dict:
    """Parses one metadata file (``fmt``: a resolved format name) into its ``_work/parsed`` state;
    returns its counts (resumable)."""
    stem = layout.parsed_stem(out_dir, index)
    if os.path.exists(stem + ".json"):
        with open(stem + ".json") as f:
            return json.load(f)
    skips = SkipLog(log_first_skips)
    hasher = UserHasher(salt)
    # The readers report how far into the file they are: bytes, or photos of an images folder.
    # Bars only in the main process: the workers of a pool would draw over each other.
    unit = "photos" if fmt == "exif" else "B"
    progress = Progress(
        None,
        unit,
        f"parse {os.path.basename(path)}",
        bar=None if multiprocessing.parent_process() is None else False,
        log=log,
        final_line=False,  # the summary line below
        scale=unit == "B",
    )

    def on_progress(lines, position, size):
        progress.set_total(size)
        progress.update(position - progress.done, note=f"{lines} lines")

    chunks, lines_read = [], 0
    # A file that cannot be read on (a truncated .bz2) stops the run: the readers raise a
    # DatasetError naming the last line read whole (readers.common.read_error).
    with progress:
        for lines_read, columns in read_metadata_file(  # noqa: B007 - the count after the loop
            path,
            template=template,
            user_hasher=hasher,
            skips=skips,
            fmt=fmt,
            options=options,
            on_progress=on_progress,
        ):
            chunks.append(pd.DataFrame(columns))
    df = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame({c: [] for c in rcommon.COLUMNS})
    write_parquet_atomic(stem + ".parquet", df)
    info: dict[str, Any] = {
        "path": path,
        "format": fmt,
        # The format read it; only a YFCC100M file has a finer layout (23 or 25 fields). Detecting
        # again would name what auto-detection would pick, not what --format chose.
        "layout": detect_layout(path, options.limits.max_line_bytes) if fmt == "yfcc100m" else fmt,
        "lines_read": int(lines_read),
        "kept": int(len(df)),
        "skips": skips.to_json(),
        "seconds": round(time.monotonic() - progress.started, 3),
    }
    write_json_atomic(stem + ".json", info)
    log.info(
        "%s: %s layout, %d lines, %d kept (%.0f lines/s)",
        path,
        info["layout"],
        lines_read,
        len(df),
        lines_read / max(info["seconds"], 1e-9),
    )
    return info


def parse_tasks(config: IngestConfig, each: tuple[Format, ...], salt: str, out_dir: str) -> list[tuple]:
    """The arguments of ``parse_metadata_file`` for every metadata file, each in its format
    (``each``, from ``formats.resolve``). For a format without metadata files (exif) the images
    folder is the one "file"."""
    os.makedirs(os.path.dirname(layout.parsed_stem(out_dir, 0)), exist_ok=True)
    root = os.path.realpath(config.images_folder)
    return [
        (
            i,
            p,
            config.image_path_template,
            salt,
            out_dir,
            config.log_first_skips,
            fmt.name,
            ReadOptions(root, config.album_key, config.max_pixels, i, limits(config)),
        )
        for i, (p, fmt) in enumerate(zip(metadata_sources(config, each[0]), each))
    ]


def parse_all(config: IngestConfig, tasks: list[tuple]) -> list[dict]:
    """Parses every metadata file of ``tasks`` (``parse_tasks``), one process each up to the
    worker count; their counts, in file order."""
    workers = min(config.num_workers, len(tasks))
    if workers <= 1:  # each file shows its own progress
        return [parse_metadata_file(*a) for a in tasks]
    infos: list[dict] = [{}] * len(tasks)
    with spawn_pool(workers) as pool, Progress(len(tasks), "files", "parse", log=log) as progress:
        futures = {pool.submit(parse_metadata_file, *a): i for i, a in enumerate(tasks)}
        for future in concurrent.futures.as_completed(futures):
            infos[futures[future]] = future.result()
            progress.update(1)
    return infos


def limits(config: IngestConfig) -> rcommon.Limits:
    """The readers' line, record and field limits of ``config``."""
    return rcommon.Limits(config.max_line_bytes, config.max_field_bytes)


def metadata_sources(config: IngestConfig, fmt: Format) -> tuple[str, ...]:
    """The "files" phase 1 reads: the metadata files, or the images folder for exif."""
    return tuple(config.metadata) if fmt.needs_metadata else (config.images_folder,)
