"""source=demo: the demo collection a config stands for, generated into the data cache on first use.

The runner and ``geoloc ingest --source=demo`` both come here, so the demo is one collection per
(size, seed) in ``$GEOLOC_DATA_DIR/demo/`` and goes through the same ingestion as a user's YFCC100M
files.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from data_pipelines.config import IngestConfig
from data_pipelines.demo import generate
from data_pipelines.demo.sources import data_dir

log = logging.getLogger(__name__)


def demo_folder(config: IngestConfig) -> Path:
    """Where the demo collection of this size and seed lives in the data cache."""
    size = generate.DEFAULT_IMAGE_SIZE
    return data_dir() / "demo" / f"{config.demo_size}-seed{config.splits.seed}-{size}px"


def with_demo_collection(config: IngestConfig) -> IngestConfig:
    """The config with the demo collection's files in place of source=demo, generating the
    collection on first use (then reused, never rebuilt). With ``format`` osv5m, mp16pro or
    webdataset the collection is rewritten in that layout (``data_pipelines.demo.formats``) and
    read through that format's reader, as a user's copy of the data set would be."""
    folder = demo_folder(config)
    spec = generate.DemoSpec(num_photos=generate.SIZES[config.demo_size], seed=config.splits.seed)
    # Simulated users have nothing to hide: a salt fixed by the seed keeps their hashes, and so
    # M3's albums and the user splits, the same in every run (real data: random per set).
    salt = config.salt or f"geoloc-demo-seed{config.splits.seed}"
    if config.format not in ("auto", "yfcc100m"):
        from data_pipelines.demo import formats

        written = formats.write_collection(
            folder.with_name(f"{folder.name}-{config.format}"), config.format, spec
        )
        log.info("demo collection in the %s layout: %s", config.format, written["images"])
        return dataclasses.replace(
            config,
            source="metadata",
            format=config.format,
            metadata=tuple(str(p) for p in written["metadata"]),
            images=str(written["images"]),
            salt=salt,
        )
    info = generate.generate(folder, spec)
    log.info("demo collection %s: %d photos by %d SIMULATED users", folder, info["photos"], info["users"])
    files = info["files"]
    return dataclasses.replace(
        config,
        source="metadata",
        metadata=(str(folder / files["metadata"]),),
        images=str(folder / files["images"]),
        autotags=(str(folder / files["autotags"]),),
        image_path_template=files["image_path_template"],
        salt=salt,
    )
