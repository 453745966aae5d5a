"""A folder of one's own photos: GPS and DateTimeOriginal from EXIF, every other file kept or counted."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import ExifTags, Image

from data_pipelines.readers import exif
from data_pipelines.readers.formats import ReadOptions
from tests.data_pipelines.test_format_webdataset import read_chunks

SYDNEY = ("S", (33, 52, 7.76), "E", (151, 12, 33.48))  # -33.868822, 151.2093
PARIS = ("N", (48, 51, 23.76), "E", (2, 21, 7.92))  # 48.8566, 2.3522


def photo_bytes(gps=None, taken=None, offset=None, fmt="JPEG", size=(32, 24), noise=False) -> bytes:
    """A small photo with EXIF GPS (lat ref, lat, lon ref, lon) and DateTimeOriginal as given;
    ``noise``: random pixels (kilobytes of compressed data after the header)."""
    tags = Image.Exif()
    if gps is not None:
        lat_ref, lat, lon_ref, lon = gps
        tags[ExifTags.IFD.GPSInfo] = {
            ExifTags.GPS.GPSLatitudeRef: lat_ref,
            ExifTags.GPS.GPSLatitude: tuple(float(x) for x in lat),
            ExifTags.GPS.GPSLongitudeRef: lon_ref,
            ExifTags.GPS.GPSLongitude: tuple(float(x) for x in lon),
        }
    if taken is not None:
        exif_ifd = {ExifTags.Base.DateTimeOriginal: taken}
        if offset is not None:
            exif_ifd[ExifTags.Base.OffsetTimeOriginal] = offset
        tags[ExifTags.IFD.Exif] = exif_ifd
    out = io.BytesIO()
    if noise:
        pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
    else:
        image = Image.new("RGB", size, (90, 140, 200))
    image.save(out, format=fmt, exif=tags)
    return out.getvalue()


def write(folder, name, data: bytes) -> None:
    path = os.path.join(folder, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def build_folder(tmp_path) -> str:
    """A person's photos, with one file of each kind that cannot be kept."""
    folder = str(tmp_path / "photos")
    write(folder, "a_sydney.jpg", photo_bytes(SYDNEY, "2014:06:01 14:30:00", "+10:00"))
    write(folder, "b_no_gps.jpg", photo_bytes(None, "2014:06:01 14:30:00"))
    write(folder, "c_garbage.jpg", b"this is not a photo")
    write(folder, "d_bad_ref.jpg", photo_bytes(("X", (10, 0, 0), "E", (20, 0, 0))))
    write(folder, "e_out_of_range.jpg", photo_bytes(("N", (95, 0, 0), "E", (20, 0, 0))))
    write(folder, "f_bad_date.jpg", photo_bytes(PARIS, "2014:13:45 99:00:00"))
    write(folder, "g_unknown_date.JPG", photo_bytes(PARIS, "0000:00:00 00:00:00"))
    write(folder, "h_paris.png", photo_bytes(PARIS, "2015:07:14 22:00:00", fmt="PNG"))  # no offset: UTC
    os.symlink("/etc/hostname", os.path.join(folder, "i_link_outside.jpg"))
    os.mkfifo(os.path.join(folder, "j_fifo.jpg"))
    os.symlink("deleted.jpg", os.path.join(folder, "k_dangling.jpg"))  # a photo since removed
    write(folder, "notes.txt", b"not a photo: passed over")
    write(folder, ".hidden.jpg", photo_bytes(PARIS))  # hidden: passed over
    write(folder, "trip/z_paris.webp", photo_bytes(PARIS, fmt="WEBP"))
    return folder


def read_all(folder, chunk_lines=1 << 18, max_pixels=10_000_000):
    options = ReadOptions(images_root=os.path.realpath(folder), max_pixels=max_pixels)
    return read_chunks(exif.read_exif_folder, folder, options, chunk_lines)


