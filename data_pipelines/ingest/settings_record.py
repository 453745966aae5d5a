"""``metadata.json``: the settings a data set was built with, and its user-hash salt.

A run on an output folder that already holds a data set resumes it only when every setting that
decides the output is the same; otherwise it stops with the differing setting named, instead of
silently mixing two data sets.
"""

from __future__ import annotations

import functools
import json
import os
import secrets

from data_pipelines import errors, splits
from data_pipelines.config import IngestConfig
from data_pipelines.ingest import layout
from mesh.atomic import write_json_atomic
from mesh.settings import flat_settings

# Settings recorded otherwise (files with their sizes, the salt on its own) or resolved away before
# ingestion starts (the demo's source and size become its files).
_NOT_RECORDED_AS_IS = ("source", "demo_size", "metadata", "images", "autotags", "salt")


def _files(paths: tuple[str, ...], expected: str) -> list[dict]:
    out = []
    for path in paths:
        try:
            size = os.path.getsize(path)
        except OSError:
            raise errors.ConfigError(f"{path}: no such file; expected {expected}") from None
        out.append({"path": os.path.abspath(path), "bytes": size})
    return out


def fingerprint(config: IngestConfig) -> dict:
    """Every setting that decides the output (`affects_outputs`), by its setting name; a resumed
    run must match it. Metadata and autotags files count by path and size."""
    values = {
        path[-1]: functools.reduce(getattr, path, config)
        for path, field, _ in flat_settings(IngestConfig)
        if field.metadata["affects_outputs"] and path[-1] not in _NOT_RECORDED_AS_IS
    }
    return {
        "schema_version": layout.SCHEMA_VERSION,
        "sources": _files(config.metadata, "a metadata file (YFCC100M, Multimedia Commons or CSV)"),
        "autotags": _files(config.autotags, "a YFCC100M autotags file"),
        "images": os.path.abspath(config.images_folder),
        **values,
    }


def init_metadata(config: IngestConfig, out_dir: str) -> dict:
    """Creates ``metadata.json`` (settings + salt), or checks the one there. Returns it."""
    path = os.path.join(out_dir, layout.METADATA_FILE)
    settings = fingerprint(config)
    if os.path.exists(path):
        with open(path) as f:
            existing = json.load(f)
        for key, value in settings.items():
            before = existing.get("settings", {}).get(key)
            if before != value:
                raise errors.ConfigError(
                    f"{out_dir}: holds a data set built with {key}={before!r}, now {value!r}; "
                    "expected the same settings to resume, or an empty output folder"
                )
        if config.salt is not None and config.salt != existing["user_hash_salt"]:
            raise errors.ConfigError(
                f"salt differs from the salt in {path}; expected the same salt to resume, or an "
                "empty output folder"
            )
        return existing
    metadata = {
        "dataset_name": config.dataset_name,
        "description": "Geotagged photos for geoloc (paper §2): JPEG <= max_image_side px, photo "
        "id, salted user hash, posting time, lat/lon (1e-7 deg), accuracy, outdoor probability. "
        "Labels per mesh are joined at read time.",
        "user_hash_salt": config.salt if config.salt is not None else secrets.token_hex(16),
        "settings": settings,
        "splits": {"names": list(splits.SPLITS), "m1_validation": list(splits.M1_VAL_SPLITS)},
    }
    write_json_atomic(path, metadata)
    return metadata
