"""webdataset tar shards: samples grouped by key, kept or counted by reason, images as byte ranges."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

from data_pipelines import errors
from data_pipelines.readers import SkipLog, formats, webdataset
from data_pipelines.readers.formats import ReadOptions


def jpeg_bytes(color=(200, 30, 30), size=(32, 24)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG")
    return out.getvalue()


def write_tar(path, members) -> str:
    """``members``: (name, bytes) in order, written as img2dataset/webdataset's TarWriter does."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def sample(key, document=None, image=True, raw_json=None):
    out = []
    if image:
        out.append((f"{key}.jpg", image if isinstance(image, bytes) else jpeg_bytes()))
    if raw_json is not None:
        out.append((f"{key}.json", raw_json))
    elif document is not None:
        out.append((f"{key}.json", json.dumps(document).encode()))
    return out


def read_chunks(read, path, options, chunk_lines=1 << 18, user_hasher=None):
    """All chunks of a format's ``read`` joined, every count it yielded, and its skips."""
    skips = SkipLog(20)
    counts, chunks = [], []
    for count, columns in read(
        path,
        template=None,
        user_hasher=user_hasher or (lambda u: "h:" + u.decode("utf-8", "backslashreplace")),
        skips=skips,
        options=options,
        chunk_lines=chunk_lines,
    ):
        counts.append(count)
        chunks.append(columns)
    out = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return out, counts, skips


def read_all(path, file_index=0, chunk_lines=1 << 18):
    options = ReadOptions(images_root=os.path.dirname(path), file_index=file_index)
    return read_chunks(webdataset.read_webdataset, path, options, chunk_lines)


PARIS = {"latitude": 48.8566, "longitude": 2.3522}


def test_samples_kept_and_each_bad_kind_counted(tmp_path):
    garbage = b"\xff\xd8 not a jpeg at all"
    members = [
        ("__meta__", b"ignored"),  # webdataset metadata: no sample
        *sample(
            "000001",
            {
                **PARIS,
                "captured_at": 1_500_000_000_000,  # epoch milliseconds (OSV-5M)
                "creator_id": "alice",
                "creator_username": "NAME_SECRET",
                "url": "http://example.org/URL_SECRET.jpg",
                "caption": "CAPTION_SECRET",
                "country": "FR",
                "sub-region": "Paris",
                "city": "Paris",
                "accuracy": 16,
            },
        ),
        *sample("000002", {"LAT": "-33.8688", "LON": "151.2093", "posted_at": "2014-06-01T14:30:00Z"}),
        *sample("000003"),  # no json
        *sample("000004", raw_json=b"{not json"),
        *sample("000005", {"latitude": 10, "longitude": 20}, image=False),  # no image
        *sample("000006", {"latitude": 95, "longitude": 10}),
        *sample("000007", {"caption": "no place"}),
        *sample("000008", {"latitude": float("nan"), "longitude": 1.0}),
        *sample("000009", {"latitude": 1.5, "longitude": 2.5, "captured_at": "yesterday"}),
        *sample("000010", {"latitude": 0, "longitude": 0}),
        *sample("000011", {"latitude": 35.0, "longitude": 139.0}, image=garbage),  # worker: bad_image
        *sample("000012", [48.0, 2.0]),  # not an object
        # The same key written twice in a row: two samples, one photo id (ingestion: duplicate_id).
        *sample("000013", {"latitude": 40.0, "longitude": -3.0, "user_id": 12345}),
        *sample("000013", {"latitude": 41.0, "longitude": -4.0}),
    ]
    path = write_tar(tmp_path / "images" / "00000.tar", members)
    out, counts, skips = read_all(path, file_index=3)
    assert counts[-1] == 14  # samples, not members
    assert list(out["photo_id"]) == ["000001", "000002", "000011", "000013", "000013"]
    assert counts[-1] == len(out["photo_id"]) + sum(skips.counts.values())
    assert dict(skips.counts) == {
        "bad_field": 4,  # no json, bad json, bad time, not an object
        "missing_image": 1,
        "bad_coordinates": 2,  # 95 degrees, NaN
        "no_coordinates": 1,
        "zero_coordinates": 1,
    }
    assert list(out["line"]) == [1, 2, 11, 13, 14]
    assert list(out["lat_e7"][:2]) == [488566000, -338688000]
    assert list(out["lon_e7"][:2]) == [23522000, 1512093000]
    assert list(out["posted_at"][:2]) == [1_500_000_000, 1_401_633_000]
    assert out["posted_at"][2] == -1
    # Users hashed from their raw bytes; none given: each photo its own user.
    assert list(out["user_hash"]) == [
        "h:alice",
        "h:photo:000002",
        "h:photo:000011",
        "h:12345",
        "h:photo:000013",
    ]
    assert out["accuracy"][0] == 16 and out["accuracy"][1] == -1
    assert (out["country"][0], out["region"][0], out["sub_region"][0], out["city"][0]) == (
        "FR",
        "",
        "Paris",
        "Paris",
    )
    # The image is a byte range of this shard (container = its position in --metadata).
    assert set(out["container"]) == {3}
    with open(path, "rb") as f:
        data = f.read()
    ranges = [data[o : o + s] for o, s in zip(out["offset"], out["size"])]
    assert ranges[0] == jpeg_bytes() and ranges[2] == garbage
    assert list(out["image_path"][:3]) == ["000001.jpg", "000002.jpg", "000011.jpg"]
    # No URL, caption or user name reaches the columns.
    text = repr({k: list(v) for k, v in out.items()})
    assert "SECRET" not in text
    # Messages name the shard, the sample's position and its key.
    assert skips.examples["missing_image"] == [
        f"{path}:5: missing_image (sample '000005' has no image member; expected <key>.jpg (or .jpeg, "
        ".png, .webp))"
    ]


