"""The ingestion, phase after phase, and its summary: ``run_ingestion`` and ``split_coordinates``.

Each step is one function that both engines call: ``metadata_tasks``, ``metadata_phase`` and
``finish`` here, the shard steps in ``shards``; the local engine runs them in ``run_ingestion``,
the Beam engine as transforms (``beam_pipeline``).

``lines_read == examples_written + sum(skipped)`` holds by construction and is checked.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np
import pandas as pd

from data_pipelines import errors, splits
from data_pipelines.config import IngestConfig
from data_pipelines.ingest import layout
from data_pipelines.ingest.parse import metadata_sources, parse_all, parse_tasks
from data_pipelines.ingest.plan import PlannedShard, plan_shards
from data_pipelines.ingest.settings_record import init_metadata
from data_pipelines.ingest.shards import manifest, remove_half_written, run_shards, steady_rate
from data_pipelines.ingest.tables import write_tables
from data_pipelines.ingest.tfds_metadata import write_tfds_metadata
from data_pipelines.readers import SKIP_REASONS, SkipLog, formats
from data_pipelines.readers import common as rcommon
from mesh.atomic import write_json_atomic
from mesh.integrity import file_entry

log = logging.getLogger("data_pipelines.ingest")


def resolve_sources(config: IngestConfig) -> IngestConfig:
    """The config with its files in place: the demo collection's (generated on first use) for
    source=demo, else the given paths with ``~`` expanded."""
    if config.source == "demo":
        from data_pipelines.demo.collection import with_demo_collection

        return with_demo_collection(config)
    return dataclasses.replace(
        config,
        metadata=tuple(os.path.expanduser(p) for p in config.metadata),
        images=os.path.expanduser(config.images_folder),
        autotags=tuple(os.path.expanduser(p) for p in config.autotags),
    )


@dataclasses.dataclass
class _MetadataPhase:
    config: IngestConfig  # with its sources resolved
    infos: list[dict]  # one per metadata file: its counts
    skips: SkipLog
    table: pd.DataFrame
    plan: list[PlannedShard]
    fmt: formats.Format
    sources: tuple[str, ...]  # what phase 1 read: the metadata files (exif: the images folder)
    archives: list  # data_pipelines.archives.Archive holding the images, in container order


def metadata_tasks(config: IngestConfig, out_dir: str) -> tuple[IngestConfig, formats.Format, list[tuple]]:
    """Phase 1's start: the config with its sources resolved, the format that says where the
    images are (the same for every file), and the ``parse_metadata_file`` arguments of every
    metadata file, after ``metadata.json`` (settings, salt) is written or
    checked. Every worker that parses gets the salt from here, so all hash user ids alike."""
    config = resolve_sources(config)
    if not os.path.isdir(config.images_folder):
        raise errors.ConfigError(
            f"{config.images}: not a folder; expected the folder holding the photos (images)"
        )
    os.makedirs(os.path.join(out_dir, layout.WORK_DIR), exist_ok=True)
    metadata = init_metadata(config, out_dir)
    each = formats.resolve(config.format, config.metadata, config.max_line_bytes)
    return config, each[0], parse_tasks(config, each, metadata["user_hash_salt"], out_dir)


def metadata_phase(config: IngestConfig, out_dir: str, infos: list[dict] | None = None) -> _MetadataPhase:
    """Phase 1 (resumable): parse every metadata file, drop duplicates, decide the splits.
    ``infos``: the files' counts when an engine has parsed them already (in file order)."""
    config, fmt, tasks = metadata_tasks(config, out_dir)
    sources = metadata_sources(config, fmt)
    if infos is None:
        infos = parse_all(config, tasks)
    skips = SkipLog(config.log_first_skips)
    for info in infos:
        skips.merge(SkipLog.from_json(info["skips"], config.log_first_skips))
    table, plan, archives = plan_shards(config, fmt, sources, out_dir, skips)
    return _MetadataPhase(config, infos, skips, table, plan, fmt, sources, archives)


def split_coordinates(
    config: IngestConfig, out_dir: str, split: str = splits.M1_TRAIN
) -> tuple[np.ndarray, np.ndarray]:
    """lat, lon (degrees) of the photos of one split, from the metadata phase alone (no images).

    This is what the mesh is built on (the M1 training photos, §3.1.1) before any image is
    re-encoded; the later `run_ingestion` with the same config and folder reuses the phase's work.
    Photos whose image later turns out missing or broken are still counted here: the mesh sees
    the metadata.
    """
    table = metadata_phase(config, out_dir).table
    rows = table["split"].to_numpy() == splits.SPLITS.index(split)
    scale = rcommon.COORD_SCALE
    return (table["lat_e7"].to_numpy()[rows] / scale, table["lon_e7"].to_numpy()[rows] / scale)