def test_photos_kept_and_each_bad_kind_counted(tmp_path):
    folder = build_folder(tmp_path)
    out, counts, skips = read_all(folder)
    assert counts[-1] == 12  # photos by name, in the sorted walk (sub-folders after the files)
    assert list(out["photo_id"]) == ["a_sydney.jpg", "g_unknown_date.JPG", "h_paris.png", "trip/z_paris.webp"]
    assert list(out["image_path"]) == list(out["photo_id"])
    assert set(out["container"]) == {-1}
    assert list(out["line"]) == [1, 7, 8, 12]
    assert counts[-1] == len(out["photo_id"]) + sum(skips.counts.values())
    assert dict(skips.counts) == {
        "no_coordinates": 1,
        "bad_image": 1,
        "bad_coordinates": 2,
        "bad_field": 1,
        "outside_images": 1,
        "not_a_file": 1,
        "missing_image": 1,
    }
    # S and W are negative: -(33 + 52/60 + 7.76/3600), 151 + 12/60 + 33.48/3600.
    assert (out["lat_e7"][0], out["lon_e7"][0]) == (-338688222, 1512093000)
    assert (out["lat_e7"][2], out["lon_e7"][2]) == (488566000, 23522000)
    # 14:30 at +10:00 is 04:30 UTC; without an offset the local time is taken as UTC; zeros: unknown.
    assert list(out["posted_at"]) == [1401597000, -1, 1436911200, -1]
    assert set(out["user_hash"]) == {"h:exif:folder-owner"}
    # Messages: the photo's position in the walk and its name.
    assert skips.examples["no_coordinates"] == [
        f"{folder}:2: no_coordinates ('b_no_gps.jpg': no GPSLatitude/GPSLongitude in its EXIF)"
    ]
    assert skips.examples["bad_field"][0].startswith(
        f"{folder}:6: bad_field ('f_bad_date.jpg': DateTimeOriginal="
    )
    assert "expected N or S" in skips.examples["bad_coordinates"][0]
    assert skips.examples["not_a_file"] == [
        f"{folder}:10: not_a_file (j_fifo.jpg is a FIFO; expected a regular file)"
    ]
    assert skips.examples["missing_image"] == [
        f"{folder}:11: missing_image (k_dangling.jpg: No such file or directory)"
    ]


def test_header_checks_before_exif(tmp_path):
    folder = str(tmp_path / "big")
    write(folder, "big.jpg", photo_bytes(PARIS, size=(200, 100)))
    out, counts, skips = read_all(folder, max_pixels=10_000)
    assert counts[-1] == 1 and len(out["photo_id"]) == 0
    assert "20,000 pixels is over the limit of 10,000" in skips.examples["bad_image"][0]


def test_chunks_count_photos_read_so_far(tmp_path):
    folder = str(tmp_path / "many")
    for i in range(5):
        write(folder, f"p{i}.jpg", photo_bytes(("N", (10 + i, 0, 0), "W", (20, 30, 0))))
    out, counts, skips = read_all(folder, chunk_lines=2)
    assert counts == [2, 4, 5]
    assert list(out["lat_e7"]) == [100000000, 110000000, 120000000, 130000000, 140000000]
    assert set(out["lon_e7"]) == {-205000000}


def test_walk_is_sorted_and_skips_other_files(tmp_path):
    folder = str(tmp_path / "walk")
    for name in ("b.jpg", "a.jpeg", "sub/c.png", "sub/.x.jpg", ".cache/d.jpg", "e.mov", "a/f.webp"):
        write(folder, name, b"x")
    assert exif.photo_paths(folder) == ["a.jpeg", "b.jpg", "a/f.webp", "sub/c.png"]


def test_ingestion_writes_the_geotagged_photos_with_exact_skip_counts(tmp_path):
    """End to end, --format=exif with --images alone: the reader's skips and the workers' together."""
    import json

    from data_pipelines import ingest
    from data_pipelines.config import IngestConfig

    folder = build_folder(tmp_path)
    # Header and EXIF intact, pixels cut short: only decoding finds it (a worker's bad_image).
    write(folder, "m_cut.jpg", photo_bytes(PARIS, size=(128, 96), noise=True)[:-2000])
    summary = ingest.run_ingestion(
        IngestConfig(format="exif", images=folder, max_image_side=64, examples_per_shard=4, workers=1),
        str(tmp_path / "out"),
    )
    print(json.dumps({k: summary[k] for k in ("lines_read", "examples_written", "skipped")}, indent=1))
    assert summary["lines_read"] == 13
    assert summary["examples_written"] == 4
    assert summary["skipped"] == {
        "too_long": 0,
        "wrong_field_count": 0,
        "bad_field": 1,
        "no_coordinates": 1,
        "bad_coordinates": 2,
        "zero_coordinates": 0,
        "video": 0,
        "duplicate_id": 0,
        "missing_image": 1,
        "placeholder_image": 0,
        "outside_images": 1,
        "not_a_file": 1,
        "bad_image": 2,  # garbage (reader), cut pixels (worker)
    }
