"""The demo collection in the OSV-5M, MP16-Pro and webdataset layouts (data_pipelines.demo.formats),
on a tiny raster and 42 locations, two of them known places (no network)."""

from __future__ import annotations

import csv
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from data_pipelines import archives
from data_pipelines.demo import formats, generate
from data_pipelines.errors import DataPipelineError
from tests.data_pipelines.test_demo import tiny_raster

PARIS = (48.8566, 2.3522)
WAITANGI = (-43.95353, -176.55973)  # Chatham Islands, New Zealand: a place without an admin2
NUM_PHOTOS = 42  # every location below is a photo
SIZES = formats.ArchiveSizes(photos_per_zip=8, tar_part_bytes=10_000, photos_per_shard=16)
SPEC = generate.DemoSpec(num_photos=NUM_PHOTOS, seed=5, image_size=16, workers=1)

# The first lines of the real files, as published.
OSV5M_HEADER = (
    "id,latitude,longitude,thumb_original_url,country,sequence,captured_at,lon_bin,lat_bin,cell,region,"
    "sub-region,city,land_cover,road_index,drive_side,climate,soil,dist_sea,quadtree_10_5000,"
    "quadtree_10_25000,quadtree_10_1000,quadtree_10_50000,quadtree_10_12500,quadtree_10_500,"
    "quadtree_10_2500,unique_region,unique_sub-region,unique_city,unique_country,creator_username,"
    "creator_id"
)
MP16PRO_HEADER = (
    "IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,Prob_urban,"
    "neighbourhood,city,county,state,region,country,continent"
)


