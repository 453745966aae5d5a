"""Where each file of a written data set lives, relative to its output folder.

records/<name>-<split>.tfrecord-XXXXX-of-YYYYY   shards (tfds naming) + dataset_info.json
tables/<split>.parquet                         kept metadata in record order, no pixels
metadata.json                                  settings the data set was built with, salt
manifest.json                                  shards, counts, sha256
summary.json                                   counts by skip reason; written last
_work/parsed/NNNNN.parquet|json                phase 1 state, one per metadata file
_work/shards/<shard file>.json                 phase 2 state, one per finished shard
_work/archives.json, _work/archive_index.parquet  the archives of the images and their members
                                               (formats with images in zips/tars), built once
"""

from __future__ import annotations

import os

SCHEMA_VERSION = 1
RECORDS_DIR = "records"
TABLES_DIR = "tables"
WORK_DIR = "_work"
FILE_FORMAT = "tfrecord"
METADATA_FILE = "metadata.json"
MANIFEST_FILE = "manifest.json"
SUMMARY_FILE = "summary.json"
TFDS_SCRATCH_PREFIX = ".tfds_metadata-"  # scratch folders beside records/


def shard_file_name(dataset_name: str, split: str, index: int, count: int) -> str:
    """tfds's default template ``{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}``."""
    return f"{dataset_name}-{split}.{FILE_FORMAT}-{index:05d}-of-{count:05d}"


def table_path(split: str) -> str:
    """A split's table, relative to the output folder (as the manifest records it)."""
    return f"{TABLES_DIR}/{split}.parquet"


def parsed_stem(out_dir: str, file_index: int) -> str:
    """Phase 1's state of one metadata file, without its .parquet / .json suffix."""
    return os.path.join(out_dir, WORK_DIR, "parsed", f"{file_index:05d}")


def shard_status_dir(out_dir: str) -> str:
    return os.path.join(out_dir, WORK_DIR, "shards")


def records_dir(out_dir: str) -> str:
    return os.path.join(out_dir, RECORDS_DIR)


def archives_file(out_dir: str) -> str:
    """The archives holding the images (kind and parts of each), in container order."""
    return os.path.join(out_dir, WORK_DIR, "archives.json")


def archive_index_file(out_dir: str) -> str:
    """Every archive member: key, container, offset, size (``data_pipelines.archives``)."""
    return os.path.join(out_dir, WORK_DIR, "archive_index.parquet")
