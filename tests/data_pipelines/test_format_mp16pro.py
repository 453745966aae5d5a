"""MP-16 in archives: MP16-Pro (CSV + mp-16-images tar split into parts) and GeoEstimation's msgpack
shards (shard_<n>.msg + the MP-16 CSV), read without unpacking."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tarfile

import msgpack
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from data_pipelines import archives, errors, ingest
from data_pipelines.config import IngestConfig
from data_pipelines.hashing import UserHasher
from data_pipelines.ingest.image_files import ImageSkipped
from data_pipelines.readers import common, mp16pro
from data_pipelines.readers.formats import ReadOptions

# MP16-Pro's MP16_Pro_places365.csv header; GeoEstimation's mp16_places365.csv is its first 10.
HEADER = (
    "IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,Prob_urban,"
    "neighbourhood,city,county,state,region,country,continent"
).split(",")
AUTHOR = "12345678@N00"


def jpeg(color=(200, 120, 40), size=(36, 28)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG")
    return out.getvalue()


def padded(jpeg_bytes: bytes, total: int) -> bytes:
    """``jpeg_bytes`` grown to exactly ``total`` bytes by a JPEG comment segment of zero bytes after
    its start-of-image marker: the same pixels, any size."""
    payload = total - len(jpeg_bytes) - 4  # the segment's marker and length field: 4 bytes
    assert 0 <= payload < 65534
    return jpeg_bytes[:2] + b"\xff\xfe" + (payload + 2).to_bytes(2, "big") + bytes(payload) + jpeg_bytes[2:]


def photo(**kwargs) -> bytes:
    """A photo as MP16-Pro's tar holds it: a real photo is larger than a placeholder (5,120 bytes)."""
    return padded(jpeg(**kwargs), 6000)


def img_id(n: int) -> str:
    return f"e5/2d/{n}.jpg"


def row(n, lat="52.52", lon="13.405", author=AUTHOR, indoor="0.25"):
    return [img_id(n), author, lat, lon, "1", "6", "150", indoor, "0.5", "0.25"] + [
        "Mitte",
        "Berlin",
        "Berlin-Mitte",
        "Berlin",
        "Central Europe",
        "Germany",
        "Europe",
    ]


def write_csv(path, rows, header=HEADER):
    width = len(header)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(r[:width] if len(r) >= len(HEADER) else r for r in rows)
    return path


def bad_rows():
    """Rows of each bad kind the reader itself counts, and a duplicate (counted by the plumbing)."""
    return [
        row(20, lat="95.0", lon="120.0"),  # bad_coordinates
        row(21, lat="", lon=""),  # no_coordinates
        row(22, author=""),  # bad_field: no user
        row(23)[:5],  # wrong_field_count
        row(1),  # duplicate_id
    ]


def build_tar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def make_mp16pro(root):
    """The tar of photos 1-5 and 9 (garbage), split into 3 parts with the last one cut inside
    photo 8's data; photos 6 (absent) and 8 (cut) are missing. Every member is larger than a
    placeholder."""
    images = os.path.join(root, "images")
    os.makedirs(images)
    members = {f"mp-16-images/{archives.slash_key(img_id(n))}": photo() for n in (1, 2, 3, 4, 5)}
    members[f"mp-16-images/{archives.slash_key(img_id(9))}"] = b"GARBAGE" * 800
    members[f"mp-16-images/{archives.slash_key(img_id(8))}"] = photo(size=(64, 64))
    blob = build_tar(members)
    blob = blob[: blob.index(members[f"mp-16-images/{archives.slash_key(img_id(8))}"]) + 100]
    third = len(blob) // 3  # part boundaries fall inside members' data
    for k, (start, stop) in enumerate([(0, third), (third, 2 * third), (2 * third, len(blob))]):
        with open(os.path.join(images, f"mp-16-images{k:02d}"), "wb") as f:
            f.write(blob[start:stop])
    rows = [row(n) for n in (1, 2, 3, 4, 5)] + [row(6), row(9), row(8)] + bad_rows()
    return write_csv(os.path.join(root, "MP16_Pro_places365.csv"), rows), images


def make_msgpack(root):
    """Shards of photos 1-5 and 9 (garbage), one shard cut inside photo 8's record, and a record
    without an id; photos 6 (absent) and 8 (cut) are missing. The CSV is GeoEstimation's."""
    images = os.path.join(root, "mp16")
    os.makedirs(images)
    shards = {
        "shard_0.msg": [{"image": jpeg(), "id": img_id(n)} for n in (1, 2, 3)],
        "shard_1.msg": [{"image": jpeg(), "id": img_id(n)} for n in (4, 5)]
        + [{"image": b"GARBAGE" * 50, "id": img_id(9)}, {"no": "id"}],
        "shard_2.msg": [{"image": jpeg(), "id": img_id(7)}, {"image": jpeg(size=(64, 64)), "id": img_id(8)}],
    }
    for name, records in shards.items():
        with open(os.path.join(images, name), "wb") as f:
            for record in records:
                f.write(msgpack.packb(record))
    cut = os.path.join(images, "shard_2.msg")
    with open(cut, "r+b") as f:
        f.truncate(os.path.getsize(cut) - 50)
    rows = [row(n) for n in (1, 2, 3, 4, 5)] + [row(6), row(9), row(8)] + bad_rows()
    return write_csv(os.path.join(root, "mp16_places365.csv"), rows, header=HEADER[:10]), images


