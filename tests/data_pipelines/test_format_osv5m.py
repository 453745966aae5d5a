"""The OSV-5M format: train.csv/test.csv + images/{train,test}/NN.zip, read without unpacking."""

from __future__ import annotations

import csv
import io
import os
import zipfile

import pandas as pd
import pytest
from PIL import Image

from data_pipelines import archives, ingest
from data_pipelines.config import IngestConfig
from data_pipelines.hashing import UserHasher
from data_pipelines.ingest.image_files import ImageSkipped
from data_pipelines.readers import common, osv5m
from data_pipelines.readers.formats import ReadOptions

# The real header of OSV-5M's train.csv / test.csv (the osv5m/osv5m loader script lists it).
HEADER = (
    "id,latitude,longitude,thumb_original_url,country,sequence,captured_at,lon_bin,lat_bin,cell,"
    "region,sub-region,city,land_cover,road_index,drive_side,climate,soil,dist_sea,"
    "quadtree_10_5000,quadtree_10_25000,quadtree_10_1000,quadtree_10_50000,quadtree_10_12500,"
    "quadtree_10_500,quadtree_10_2500,unique_region,unique_sub-region,unique_city,unique_country,"
    "creator_username,creator_id"
).split(",")
USERNAME, URL = "SECRET_USERNAME", "https://example.org/SECRET_URL.jpg"


