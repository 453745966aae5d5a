"""Tiny test collections written by the tests themselves: JPEGs and YFCC/CSV metadata lines."""

from __future__ import annotations

import bz2
import gzip
import os
import random

import numpy as np
import pytest
from PIL import Image

# Text that must never reach the written data set (privacy test greps for it).
SECRETS = (
    "NICKNAME_SECRET",
    "TITLE_SECRET",
    "DESCRIPTION_SECRET",
    "TAG_SECRET",
    "flickr.com/photos/URL_SECRET",
    "staticflickr.com/DOWNLOAD_SECRET",
)


def write_jpeg(path, width=64, height=48, color=(200, 30, 30), fmt="JPEG"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(abs(hash(path)) % (2**32))
    pixels = np.clip(
        np.asarray(color, np.int16)[None, None, :] + rng.integers(-20, 20, (height, width, 3)),
        0,
        255,
    ).astype(np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)


def yfcc_fields(
    photo_id,
    user="12345678@N00",
    lat=48.8566,
    lon=2.3522,
    uploaded=1300000000,
    video=False,
    accuracy=16,
    ext="jpg",
):
    """The 23 fields of one yfcc100m_dataset line, with secret free text in the dropped fields."""
    return [
        str(photo_id),
        user,
        "NICKNAME_SECRET",
        "2011-03-13 07:06:40.0",
        str(uploaded),
        "Canon+EOS",
        "TITLE_SECRET",
        "DESCRIPTION_SECRET",
        "TAG_SECRET,paris",
        "",
        "" if lon is None else str(lon),
        "" if lat is None else str(lat),
        str(accuracy),
        "http://www.flickr.com/photos/URL_SECRET/%s/" % photo_id,
        "http://farm1.staticflickr.com/DOWNLOAD_SECRET/%s_abc.jpg" % photo_id,
        "Attribution License",
        "http://creativecommons.org/licenses/by/2.0/",
        "1234",
        "2",
        "abcdef",
        "fedcba",
        ext,
        "1" if video else "0",
    ]


def mmc_fields(line_no, photo_hash, **kwargs):
    f = yfcc_fields(**kwargs)
    return [str(line_no), f[0], photo_hash] + f[1:]


def write_lines(path, lines, compress=None):
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if compress == "bz2":
        path = str(path) + ".bz2"
        data = bz2.compress(data)
    elif compress == "gz":
        path = str(path) + ".gz"
        data = gzip.compress(data, mtime=0)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


CITIES = ((48.8566, 2.3522), (35.6762, 139.6503), (40.7128, -74.0060), (-33.8688, 151.2093))


def make_collection(root, n=24, users=4, seed=0, size=(80, 60), clustered=False):
    """n geotagged photos by `users` users, one JPEG each; returns (metadata path, images dir).

    clustered: photos within ~0.3 deg of four cities, except every 10th one, anywhere (so a mesh
    keeps the city cells and drops the lonely ones)."""
    rng = np.random.default_rng(seed)
    images = os.path.join(root, "images")
    lines = []
    for i in range(n):
        pid = 1000 + i
        if clustered and i % 10:
            city = CITIES[i % len(CITIES)]
            lat = float(np.round(city[0] + rng.uniform(-0.3, 0.3), 6))
            lon = float(np.round(city[1] + rng.uniform(-0.3, 0.3), 6))
        else:
            lat = float(np.round(rng.uniform(-60, 70), 6))
            lon = float(np.round(rng.uniform(-170, 170), 6))
        lines.append(
            "\t".join(
                yfcc_fields(
                    pid,
                    user=f"user{i % users}@N00",
                    lat=lat,
                    lon=lon,
                    uploaded=1300000000 + 3600 * i,
                )
            )
        )
        write_jpeg(os.path.join(images, f"{pid}.jpg"), *size, color=(i * 10 % 255, 100, 50))
    return write_lines(os.path.join(root, "yfcc.tsv"), lines), images


@pytest.fixture
def collection(tmp_path):
    return make_collection(str(tmp_path))


class LatitudeBandMesh:
    """Stand-in used only while ``mesh.build_mesh`` does not exist yet: cells are latitude bands
    of 30 degrees (6 cells); bands with fewer than ``min_examples`` photos are dropped (-1)."""

    def __init__(self, lat, lon, min_examples=1):
        band = np.clip(((np.asarray(lat) + 90) // 30).astype(int), 0, 5)
        counts = np.bincount(band, minlength=6)
        kept = np.flatnonzero(counts >= min_examples)
        self._ids = np.full(6, -1)
        self._ids[kept] = np.arange(len(kept))
        self.num_cells = len(kept)

    def locate(self, lat, lon):
        band = np.clip(((np.asarray(lat) + 90) // 30).astype(int), 0, 5)
        return self._ids[band]


def build_test_mesh(lat, lon, min_examples=2):
    """A real ``mesh.build_mesh`` mesh when the mesh package has it, else the band stand-in."""
    import mesh

    if hasattr(mesh, "build_mesh"):
        # A 4 x 4 initial grid instead of the paper's 31 x 31 keeps the test mesh small (ms).
        return mesh.build_mesh(
            np.asarray(lat),
            np.asarray(lon),
            refinement_limit=8,
            min_examples=min_examples,
            init_grid=4,
        )
    return LatitudeBandMesh(lat, lon, min_examples)


@pytest.fixture(scope="session")
def ingested(tmp_path_factory):
    """One small written data set shared by the label / input pipeline tests (read-only)."""
    from data_pipelines import ingest

    root = str(tmp_path_factory.mktemp("ingested"))
    make_collection(root, n=60, users=6, seed=7, size=(96, 72), clustered=True)
    ingest.run_ingestion(ingested_config(os.path.join(root, "out")), os.path.join(root, "out"))
    return os.path.join(root, "out")


def ingested_config(out: str):
    """The settings ``ingested`` wrote ``out`` with (its collection lies beside it)."""
    from data_pipelines.config import IngestConfig, SplitConfig

    root = os.path.dirname(out)
    return IngestConfig(
        metadata=(os.path.join(root, "yfcc.tsv"),),
        images=os.path.join(root, "images"),
        max_image_side=64,
        examples_per_shard=7,
        workers=1,
        salt="s",
        splits=SplitConfig(m1_val_fraction=1 / 3),
    )


def corrupt(line: str, rng: random.Random) -> bytes:
    """A YFCC100M metadata line damaged in one of six ways (bytes, cut, tabs, fields, numbers)."""
    data = bytearray(line.encode("utf-8"))
    kind = rng.randrange(6)
    if kind == 0:  # flip random bytes
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:  # cut
        data = data[: rng.randrange(len(data))]
    elif kind == 2:  # drop or add tabs
        data = data.replace(b"\t", b"", rng.randint(1, 3)) if rng.random() < 0.5 else data + b"\tx"
    elif kind == 3:  # garbage fields
        fields = data.split(b"\t")
        fields[rng.randrange(len(fields))] = bytes(rng.randrange(256) for _ in range(5))
        data = b"\t".join(fields)
    elif kind == 4:  # nonsense numbers in the numeric fields
        fields = data.split(b"\t")
        for i in (0, 4, 10, 11, 12, 22):
            if rng.random() < 0.5:
                fields[i] = rng.choice([b"nan", b"inf", b"-1e400", b"", b"99999999999999999999", b"1e3"])
        data = b"\t".join(fields)
    return bytes(data).replace(b"\n", b" ").replace(b"\r", b" ")
