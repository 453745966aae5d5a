"""A tiny real world for training tests: the demo generator on a tiny 8-colour 'Earth', the real
ingestion into TFRecords, and a real mesh built on the M1 training photos."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Eight regions of distinct colour: 4 longitude quarters x 2 hemispheres. A photo's pixels tell
# its region, so a tiny M1 can learn something in a few steps.
COLOURS = np.array([[220, 40, 40], [40, 220, 40], [40, 40, 220], [220, 220, 40],
                    [220, 40, 220], [40, 220, 220], [250, 250, 250], [30, 30, 30]], np.uint8)


@dataclasses.dataclass(frozen=True)
class TinyWorld:
    data_root: str
    mesh_path: str


def write_tiny_earth(path: Path) -> Path:
    pixels = np.zeros((100, 200, 3), np.uint8)
    for hemisphere in range(2):
        for quarter in range(4):
            pixels[hemisphere * 50:(hemisphere + 1) * 50, quarter * 50:(quarter + 1) * 50] = \
                COLOURS[hemisphere * 4 + quarter]
    Image.fromarray(pixels).save(path)
    return path


def write_coordinates(path: Path, n: int, seed: int = 11) -> Path:
    rng = np.random.default_rng(seed)
    lat = np.round(rng.uniform(-70, 70, n), 5)
    lon = np.round(rng.uniform(-179, 179, n), 5)
    path.write_text("LAT,LON\n" + "\n".join(f"{a},{b}" for a, b in zip(lat, lon)) + "\n")
    return path


def build_tiny_world(root: Path, photos: int = 240) -> TinyWorld:
    from data_pipelines import ingest
    from data_pipelines.config import IngestConfig, SplitConfig
    from data_pipelines.dataset import load
    from data_pipelines.demo import generate as demo
    from mesh import build_mesh

    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    collection = root / "collection"
    demo.generate(collection, demo.DemoSpec(num_photos=photos, seed=1, image_size=32, indoor_share=0.0,
                                            workers=1),
                  coordinates_path=write_coordinates(src / "coords.csv", photos),
                  raster_path=write_tiny_earth(src / "earth.png"))
    data_root = root / "data"
    ingest.run_ingestion(IngestConfig(
        metadata=(str(collection / demo.METADATA_FILE),), images=str(collection / "images"),
        max_image_side=48, examples_per_shard=32, workers=1, salt="test",
        splits=SplitConfig(m1_val_fraction=0.25)), str(data_root))
    table = load(str(data_root)).table("m1_train", columns=["lat", "lon"])
    mesh = build_mesh(table["lat"].to_numpy(), table["lon"].to_numpy(), refinement_limit=40,
                      min_examples=4, init_grid=4)
    mesh_path = root / "mesh.npz"
    mesh.save(mesh_path)
    return TinyWorld(str(data_root), str(mesh_path))


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> TinyWorld:
    return build_tiny_world(Path(tmp_path_factory.mktemp("tiny_world")))