def read_all(read, path, images):
    skips = common.SkipLog()
    chunks = list(
        read(
            path,
            template=None,
            user_hasher=UserHasher("salt"),
            skips=skips,
            options=ReadOptions(os.path.realpath(images)),
            chunk_lines=3,
        )
    )
    return chunks[-1][0], pd.concat([pd.DataFrame(c) for _, c in chunks], ignore_index=True), skips


READER_SKIPS = {"bad_coordinates": 1, "no_coordinates": 1, "bad_field": 1, "wrong_field_count": 1}


def test_mp16pro_reader(tmp_path):
    path, images = make_mp16pro(str(tmp_path))
    lines, df, skips = read_all(mp16pro.read, path, images)
    assert lines == 13 and dict(skips.counts) == READER_SKIPS
    assert lines == len(df) + sum(skips.counts.values())
    assert list(df["photo_id"]) == [img_id(n) for n in (1, 2, 3, 4, 5, 6, 9, 8, 1)]
    assert df.iloc[0].image_path == "e5_2d_1.jpg"  # the tar member's name
    first = df.iloc[0]
    assert (first.lat_e7, first.lon_e7, first.posted_at) == (525200000, 134050000, -1)
    assert first.outdoor_prob == pytest.approx(0.75)  # 1 - Prob_indoor
    assert (first.country, first.region, first.sub_region, first.city) == (
        "Germany",
        "Berlin",
        "Berlin-Mitte",
        "Berlin",
    )
    assert first.user_hash == UserHasher("salt")(AUTHOR.encode())
    assert AUTHOR not in df.to_string()


def test_swapped_columns_are_detected(tmp_path):
    rows = [row(1, lat="-74.0", lon="40.7"), row(2, lat="139.7", lon="35.7")]
    path = write_csv(str(tmp_path / "m.csv"), rows)
    _, df, skips = read_all(mp16pro.read, path, str(tmp_path))
    assert not skips.counts
    assert list(df["lat_e7"]) == [407000000, 357000000] and list(df["lon_e7"]) == [-740000000, 1397000000]


def test_tar_parts_are_indexed_and_read_as_one_tar(tmp_path):
    _, images = make_mp16pro(str(tmp_path))
    index = archives.index_tar_parts(images)
    assert len(index.archives) == 1 and [os.path.basename(p) for p in index.archives[0].parts] == [
        "mp-16-images00",
        "mp-16-images01",
        "mp-16-images02",
    ]
    keys = list(index.members["key"])
    assert keys == [f"e5_2d_{n}.jpg" for n in (1, 2, 3, 4, 5, 9)]  # 8 is cut: not indexed
    with archives.ArchiveReader(index.archives) as reader:
        for key, offset, size in index.members[["key", "offset", "size"]].itertuples(index=False):
            data = reader.read(0, key, offset, size)
            assert len(data) == size
            if key != "e5_2d_9.jpg":
                assert Image.open(io.BytesIO(data)).size == (36, 28)
        with pytest.raises(ImageSkipped) as e:  # a range past the end: the part was cut since
            reader.read(0, "e5_2d_8.jpg", sum(os.path.getsize(p) for p in index.archives[0].parts) - 10, 500)
        assert e.value.reason == common.MISSING_IMAGE and "e5_2d_8.jpg" in e.value.detail
        # A header claiming a huge member is refused before anything is read into memory.
        with pytest.raises(ImageSkipped) as e:
            reader.read(0, "e5_2d_1.jpg", 0, archives.MAX_MEMBER_BYTES + 1)
        assert e.value.reason == common.MISSING_IMAGE and "expected at most" in e.value.detail


def test_msgpack_shards_are_indexed_by_record(tmp_path):
    _, images = make_msgpack(str(tmp_path))
    index = archives.index_msgpack_shards(images)
    assert [os.path.basename(a.parts[0]) for a in index.archives] == [
        "shard_0.msg",
        "shard_1.msg",
        "shard_2.msg",
    ]
    assert list(index.members["key"]) == [f"e5_2d_{n}.jpg" for n in (1, 2, 3, 4, 5, 9, 7)]
    with archives.ArchiveReader(index.archives) as reader:
        container, offset, size = index.members.iloc[4][["container", "offset", "size"]]
        assert Image.open(
            io.BytesIO(reader.read(int(container), "e5_2d_5.jpg", int(offset), int(size)))
        ).size == (
            36,
            28,
        )
        with pytest.raises(ImageSkipped) as e:  # a range that is not one record
            reader.read(0, "e5_2d_1.jpg", 1, 20)
        assert e.value.reason == common.MISSING_IMAGE


