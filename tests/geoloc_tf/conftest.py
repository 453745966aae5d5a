"""Shared by the geoloc_tf tests: a tiny real world for training tests (the demo generator on a tiny
8-colour 'Earth', the real ingestion into TFRecords, a real mesh built on the M1 training photos);
a tiny Inception-v4; test images; a tiny run directory whose probabilities are set by hand."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from geoloc_tf.m1.inception_v4 import InceptionV4Config
from tests.conftest import random_mesh

# Eight regions of distinct colour: 4 longitude quarters x 2 hemispheres. A photo's pixels tell
# its region, so a tiny M1 can learn something in a few steps.
COLOURS = np.array(
    [
        [220, 40, 40],
        [40, 220, 40],
        [40, 40, 220],
        [220, 220, 40],
        [220, 40, 220],
        [40, 220, 220],
        [250, 250, 250],
        [30, 30, 30],
    ],
    np.uint8,
)

#: A tiny Inception-v4 (7 cells, 75 px, 5 % of the width): builds and runs in seconds.
TINY = InceptionV4Config(
    num_cells=7,
    image_size=75,
    width_multiplier=0.05,
    num_blocks_a=1,
    num_blocks_b=1,
    num_blocks_c=1,
)


def jpeg(height: int, width: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return tf.io.encode_jpeg(pixels, quality=90).numpy()


# M1's softmax for every photo: cell 3 holds 40 %, cell 7 30 %, cell 1 15 %, cell 9 10 %, the
# remaining 5 % spread evenly. 50 % set: {3, 7} (70 %); 90 % set: {3, 7, 1, 9} (95 %).
M1_TOP = {3: 0.40, 7: 0.30, 1: 0.15, 9: 0.10}
# The run's M2 ignores its inputs and answers cell 5 with 60 %, cell 2 with 20 %.
M2_TOP = {5: 0.60, 2: 0.20}
EXPORT_TOP_K = 3  # the SavedModel returns 3 cells: 85 % of the mass, so its 90 % set is unknown


def distribution(num_cells: int, top: dict[int, float]) -> np.ndarray:
    p = np.full(num_cells, (1.0 - sum(top.values())) / (num_cells - len(top)))
    for cell, value in top.items():
        p[cell] = value
    return p


def set_output(layer: keras.layers.Dense, p: np.ndarray) -> None:
    kernel, _ = layer.get_weights()
    layer.set_weights([np.zeros_like(kernel), np.log(p).astype(np.float32)])


def save_tiny_m1(run: Path, num_cells: int) -> None:
    """A tiny untrained Inception-v4 M1 (75 px, 5 % width, one block) as RUN/m1/m1.keras."""
    from geoloc_tf.m1.inception_v4 import build_inception_v4
    from geoloc_tf.run_layout import RunLayout

    layout = RunLayout(run)
    layout.m1_dir.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(TINY, num_cells=num_cells, num_blocks_b=0, num_blocks_c=0)
    build_inception_v4(config).save(layout.m1_model)


def build_tiny_run(root: Path, export: bool = True) -> Path:
    """RUN_DIR with mesh/mesh.npz, m1/m1.keras, m2/m2.keras and export/m1 (top 3 cells)."""
    from geoloc_tf.m1.export import export_m1
    from geoloc_tf.m1.inception_v4 import build_inception_v4
    from geoloc_tf.m2.config import M2Config
    from geoloc_tf.m2.model import build_m2
    from geoloc_tf.m2.task import TrainedM2
    from geoloc_tf.run_layout import RunLayout

    layout = RunLayout(root)
    rng = np.random.default_rng(5)
    mesh = random_mesh(rng, 2000)
    mesh.save(layout.mesh)
    m1 = build_inception_v4(
        dataclasses.replace(TINY, num_cells=mesh.num_cells, num_blocks_b=0, num_blocks_c=0)
    )
    set_output(m1.get_layer("Logits.Logits"), distribution(mesh.num_cells, M1_TOP))
    layout.m1_dir.mkdir()
    m1.save(layout.m1_model)
    m2_config = M2Config(hidden_units=8)
    m2 = build_m2(mesh.num_cells, m2_config)
    set_output(m2.get_layer("m2_output"), distribution(mesh.num_cells, M2_TOP))
    TrainedM2(m2, m2_config).save(layout)
    if export:
        export_m1(m1, mesh.imagery_centroids, str(layout.export("m1")), top_k=EXPORT_TOP_K)
    return root


def png(height: int, width: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return tf.io.encode_png(pixels).numpy()


@dataclasses.dataclass(frozen=True)
class TinyWorld:
    data_root: str
    mesh_path: str


def write_tiny_earth(path: Path) -> Path:
    pixels = np.zeros((100, 200, 3), np.uint8)
    for hemisphere in range(2):
        for quarter in range(4):
            pixels[hemisphere * 50 : (hemisphere + 1) * 50, quarter * 50 : (quarter + 1) * 50] = COLOURS[
                hemisphere * 4 + quarter
            ]
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
    demo.generate(
        collection,
        demo.DemoSpec(num_photos=photos, seed=1, image_size=32, indoor_share=0.0, workers=1),
        coordinates_path=write_coordinates(src / "coords.csv", photos),
        raster_path=write_tiny_earth(src / "earth.png"),
    )
    data_root = root / "data"
    ingest.run_ingestion(
        IngestConfig(
            metadata=(str(collection / demo.METADATA_FILE),),
            images=str(collection / "images"),
            max_image_side=48,
            examples_per_shard=32,
            workers=1,
            salt="test",
            splits=SplitConfig(m1_val_fraction=0.25),
        ),
        str(data_root),
    )
    table = load(str(data_root)).table("m1_train", columns=["lat", "lon"])
    mesh = build_mesh(
        table["lat"].to_numpy(), table["lon"].to_numpy(), refinement_limit=40, min_examples=4, init_grid=4
    )
    mesh_path = root / "mesh.npz"
    mesh.save(mesh_path)
    return TinyWorld(str(data_root), str(mesh_path))


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> TinyWorld:
    return build_tiny_world(Path(tmp_path_factory.mktemp("tiny_world")))