def run_ingestion(config: IngestConfig, out_dir: str) -> dict:
    """Runs (or resumes) an ingestion into `out_dir` with the config's engine; returns the summary
    also written to summary.json."""
    if config.engine == "beam":
        from data_pipelines.ingest.beam_pipeline import run_pipeline

        return run_pipeline(config, out_dir)
    started = time.monotonic()
    phase = metadata_phase(config, out_dir)
    parse_seconds = time.monotonic() - started
    log.info(
        "metadata: %d lines, %d candidates in %d shards",
        sum(i["lines_read"] for i in phase.infos),
        len(phase.table),
        len(phase.plan),
    )
    image_started = time.monotonic()
    statuses = run_shards(phase.config, phase.table, phase.plan, out_dir, phase.sources, phase.archives)
    image_seconds = time.monotonic() - image_started
    timing = Timing(time.monotonic() - started, parse_seconds, image_seconds, phase.config.num_workers)
    return finish(phase, statuses, out_dir, timing)


@dataclasses.dataclass(frozen=True)
class Timing:
    """How long an ingestion took (seconds), for its summary; ``workers``: processes writing shards."""

    seconds: float
    metadata_seconds: float
    image_seconds: float
    workers: int


def finish(phase: _MetadataPhase, statuses: list[dict], out_dir: str, timing: Timing) -> dict:
    """The last step, once every shard is written (``statuses`` in plan order): tables, manifest,
    tfds metadata and, last, ``summary.json``; checks the counting identity. Returns the summary."""
    config, infos, skips, plan = phase.config, phase.infos, phase.skips, phase.plan
    for status in statuses:
        skips.merge(SkipLog.from_json(status["skips"], config.log_first_skips))

    remove_half_written(out_dir)
    split_counts = write_tables(phase.table, plan, statuses, out_dir)
    tables = {name: file_entry(os.path.join(out_dir, layout.table_path(name))) for name in splits.SPLITS}
    shards_manifest = manifest(config, statuses, tables)
    write_json_atomic(os.path.join(out_dir, layout.MANIFEST_FILE), shards_manifest)
    write_tfds_metadata(shards_manifest, layout.records_dir(out_dir))

    lines_read = sum(i["lines_read"] for i in infos)
    written = sum(s["num_examples"] for s in statuses)
    skipped = {reason: int(skips.counts.get(reason, 0)) for reason in SKIP_REASONS}
    if lines_read != written + sum(skipped.values()) or written != sum(split_counts.values()):
        raise errors.DatasetError(
            f"{out_dir}: counting identity broken: lines_read={lines_read}, examples_written="
            f"{written}, skipped={sum(skipped.values())}, tables={sum(split_counts.values())}; "
            "expected lines_read == examples_written + sum(skipped)"
        )
    summary = {
        "engine": config.engine,
        "format": phase.fmt.name,
        "lines_read": lines_read,
        "examples_written": written,
        "skipped": skipped,
        "skipped_examples": {k: v for k, v in skips.examples.items() if v},
        "splits": split_counts,
        "m1_validation": sum(split_counts[s] for s in splits.M1_VAL_SPLITS),
        "files": [{"path": i["path"], "layout": i["layout"], "lines_read": i["lines_read"]} for i in infos],
        "num_shards": len(plan),
        "timing": {
            "seconds": round(timing.seconds, 3),
            "metadata_seconds": round(timing.metadata_seconds, 3),
            "image_seconds": round(timing.image_seconds, 3),
            "lines_per_s": round(lines_read / max(timing.metadata_seconds, 1e-9), 1),
            "photos_per_s": round(written / max(timing.image_seconds, 1e-9), 1),
            # Without process start-up and TensorFlow import (what 14 M photos see):
            "photos_per_s_steady": round(steady_rate(statuses, timing.workers), 1),
            "workers": timing.workers,
        },
    }
    write_json_atomic(os.path.join(out_dir, layout.SUMMARY_FILE), summary)
    log.info(
        "done: %d lines, %d examples written, %d skipped, %.1f photos/s",
        lines_read,
        written,
        sum(skipped.values()),
        summary["timing"]["photos_per_s"],
    )
    return summary