def test_chunks_count_samples_read_so_far(tmp_path):
    members = [m for i in range(7) for m in sample(f"k{i}", {"latitude": i + 1, "longitude": 2})]
    path = write_tar(tmp_path / "a.tar", members)
    out, counts, skips = read_all(path, chunk_lines=3)
    # A chunk is handed out when 3 rows are kept, with the samples decided so far.
    assert counts == [3, 6, 7]
    assert len(out["photo_id"]) == 7 and not skips.counts


def test_swapped_latitude_longitude_read_the_other_way_round(tmp_path):
    # Longitudes in the "latitude" field: values beyond +-90 prove it.
    places = [(151.2, -33.9), (2.35, 48.86), (-74.0, 40.7), (139.7, 35.7)]
    members = [m for i, (a, b) in enumerate(places) for m in sample(f"s{i}", {"lat": a, "lon": b})]
    path = write_tar(tmp_path / "swapped.tar", members)
    out, counts, skips = read_all(path)
    assert counts[-1] == 4 and not skips.counts
    assert list(out["lat_e7"]) == [-339000000, 488600000, 407000000, 357000000]
    assert list(out["lon_e7"]) == [1512000000, 23500000, -740000000, 1397000000]


def good_tar(tmp_path, n=3):
    members = [m for i in range(n) for m in sample(f"k{i}", {"latitude": 10 + i, "longitude": 20})]
    return write_tar(tmp_path / "good.tar", members)


def cut_copy(path, size, name):
    with open(path, "rb") as f:
        data = f.read()
    out = os.path.join(os.path.dirname(path), name)
    with open(out, "wb") as f:
        f.write(data[:size] if size is not None else data)
    return out


def member_ends(path):
    with tarfile.open(path) as tar:
        return {m.name: (m.offset_data, m.offset_data + m.size) for m in tar.getmembers()}