def pixels(jpeg: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as image:
        return image.convert("RGB").tobytes()


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("sources")
    rows = [f"{lat},{lon}" for lat, lon in (PARIS, WAITANGI)]
    rows += [f"{-50 + 2.5 * k},{-170 + 8.3 * k}" for k in range(NUM_PHOTOS - 2)]
    coordinates = folder / "coords.csv"
    coordinates.write_text("LAT,LON\n" + "\n".join(rows) + "\n")
    return {"coordinates_path": coordinates, "raster_path": tiny_raster(folder / "earth.png")}


@pytest.fixture(scope="module")
def standard(tmp_path_factory, sources) -> dict:
    """The standard collection's photos by id: (fields of its YFCC100M line, outdoor prob, JPEG)."""
    folder = tmp_path_factory.mktemp("standard")
    generate.generate(folder, SPEC, **sources)
    outdoor = {
        line.split("\t")[0]: float(line.split("\t")[1].split(",")[0].split(":")[1])
        for line in (folder / generate.AUTOTAGS_FILE).read_text().splitlines()
    }
    photos = {}
    for line in (folder / generate.METADATA_FILE).read_text().splitlines():
        fields = line.split("\t")
        photos[fields[0]] = (
            fields,
            outdoor[fields[0]],
            (folder / "images" / f"{fields[0]}.jpg").read_bytes(),
        )
    return photos


def write(tmp_path: Path, name: str, fmt: str, sources: dict) -> dict:
    return formats.write_collection(tmp_path / name, fmt, SPEC, sizes=SIZES, **sources)


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file's bytes by relative path; demo_info.json without its timings."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == generate.INFO_FILE:
            info = json.loads(data)
            info.pop("generation_seconds"), info.pop("layout_seconds")
            data = json.dumps(info).encode()
        out[str(path.relative_to(folder))] = data
    return out


def csv_rows(path: Path) -> tuple[str, list[dict]]:
    text = path.read_text()
    return text.splitlines()[0], list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("fmt", ["osv5m", "mp16pro", "webdataset"])
def test_same_seed_same_bytes_and_info(tmp_path, sources, fmt):
    first = write(tmp_path, "a", fmt, sources)
    second = write(tmp_path, "b", fmt, sources)
    a, b = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert a == b
    assert not (tmp_path / "a" / formats.SOURCE_DIR).exists()  # the private standard collection is gone
    info = first["info"]
    assert info["format"] == fmt and info["photos"] == NUM_PHOTOS
    assert any("SIMULATED" in line or "placeholder" in line for line in info["simulated"])
    assert first["metadata"] == [
        p.replace(str(tmp_path / "b"), str(tmp_path / "a")) for p in second["metadata"]
    ]
    assert all(Path(p).is_file() for p in first["metadata"]) and Path(first["images"]).is_dir()


def test_osv5m_layout(tmp_path, sources, standard):
    written = write(tmp_path, "osv", "osv5m", sources)
    folder = tmp_path / "osv"
    assert written["metadata"] == [str(folder / "train.csv"), str(folder / "test.csv")]
    assert written["images"] == str(folder / "images")
    rows = {}
    for split in ("train", "test"):
        header, split_rows = csv_rows(folder / f"{split}.csv")
        assert header == OSV5M_HEADER
        zips = sorted((folder / "images" / split).glob("*.zip"))
        members = {}
        for number, path in enumerate(zips):
            assert path.name == f"{number:02d}.zip"
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                assert names[0] == f"{number:02d}/"  # the folder OSV-5M's zips extract into
                members.update({name: archive.read(name) for name in names[1:]})
        assert sorted(members) == sorted(
            f"{k // SIZES.photos_per_zip:02d}/{row['id']}.jpg" for k, row in enumerate(split_rows)
        )
        for k, row in enumerate(split_rows):
            assert members[f"{k // SIZES.photos_per_zip:02d}/{row['id']}.jpg"] == standard[row["id"]][2]
            rows[row["id"]] = row
    assert sorted(rows) == sorted(standard)  # every photo once, in train or test
    _, test_rows = csv_rows(folder / "test.csv")
    assert 0 < len(test_rows) < NUM_PHOTOS / 2

    nsid_of_creator = {}
    for pid, row in rows.items():
        fields = standard[pid][0]
        assert (row["latitude"], row["longitude"]) == (fields[11], fields[10])
        assert int(row["captured_at"]) // 1000 == int(fields[4])  # epoch ms of the simulated time
        assert row["creator_username"].startswith("SIMULATED-user-")
        assert nsid_of_creator.setdefault(row["creator_id"], fields[1]) == fields[1]
        assert row["thumb_original_url"].startswith("http://demo.invalid/")
    # One sequence per user and UTC day: the pairs (creator and day, sequence) are a one-to-one map.
    pairs = {
        ((row["creator_id"], int(row["captured_at"]) // 86_400_000), row["sequence"]) for row in rows.values()
    }
    assert len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs}) > 1

    paris = next(row for row in rows.values() if row["latitude"] == f"{PARIS[0]:.6f}")
    assert (paris["country"], paris["region"], paris["sub-region"], paris["city"]) == (
        "FR",
        "Ile-de-France",
        "Paris",
        "Paris",
    )
    assert paris["unique_city"] == "Paris_Paris_Ile-de-France_FR"
    waitangi = next(row for row in rows.values() if row["latitude"] == f"{WAITANGI[0]:.6f}")
    assert (waitangi["unique_sub-region"], waitangi["unique_city"]) == ("", "Waitangi_NaN_Chatham Islands_NZ")


def test_mp16pro_layout(tmp_path, sources, standard):
    written = write(tmp_path, "mp", "mp16pro", sources)
    folder = tmp_path / "mp"
    header, rows = csv_rows(folder / "metadata" / "MP16_Pro_places365.csv")
    assert header == MP16PRO_HEADER
    assert written["metadata"] == [str(folder / "metadata" / "MP16_Pro_places365.csv")]
    parts = sorted(folder.glob("mp-16-images*"))
    assert [p.name for p in parts] == [f"mp-16-images{k:02d}" for k in range(len(parts))]
    assert len(parts) > 1 and all(p.stat().st_size == SIZES.tar_part_bytes for p in parts[:-1])
    whole = b"".join(p.read_bytes() for p in parts)  # cat mp-16-images* > mp-16-images.tar
    with tarfile.open(fileobj=io.BytesIO(whole)) as archive:
        names = archive.getnames()
        assert names[0] == "./images"  # the folder entry
        assert names[1:] == ["./images/" + row["IMG_ID"].replace("/", "_") for row in rows]
        for row in rows:
            pid = row["IMG_ID"].rsplit("/", 1)[1].removesuffix(".jpg")
            member = archive.extractfile("./images/" + row["IMG_ID"].replace("/", "_"))
            assert member is not None
            data = member.read()
            # the photo, padded past the placeholder size with a JPEG comment: the same pixels
            assert data == formats.mp16pro_member(standard[pid][2])
            assert len(data) == archives.PLACEHOLDER_MAX_BYTES + 1  # the demo photos are smaller
            assert pixels(data) == pixels(standard[pid][2])
    assert sorted(row["IMG_ID"].rsplit("/", 1)[1] for row in rows) == sorted(f"{pid}.jpg" for pid in standard)
    for row in rows:
        pid = row["IMG_ID"].rsplit("/", 1)[1].removesuffix(".jpg")
        fields, outdoor, _ = standard[pid]
        assert len(row["IMG_ID"].split("/")) == 3
        assert (row["AUTHOR"], row["LAT"], row["LON"]) == (fields[1], fields[11], fields[10])
        assert float(row["Prob_indoor"]) == pytest.approx(1 - outdoor, abs=1e-4)
    paris = next(row for row in rows if row["LAT"] == f"{PARIS[0]:.6f}")
    assert (paris["country"], paris["state"], paris["county"], paris["city"]) == (
        "FR",
        "Ile-de-France",
        "Paris",
        "Paris",
    )


def test_an_mp16pro_layout_with_unpadded_members_is_written_again(tmp_path, sources):
    """A layout written before the members were padded (no marker in demo_info.json) would lose
    every photo as a placeholder: it is rewritten, not reused."""
    write(tmp_path, "mp", "mp16pro", sources)
    info_path = tmp_path / "mp" / generate.INFO_FILE
    info = json.loads(info_path.read_text())
    assert info[formats.PADDED_KEY] == archives.PLACEHOLDER_MAX_BYTES
    del info[formats.PADDED_KEY]
    info_path.write_text(json.dumps(info))
    for part in (tmp_path / "mp").glob("mp-16-images*"):
        part.write_bytes(b"stale")
    write(tmp_path, "mp", "mp16pro", sources)
    assert formats.PADDED_KEY in json.loads(info_path.read_text())
    whole = b"".join(p.read_bytes() for p in sorted((tmp_path / "mp").glob("mp-16-images*")))
    with tarfile.open(fileobj=io.BytesIO(whole)) as archive:
        sizes = [m.size for m in archive.getmembers() if m.isfile()]
    assert len(sizes) == NUM_PHOTOS and min(sizes) > archives.PLACEHOLDER_MAX_BYTES


def test_webdataset_layout(tmp_path, sources, standard):
    written = write(tmp_path, "wds", "webdataset", sources)
    folder = tmp_path / "wds"
    shards = [Path(p) for p in written["metadata"]]
    assert [p.name for p in shards] == ["00000.tar", "00001.tar", "00002.tar"]  # 16 + 16 + 10 photos
    seen = {}
    for shard in shards:
        with tarfile.open(shard) as archive:
            names = archive.getnames()
            keys = [name.removesuffix(".jpg") for name in names[::2]]
            assert names == [f"{key}.{ext}" for key in keys for ext in ("jpg", "json")]
            for key in keys:
                meta = json.loads(archive.extractfile(f"{key}.json").read())
                seen[key] = (meta, archive.extractfile(f"{key}.jpg").read())
    assert sorted(seen) == sorted(standard)  # the key is the photo id
    for key, (meta, jpeg) in seen.items():
        fields, outdoor, image = standard[key]
        assert jpeg == image and meta["key"] == key and "url" not in meta
        assert (meta["latitude"], meta["longitude"]) == (float(fields[11]), float(fields[10]))
        assert (meta["date_uploaded"], meta["user_nsid"], meta["outdoor_prob"]) == (
            int(fields[4]),
            fields[1],
            outdoor,
        )
    assert written["images"] == str(folder)


def test_a_complete_collection_is_reused_and_another_spec_refused(tmp_path, sources):
    first = write(tmp_path, "c", "webdataset", sources)
    shard = Path(first["metadata"][0])
    stamp = shard.stat().st_mtime_ns
    assert write(tmp_path, "c", "webdataset", sources)["metadata"] == first["metadata"]
    assert shard.stat().st_mtime_ns == stamp  # left as it was
    for other in ("osv5m", "yfcc100m"):
        with pytest.raises(DataPipelineError, match="made with format 'webdataset'.*use another folder"):
            write(tmp_path, "c", other, sources)
    with pytest.raises(DataPipelineError, match="cannot share a folder with the standard collection"):
        formats.write_collection(tmp_path / "e", "osv5m", SPEC, source=tmp_path / "e", **sources)
    with pytest.raises(DataPipelineError, match="expected one of yfcc100m, osv5m, mp16pro, webdataset"):
        formats.write_collection(tmp_path / "d", "exif", SPEC, **sources)


def test_an_interrupted_layout_leaves_no_stale_part(tmp_path, sources):
    """A part left by an earlier, longer attempt would corrupt `cat mp-16-images*`."""
    folder = tmp_path / "mp"
    folder.mkdir()
    (folder / "mp-16-images99").write_bytes(b"stale")
    write(tmp_path, "mp", "mp16pro", sources)
    assert not (folder / "mp-16-images99").exists()


def test_shared_standard_collection_is_kept(tmp_path, sources):
    written = formats.write_collection(
        tmp_path / "osv", "osv5m", SPEC, source=tmp_path / "std", sizes=SIZES, **sources
    )
    assert (tmp_path / "std" / generate.INFO_FILE).exists()  # reused by the next format
    assert written["info"]["photos"] == NUM_PHOTOS


def test_yfcc100m_is_the_standard_collection(tmp_path, sources):
    written = formats.write_collection(tmp_path / "y", "yfcc100m", SPEC, **sources)
    assert written["metadata"] == [str(tmp_path / "y" / generate.METADATA_FILE)]
    assert written["autotags"] == [str(tmp_path / "y" / generate.AUTOTAGS_FILE)]
    assert written["image_path_template"] == "{id}.jpg"


@pytest.mark.parametrize("fmt", ["osv5m", "mp16pro", "webdataset"])
def test_ingestion_reads_every_demo_photo(tmp_path, sources, fmt):
    """The readers of each format take the whole demo: no photo skipped, no placeholder stored."""
    import pandas as pd

    from data_pipelines import ingest
    from data_pipelines.config import IngestConfig

    written = write(tmp_path, "demo", fmt, sources)
    out = tmp_path / "out"
    config = IngestConfig(
        format=fmt,
        metadata=tuple(written["metadata"]),
        images=written["images"],
        max_image_side=32,
        examples_per_shard=16,
        workers=1,
    )
    summary = ingest.run_ingestion(config, str(out))
    assert summary["examples_written"] == NUM_PHOTOS, summary["skipped_examples"]
    assert sum(summary["skipped"].values()) == 0
    stored = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    for placeholder in (b"SIMULATED-user", b"demo.invalid", b"@N0"):
        assert placeholder not in stored
    tables = pd.concat([pd.read_parquet(p) for p in (out / "tables").glob("*.parquet")])
    paris = tables[tables["lat_e7"] == round(PARIS[0] * 1e7)]
    if fmt == "webdataset":  # its JSON names no admin areas
        assert list(paris["country"]) == [""]
    elif fmt == "osv5m":  # OSV-5M's unique_* strings, what its metric compares
        assert list(
            paris[["country", "region", "sub_region", "city"]].itertuples(index=False, name=None)
        ) == [("FR", "Ile-de-France_FR", "Paris_Ile-de-France_FR", "Paris_Paris_Ile-de-France_FR")]
    else:
        assert list(
            paris[["country", "region", "sub_region", "city"]].itertuples(index=False, name=None)
        ) == [("FR", "Ile-de-France", "Paris", "Paris")]


def test_make_demo_writes_the_format(tmp_path, sources, monkeypatch, capsys):
    from data_pipelines.demo import sources as demo_sources
    from experiments.cli import main as geoloc

    files = {
        demo_sources.COORDINATES: sources["coordinates_path"],
        demo_sources.BLUE_MARBLE: sources["raster_path"],
    }
    monkeypatch.setattr(demo_sources, "fetch", lambda source, cache_dir=None: files[source])
    options = ["--num_photos=42", "--image_size=16", "--workers=1", "--seed=5"]
    assert geoloc(["make-demo", f"--out={tmp_path / 'osv'}", "--format=osv5m", *options]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["format"] == "osv5m" and printed["photos"] == NUM_PHOTOS
    assert printed["metadata"] == [str(tmp_path / "osv" / "train.csv"), str(tmp_path / "osv" / "test.csv")]
    assert geoloc(["make-demo", f"--out={tmp_path / 'std'}", *options]) == 0  # auto: the YFCC100M layout
    assert (tmp_path / "std" / generate.METADATA_FILE).exists()
    assert geoloc(["make-demo", f"--out={tmp_path / 'x'}", "--format=exif", *options]) == 2
    assert "--format=exif" in capsys.readouterr().err
    # --workers and --image_size come from DemoSpec's declarations, bounds included
    assert geoloc(["make-demo", f"--out={tmp_path / 'x'}", "--workers=-1"]) == 2
    assert "--workers=-1: must be >= 0" in capsys.readouterr().err
    assert geoloc(["make-demo", f"--out={tmp_path / 'x'}", "--image_size=4"]) == 2
    assert "--image_size=4: must be >= 8" in capsys.readouterr().err
