"""Where a run's photos come from: the user's metadata files, or the embedded demo collection.

Both go through the same ingestion (`data_pipelines.ingest`); the demo is first generated, once,
into the data cache (`$GEOLOC_DATA_DIR/demo/...`), as a YFCC100M-layout collection.
"""

from __future__ import annotations

import logging
from pathlib import Path

from experiments.config import DataSection, RunConfig

log = logging.getLogger(__name__)

DEMO_IMAGE_SIZE = 96  # px, the side of the demo's square photos; demo.cfg's M1 reads 75 px crops


def demo_collection(data: DataSection) -> Path:
    """The demo collection for these settings, generated on first use (then reused, never rebuilt)."""
    from data_pipelines.demo import generate as demo
    from data_pipelines.demo.sources import data_dir

    folder = data_dir() / "demo" / f"{data.demo_size}-seed{data.seed}-{DEMO_IMAGE_SIZE}px"
    spec = demo.DemoSpec(num_photos=demo.SIZES[data.demo_size], seed=data.seed,
                         image_size=DEMO_IMAGE_SIZE)
    info = demo.generate(folder, spec)
    log.info("demo collection %s: %d photos by %d SIMULATED users", folder, info["photos"],
             info["users"])
    return folder


def ingest_config(config: RunConfig, run_dir: Path):
    """The IngestConfig of this run: the data set is written to run_dir/data."""
    from data_pipelines.config import IngestConfig, SplitConfig

    data = config.data
    if data.source == "demo":
        from data_pipelines.demo import generate as demo

        folder = demo_collection(data)
        metadata = (str(folder / demo.METADATA_FILE),)
        images = str(folder / demo.IMAGES_DIR)
        autotags = (str(folder / demo.AUTOTAGS_FILE),)
        template = "{id}.jpg"
        # Simulated users have nothing to hide: a salt fixed by the seed keeps their hashes, and
        # so M3's albums and the user splits, the same in every run (real data: random per set).
        salt = f"geoloc-demo-seed{data.seed}"
    else:
        metadata = tuple(str(Path(p).expanduser()) for p in data.metadata)
        images = str(Path(data.images).expanduser())
        autotags = tuple(str(Path(p).expanduser()) for p in data.autotags)
        template = data.image_path_template
        salt = None
    return IngestConfig(
        metadata_paths=metadata, images_dir=images, out_dir=str(run_dir / "data"),
        autotags_paths=autotags, image_path_template=template, max_side=data.max_image_side,
        salt=salt,
        splits=SplitConfig(m1_train_weight=1.0 - data.m1_val_fraction,
                           m1_val_weight=data.m1_val_fraction,
                           m23_val_fraction=data.m23_val_fraction, seed=data.seed,
                           by_user=data.split_by == "user"))


def is_simulated(config: RunConfig) -> bool:
    """True when the run's users, posting times and indoor photos are simulated (the demo)."""
    return config.data.source == "demo"