def test_truncated_shard_keeps_the_samples_before_the_cut(tmp_path):
    path = good_tar(tmp_path)
    ends = member_ends(path)
    # Cut inside the last sample's image: two samples kept, the third counted.
    cut = cut_copy(path, ends["k2.jpg"][0] + 10, "cut_in_image.tar")
    out, counts, skips = read_all(cut)
    assert counts[-1] == 3 and list(out["photo_id"]) == ["k0", "k1"]
    assert dict(skips.counts) == {"missing_image": 1}
    assert "runs past the end of the file" in skips.examples["missing_image"][0]
    assert skips.examples["missing_image"][0].startswith(f"{cut}:3: missing_image (sample 'k2'")
    # Cut between two members (inside a header): the sample read last may have lost members.
    cut = cut_copy(path, ends["k1.json"][0] - 100, "cut_in_header.tar")
    out, counts, skips = read_all(cut)
    assert counts[-1] == 2 and list(out["photo_id"]) == ["k0"]
    assert dict(skips.counts) == {"missing_image": 1}
    # Cut right after the last member: no end-of-archive marker.
    cut = cut_copy(path, (ends["k2.json"][1] + 511) // 512 * 512, "no_end_marker.tar")
    out, counts, skips = read_all(cut)
    assert counts[-1] == 3 and list(out["photo_id"]) == ["k0", "k1"]
    assert "no end-of-archive marker" in skips.examples["missing_image"][0]
    # The intact shard: all three.
    out, counts, skips = read_all(path)
    assert counts[-1] == 3 and not skips.counts


def test_bytes_after_the_last_member_are_damage(tmp_path):
    path = good_tar(tmp_path, n=2)
    ends = member_ends(path)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    start = (ends["k1.json"][1] + 511) // 512 * 512
    data[start : start + 512] = b"\x01" * 512  # where the end-of-archive marker was
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(bytes(data))
    out, counts, skips = read_all(str(damaged))
    assert counts[-1] == 2 and list(out["photo_id"]) == ["k0"]
    assert "not a tar header" in skips.examples["missing_image"][0]


def test_compressed_or_foreign_file_is_one_clear_error(tmp_path):
    path = good_tar(tmp_path)
    gz = tmp_path / "good.tar.gz"
    gz.write_bytes(gzip.compress(open(path, "rb").read()))
    with pytest.raises(
        errors.LayoutError, match="good.tar.gz: not a readable tar .*expected an uncompressed tar"
    ):
        read_all(str(gz))


def test_format_auto_takes_tar_files_as_webdataset(tmp_path):
    path = good_tar(tmp_path)
    assert formats.resolve("auto", (path,)) == (webdataset.FORMAT,)
    assert not webdataset.sniff(str(tmp_path / "train.csv"), b"id,latitude,longitude")


def test_ingestion_writes_the_good_samples_with_exact_skip_counts(tmp_path):
    """End to end: shards inside --images, the workers reading each image's byte range."""
    from data_pipelines import ingest
    from data_pipelines.config import IngestConfig

    images = tmp_path / "images"
    broken = jpeg_bytes()[:60]  # a JPEG cut after its header: the worker cannot decode it
    first = write_tar(
        images / "shards" / "00000.tar",
        [
            *[m for i in range(4) for m in sample(f"a{i}", {"latitude": 40 + i, "longitude": -3})],
            *sample("a0", {"latitude": 41, "longitude": -4}),  # the key again: duplicate_id
            *sample("b1", {"latitude": 200, "longitude": 10}),  # bad_coordinates
            *sample("b2", {"caption": "no place"}),  # no_coordinates
            *sample("b3"),  # no json: bad_field
            *sample("b4", {"latitude": 10, "longitude": 20}, image=False),  # missing_image
            *sample("b5", {"latitude": 10, "longitude": 20}, image=b"GARBAGE"),  # bad_image
            *sample("b6", {"latitude": 10, "longitude": 20}, image=broken),  # bad_image
        ],
    )
    good = write_tar(
        images / "shards" / "full.tar",
        [m for i in range(3) for m in sample(f"c{i}", {"latitude": 50, "longitude": 8 + i})],
    )
    cut = cut_copy(good, member_ends(good)["c2.jpg"][0] + 10, "00001.tar")  # c0, c1 kept
    os.remove(good)
    swapped = write_tar(
        images / "shards" / "00002.tar",
        [m for i in range(3) for m in sample(f"d{i}", {"lat": 151.2, "lon": -33.9 + i})],
    )
    summary = ingest.run_ingestion(
        IngestConfig(
            format="webdataset",
            metadata=(first, cut, swapped),
            images=str(images),
            max_image_side=64,
            examples_per_shard=4,
            workers=1,
        ),
        str(tmp_path / "out"),
    )
    print(json.dumps({k: summary[k] for k in ("lines_read", "examples_written", "skipped")}, indent=1))
    assert summary["lines_read"] == 11 + 3 + 3
    assert summary["examples_written"] == 4 + 2 + 3
    assert summary["skipped"] == {
        "too_long": 0,
        "wrong_field_count": 0,
        "bad_field": 1,
        "no_coordinates": 1,
        "bad_coordinates": 1,
        "zero_coordinates": 0,
        "video": 0,
        "duplicate_id": 1,
        "missing_image": 2,  # b4, and c2 cut short
        "placeholder_image": 0,
        "outside_images": 0,
        "not_a_file": 0,
        "bad_image": 2,
    }


def test_folders_links_and_long_names(tmp_path):
    """Keys carry their folder; a long name (a pax header before the member) is still one member;
    folders and links are no sample's members."""
    long_key = "train/" + "x" * 150
    path = str(tmp_path / "mixed.tar")
    with tarfile.open(path, "w") as tar:
        folder = tarfile.TarInfo("train")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in [*sample(long_key, PARIS), *sample("train/0002", PARIS)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("train/0003.jpg")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/hostname"
        tar.addfile(link)
        info = tarfile.TarInfo("train/0003.json")
        document = json.dumps(PARIS).encode()
        info.size = len(document)
        tar.addfile(info, io.BytesIO(document))
    out, counts, skips = read_all(path)
    assert counts[-1] == 3
    assert list(out["photo_id"]) == [long_key, "train/0002"]
    assert dict(skips.counts) == {"missing_image": 1}  # the link is not an image member
    with open(path, "rb") as f:
        data = f.read()
    assert data[out["offset"][0] : out["offset"][0] + out["size"][0]] == jpeg_bytes()