def jpeg(color=(40, 120, 200), size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG")
    return out.getvalue()


def row(photo_id, lat="48.8566", lon="2.3522", creator="1001", sequence="seqA", captured_at="1500000000000"):
    values = dict.fromkeys(HEADER, "0")
    values.update(
        id=str(photo_id),
        latitude=lat,
        longitude=lon,
        thumb_original_url=URL,
        country="FR",
        sequence=sequence,
        captured_at=captured_at,
        region="Ile-de-France",
        city="Paris",
        creator_username=USERNAME,
        creator_id=creator,
    )
    values["sub-region"] = "Paris"
    # What OSV-5M's metric compares (and the reader keeps): the unique_* strings, as written.
    values["unique_country"] = "FR"
    values["unique_region"] = "Ile-de-France_FR"
    values["unique_sub-region"] = "Paris_Ile-de-France_FR"
    values["unique_city"] = "Paris_Paris_Ile-de-France_FR"
    return [values[name] for name in HEADER]


def write_csv(path, rows, header=HEADER):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_zip(path, members: dict[str, bytes]):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_collection(root):
    """12 rows: 6 good photos and one of each bad kind; returns (csv path, images folder)."""
    images = os.path.join(root, "images")
    write_zip(os.path.join(images, "train", "00.zip"), {f"{i}.jpg": jpeg() for i in (1, 2, 3)})
    write_zip(  # the member's folder inside the zip does not matter: key = file name stem
        os.path.join(images, "train", "01.zip"),
        {"train/4.jpg": jpeg(), "train/5.jpg": jpeg(), "train/9.jpg": b"not a jpeg at all"},
    )
    broken = write_zip(os.path.join(images, "train", "02.zip"), {"8.jpg": jpeg(), "6.jpg": jpeg()})
    with open(broken, "r+b") as f:  # truncated download: the central directory is gone
        f.truncate(os.path.getsize(broken) // 2)
    write_zip(os.path.join(images, "test", "00.zip"), {"6.jpg": jpeg()})
    rows = [
        row(1),
        row(2, captured_at="2017-07-14T02:40:00Z"),
        row(3, creator="1002", sequence="seqB"),
        row(4, captured_at=""),  # kept, time unknown
        row(5),
        row(6),  # in test/00.zip (its copy in the truncated zip is unreadable)
        row(10, lat="95.0", lon="120.0"),  # bad_coordinates (lat beyond 90; not a swap: lon beyond 90)
        row(11, lat="", lon=""),  # no_coordinates
        row(12),  # missing_image: in no zip
        row(9),  # bad_image: the member holds garbage
        row(1),  # duplicate_id
        row(8),  # missing_image: only in the truncated zip
        row(13, captured_at="yesterday"),  # bad_field
        row(14)[:-3],  # wrong_field_count
    ]
    return write_csv(os.path.join(root, "train.csv"), rows), images


def read_all(path, images, album_key="creator"):
    skips = common.SkipLog()
    chunks = list(
        osv5m.read(
            path,
            template=None,
            user_hasher=UserHasher("salt"),
            skips=skips,
            options=ReadOptions(os.path.realpath(images), album_key),
            chunk_lines=4,
        )
    )
    return chunks[-1][0], pd.concat([pd.DataFrame(c) for _, c in chunks], ignore_index=True), skips


def test_reader_keeps_good_rows_and_counts_the_others(tmp_path):
    path, images = make_collection(str(tmp_path))
    lines, df, skips = read_all(path, images)
    assert lines == 14
    assert dict(skips.counts) == {
        "bad_coordinates": 1,
        "no_coordinates": 1,
        "bad_field": 1,
        "wrong_field_count": 1,
    }
    assert lines == len(df) + sum(skips.counts.values())
    assert list(df["photo_id"]) == ["1", "2", "3", "4", "5", "6", "12", "9", "1", "8"]
    assert list(df["image_path"]) == list(df["photo_id"])  # the archive key is the id
    first = df.iloc[0]
    assert (first.lat_e7, first.lon_e7) == (488566000, 23522000)
    # captured_at in epoch milliseconds, ISO 8601, or empty (unknown).
    assert list(df["posted_at"][:4]) == [1500000000, 1500000000, 1500000000, -1]
    assert (first.country, first.region, first.sub_region, first.city) == (
        "FR",
        "Ile-de-France_FR",
        "Paris_Ile-de-France_FR",
        "Paris_Paris_Ile-de-France_FR",
    )
    hasher = UserHasher("salt")
    assert first.user_hash == hasher(b"1001") and df.iloc[2].user_hash == hasher(b"1002")
    assert (df["container"] == -1).all()  # the plumbing locates the member through the index
    assert USERNAME not in df.to_string() and "SECRET_URL" not in df.to_string()


def test_a_file_without_a_unique_column_gives_that_level_from_the_plain_column(tmp_path):
    """A trimmed copy of test.csv without ``unique_city``: the city is the plain ``city`` column,
    the other levels still OSV-5M's joined ``unique_*`` strings."""
    header = [name for name in HEADER if name != "unique_city"]
    full = row(1)
    path = write_csv(
        tmp_path / "test.csv", [[v for name, v in zip(HEADER, full) if name != "unique_city"]], header
    )
    images = tmp_path / "images"
    write_zip(str(images / "test" / "00.zip"), {"1.jpg": jpeg()})
    _, df, _ = read_all(str(path), str(images))
    first = df.iloc[0]
    assert (first.country, first.region, first.sub_region, first.city) == (
        "FR",
        "Ile-de-France_FR",
        "Paris_Ile-de-France_FR",
        "Paris",
    )


def test_album_key_sequence_hashes_the_sequence(tmp_path):
    path, images = make_collection(str(tmp_path))
    _, df, _ = read_all(path, images, album_key="sequence")
    hasher = UserHasher("salt")
    assert df.iloc[0].user_hash == hasher(b"seqA") and df.iloc[2].user_hash == hasher(b"seqB")


def test_swapped_latitude_and_longitude_are_read_the_other_way_round(tmp_path):
    # Longitudes beyond +-90 in the "latitude" column and none in the "longitude" one prove a swap.
    rows = [row(i, lat=lon, lon=lat) for i, (lat, lon) in enumerate([("40.7", "-74.0"), ("35.7", "139.7")])]
    path = write_csv(str(tmp_path / "test.csv"), rows)
    _, df, skips = read_all(path, str(tmp_path))
    assert not skips.counts
    assert list(df["lat_e7"]) == [407000000, 357000000] and list(df["lon_e7"]) == [-740000000, 1397000000]


def test_zip_index_and_reader(tmp_path):
    path, images = make_collection(str(tmp_path))
    index = archives.index_zips(images)
    assert [os.path.relpath(a.parts[0], os.path.realpath(images)) for a in index.archives] == [
        "test/00.zip",
        "train/00.zip",
        "train/01.zip",
    ]  # train/02.zip is truncated: absent
    assert sorted(index.members["key"]) == ["1", "2", "3", "4", "5", "6", "9"]
    assert (index.members["offset"] == -1).all()
    with archives.ArchiveReader(index.archives) as reader:
        data = reader.read(2, "4", -1, -1)
        assert Image.open(io.BytesIO(data)).size == (40, 30)
        with pytest.raises(ImageSkipped) as e:
            reader.read(2, "12", -1, -1)
        assert e.value.reason == common.MISSING_IMAGE and "01.zip: member 12" in e.value.detail


def test_a_member_failing_its_crc_is_a_missing_image(tmp_path):
    good = jpeg()
    path = write_zip(str(tmp_path / "a.zip"), {"7.jpg": good})
    blob = open(path, "rb").read()
    at = blob.index(good) + len(good) // 2
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(bytes([blob[at] ^ 0xFF]))
    index = archives.index_zips(str(tmp_path))
    with pytest.raises(ImageSkipped) as e:
        archives.ArchiveReader(index.archives).read(0, "7", -1, -1)
    assert e.value.reason == common.MISSING_IMAGE and "CRC" in e.value.detail


def test_ingestion_writes_the_good_photos_and_counts_each_bad_one(tmp_path):
    path, images = make_collection(str(tmp_path))
    out = str(tmp_path / "out")
    config = IngestConfig(format="osv5m", metadata=(path,), images=images, workers=1, max_image_side=32)
    summary = ingest.run_ingestion(config, out)
    print(summary)
    assert summary["lines_read"] == 14
    assert summary["examples_written"] == 6  # ids 1-6
    assert {k: v for k, v in summary["skipped"].items() if v} == {
        "wrong_field_count": 1,
        "bad_field": 1,
        "no_coordinates": 1,
        "bad_coordinates": 1,
        "duplicate_id": 1,
        "missing_image": 2,  # 12 (in no zip), 8 (only in the truncated zip)
        "bad_image": 1,  # 9
    }
    tables = pd.concat(
        [pd.read_parquet(os.path.join(out, "tables", f)) for f in os.listdir(os.path.join(out, "tables"))]
    )
    assert sorted(tables["photo_id"]) == ["1", "2", "3", "4", "5", "6"]
    assert set(zip(tables["country"], tables["region"], tables["sub_region"], tables["city"])) == {
        ("FR", "Ile-de-France_FR", "Paris_Ile-de-France_FR", "Paris_Paris_Ile-de-France_FR")
    }
    blob = b"".join(open(os.path.join(d, f), "rb").read() for d, _, files in os.walk(out) for f in files)
    assert USERNAME.encode() not in blob and b"SECRET_URL" not in blob


def test_an_archive_reached_through_a_symlink_out_of_the_images_folder_is_not_read(tmp_path):
    outside = write_zip(str(tmp_path / "elsewhere" / "99.zip"), {"99.jpg": jpeg()})
    images = tmp_path / "images"
    write_zip(str(images / "train" / "00.zip"), {"1.jpg": jpeg()})
    os.symlink(outside, images / "train" / "01.zip")
    index = archives.index_zips(str(images))
    assert list(index.members["key"]) == ["1"] and len(index.archives) == 1


def test_the_header_tells_an_osv5m_file(tmp_path):
    from data_pipelines.readers import mp16pro

    header = ",".join(HEADER).encode()
    assert osv5m.sniff("train.csv", header) and not mp16pro.sniff("train.csv", header)
    assert not osv5m.sniff("x.csv", b"IMG_ID,AUTHOR,LAT,LON")