def test_msgpack_without_the_package_names_the_extra(tmp_path, monkeypatch):
    path, images = make_msgpack(str(tmp_path))
    monkeypatch.setitem(sys.modules, "msgpack", None)  # import msgpack raises ImportError
    with pytest.raises(errors.ConfigError, match=r"'formats' extra"):
        read_all(mp16pro.read_for_shards, path, images)
    with pytest.raises(errors.ConfigError, match=r"'formats' extra"):
        archives.index_msgpack_shards(images)


EXPECTED_SKIPS = {
    **READER_SKIPS,
    "duplicate_id": 1,
    "missing_image": 2,  # 6 (in no archive), 8 (cut off the last part / shard)
    "bad_image": 1,  # 9
}


@pytest.mark.parametrize("fmt, make", [("mp16pro", make_mp16pro), ("msgpack", make_msgpack)])
def test_ingestion_writes_the_good_photos_and_counts_each_bad_one(tmp_path, fmt, make):
    path, images = make(str(tmp_path))
    config = IngestConfig(format=fmt, metadata=(path,), images=images, workers=1, max_image_side=32)
    summary = ingest.run_ingestion(config, str(tmp_path / "out"))
    print(summary)
    assert summary["lines_read"] == 13
    assert summary["examples_written"] == 5  # photos 1-5
    assert {k: v for k, v in summary["skipped"].items() if v} == EXPECTED_SKIPS


@pytest.mark.parametrize("engine", ["local", "beam"])
def test_placeholders_of_deleted_photos_are_counted_and_skipped(tmp_path, engine):
    """Photo 1's member has 5,120 bytes: a placeholder (G3 keeps members of more than 5,120 bytes),
    though it decodes; photo 2's, a real JPEG of 5,121 bytes, is kept. Both engines plan alike."""
    if engine == "beam":
        pytest.importorskip("apache_beam")
    images = tmp_path / "images"
    images.mkdir()
    members = {
        f"mp-16-images/{archives.slash_key(img_id(1))}": padded(jpeg(), 5120),
        f"mp-16-images/{archives.slash_key(img_id(2))}": padded(jpeg(color=(10, 90, 200)), 5121),
    }
    (images / "mp-16-images00").write_bytes(build_tar(members))
    for data in members.values():
        assert Image.open(io.BytesIO(data)).size == (36, 28)  # both are images
    path = write_csv(str(tmp_path / "MP16_Pro_places365.csv"), [row(1), row(2)])
    beam = {"engine": "beam", "beam_pipeline_options": "--runner=DirectRunner"} if engine == "beam" else {}
    config = IngestConfig(
        format="mp16pro", metadata=(path,), images=str(images), workers=1, max_image_side=32, **beam
    )
    summary = ingest.run_ingestion(config, str(tmp_path / "out"))
    assert summary["lines_read"] == 2 and summary["examples_written"] == 1
    assert {k: v for k, v in summary["skipped"].items() if v} == {"placeholder_image": 1}
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["skipped"]["placeholder_image"] == 1
    assert "e5_2d_1.jpg" in json.dumps(written)  # the first skips are named (file:line, member)
    tables = pd.concat([pd.read_parquet(p) for p in (tmp_path / "out" / "tables").glob("*.parquet")])
    assert list(tables["photo_id"]) == [img_id(2)]


def test_the_placeholder_rule_is_g3s():
    sizes = np.array([-1, 0, 5119, 5120, 5121, 80_000])  # -1: a zip member, whose size is not kept
    assert archives.placeholder_members(sizes).tolist() == [False, True, True, True, False, False]


def test_the_header_tells_an_mp16pro_file_from_a_plain_mp16_one():
    assert mp16pro.sniff("MP16_Pro_places365.csv", ",".join(HEADER).encode())
    assert not mp16pro.sniff("mp16_places365.csv", ",".join(HEADER[:10]).encode())  # the csv format's


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_tar_headers_long_names_and_folders(tmp_path, tar_format):
    long = "d" * 120 + "/e5_2d_1.jpg"  # beyond ustar's 100-character name: a GNU or pax header
    members = {"mp-16-images/e5_2d_2.jpg": jpeg(), "mp-16-images/sub/": b"", "x/e5_2d_3.jpg": b"abc"}
    if tar_format != tarfile.USTAR_FORMAT:
        members[long] = jpeg(size=(20, 10))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tar_format) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name.rstrip("/"))
            info.type = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tmp_path / "photos.tar").write_bytes(out.getvalue())
    index = archives.index_tar_parts(str(tmp_path))
    found = dict(zip(index.members["key"], zip(index.members["offset"], index.members["size"])))
    expected = {"e5_2d_2.jpg", "e5_2d_3.jpg"} | (
        {"e5_2d_1.jpg"} if tar_format != tarfile.USTAR_FORMAT else set()
    )
    assert set(found) == expected  # the folder member is not a photo
    with archives.ArchiveReader(index.archives) as reader:
        assert reader.read(0, "e5_2d_3.jpg", *found["e5_2d_3.jpg"]) == b"abc"
        if "e5_2d_1.jpg" in found:
            assert Image.open(io.BytesIO(reader.read(0, "e5_2d_1.jpg", *found["e5_2d_1.jpg"]))).size == (
                20,
                10,
            )
