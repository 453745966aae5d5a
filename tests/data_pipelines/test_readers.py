"""Metadata readers: both YFCC layouts, CSV (Im2GPS/MP-16 headers), compression, swap, fuzz."""

from __future__ import annotations

import random

import numpy as np
import pytest

from data_pipelines import errors
from data_pipelines.readers import SkipLog, detect_layout, read_metadata_file
from tests.data_pipelines.conftest import corrupt, mmc_fields, write_lines, yfcc_fields


def read_all(path, template=None):
    skips = SkipLog(5)
    chunks, lines = [], 0
    for lines, columns in read_metadata_file(  # noqa: B007 - the count after the loop
        path,
        template=template,
        user_hasher=lambda u: "h:" + u.decode("utf-8", "backslashreplace"),
        skips=skips,
        chunk_lines=3,
    ):
        chunks.append(columns)
    out = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return out, lines, skips


@pytest.mark.parametrize("compress", [None, "bz2", "gz"])
def test_yfcc23_fields_and_compression(tmp_path, compress):
    lines = [
        "\t".join(
            yfcc_fields(42, user="99@N01", lat=48.8566123, lon=2.3522219, uploaded=1300000123, accuracy=14)
        ),
        "\t".join(yfcc_fields(43, lat=None, lon=None)),  # not geotagged
        "\t".join(yfcc_fields(44, video=True)),
        "\t".join(yfcc_fields(45, lat=0, lon=0)),
        # Out of range whichever way round (a single row beyond +-90 in a 2-row file would prove
        # a swap, common.swap_proven).
        "\t".join(yfcc_fields(46, lat=91.0, lon=120.0)),
        "\t".join(yfcc_fields(47, lat="north", lon=2.0)),
        "\t".join(yfcc_fields(48))[:-10],  # cut short: too few fields
        "\t".join(yfcc_fields("4x9")),
        "",
    ]
    path = write_lines(tmp_path / "yfcc", lines, compress)
    assert detect_layout(path) == "yfcc23"
    out, lines_read, skips = read_all(path)
    assert lines_read == 9
    assert list(out["photo_id"]) == ["42"]
    assert out["user_hash"][0] == "h:99@N01"
    assert out["posted_at"][0] == 1300000123
    assert out["lat_e7"][0] == 488566123 and out["lon_e7"][0] == 23522219
    assert out["accuracy"][0] == 14
    assert out["image_path"][0] == "42.jpg"
    assert out["line"][0] == 1
    assert dict(skips.counts) == {
        "no_coordinates": 1,
        "video": 1,
        "zero_coordinates": 1,
        "bad_coordinates": 2,
        "wrong_field_count": 2,
        "bad_field": 1,
    }
    assert skips.examples["video"][0].startswith(f"{path}:3: video")


def test_mmc25_layout_and_hash_template(tmp_path):
    lines = [
        "\t".join(
            mmc_fields(1, "abcdef0123456789abcdef0123456789", photo_id=7, lat=10.5, lon=-20.25, ext="png")
        ),
        "\t".join(mmc_fields(2, "0123456789abcdef0123456789abcdef", photo_id=8, video=True)),
    ]
    path = write_lines(tmp_path / "mmc.tsv", lines)
    assert detect_layout(path) == "mmc25"
    out, lines_read, skips = read_all(path, "{hash[0:3]}/{hash[3:6]}/{hash}.{ext}")
    assert lines_read == 2 and dict(skips.counts) == {"video": 1}
    assert out["photo_id"][0] == "7" and out["lat_e7"][0] == 105000000
    assert out["lon_e7"][0] == -202500000
    assert out["image_path"][0] == "abc/def/abcdef0123456789abcdef0123456789.png"


def test_hash_template_on_23_field_file_is_a_clear_error(tmp_path):
    path = write_lines(tmp_path / "y.tsv", ["\t".join(yfcc_fields(1))])
    with pytest.raises(errors.ConfigError, match=r"\{hash\}.*yfcc23"):
        read_all(path, "{hash}.jpg")


def test_unknown_layout_names_file_line_and_expectation(tmp_path):
    path = write_lines(tmp_path / "x.txt", ["", "a\tb\tc"])
    with pytest.raises(errors.LayoutError, match=r"x.txt:2: .*3 tab-separated.*expected 23"):
        detect_layout(path)


def test_csv_im2gps_header_iso_time_and_indoor_probability(tmp_path):
    lines = [
        "IMG_ID,AUTHOR,LAT,LON,S3_Label,Prob_indoor,posted_at,path",
        "a_1.jpg,alice,40.7128,-74.006,1,0.25,2015-06-01T12:00:00Z,sub/a.jpg",
        "a_2.jpg,bob,35.6762,139.6503,1,0.9,1433160000,sub/b.jpg",
        "a_3.jpg,bob,35.6762,139.6503,1,0.9,not a time,sub/c.jpg",
        "a_4.jpg,bob,35.6762",
    ]
    path = write_lines(tmp_path / "im2gps.csv", lines)
    assert detect_layout(path) == "csv"
    out, lines_read, skips = read_all(path)
    assert lines_read == 4  # the header is not a data line
    assert list(out["photo_id"]) == ["a_1.jpg", "a_2.jpg"]
    assert list(out["posted_at"]) == [1433160000, 1433160000]  # 2015-06-01T12:00Z = 1433160000
    np.testing.assert_allclose(out["outdoor_prob"], [0.75, 0.1], rtol=1e-6)
    assert list(out["image_path"]) == ["sub/a.jpg", "sub/b.jpg"]
    assert list(out["line"]) == [2, 3]
    assert dict(skips.counts) == {"bad_field": 1, "wrong_field_count": 1}


def test_csv_mp16_header_without_time(tmp_path):
    path = write_lines(tmp_path / "mp16.csv", ["IMG_ID,AUTHOR,LAT,LON,S3_Label", "x/1.jpg,u1,1.5,2.5,0"])
    out, _, _ = read_all(path)
    # The IMG_ID names its file already (MP-16's xx/yy/<id>.jpg): no second extension.
    assert out["posted_at"][0] == -1 and out["image_path"][0] == "x/1.jpg"


def test_csv_swapped_lat_lon_is_corrected_only_when_proven(tmp_path, caplog):
    swapped = ["IMG_ID,AUTHOR,LAT,LON", "p1,u,139.65,35.67", "p2,u,-74.0,40.7"]
    out, _, skips = read_all(write_lines(tmp_path / "swapped.csv", swapped))
    assert list(out["lat_e7"]) == [356700000, 407000000]
    assert list(out["lon_e7"]) == [1396500000, -740000000]
    assert "swapped" in caplog.text
    # All values within +-90: nothing proves a swap, so nothing changes.
    ambiguous = ["IMG_ID,AUTHOR,LAT,LON", "p1,u,-74.0,40.7"]
    out, _, _ = read_all(write_lines(tmp_path / "ambiguous.csv", ambiguous))
    assert out["lat_e7"][0] == -740000000
    # One stray row beyond +-90 among 200 regional rows is a bad row, not proof of a swap.
    regional = ["IMG_ID,AUTHOR,LAT,LON"] + [f"p{i},u,48.{i},2.{i}" for i in range(200)]
    regional.append("bad,u,123.0,2.0")
    out, _, skips = read_all(write_lines(tmp_path / "regional.csv", regional))
    assert len(out["photo_id"]) == 200 and skips.counts["bad_coordinates"] == 1


def test_csv_missing_required_column_is_a_clear_error(tmp_path):
    path = write_lines(tmp_path / "bad.csv", ["IMG_ID,LAT,LON,AUTHOR", "1,2,3,u"])
    assert detect_layout(path) == "csv"
    path = write_lines(tmp_path / "bad2.csv", ["id,user,lat", "1,u,2"])
    with pytest.raises(errors.LayoutError, match="no CSV header"):
        detect_layout(path)


def test_fuzz_thousands_of_corrupted_lines_never_crash(tmp_path):
    rng = random.Random(1234)
    lines = [
        corrupt("\t".join(yfcc_fields(i, lat=rng.uniform(-80, 80), lon=rng.uniform(-170, 170))), rng)
        for i in range(3000)
    ]
    path = tmp_path / "fuzz.tsv"
    path.write_bytes("\t".join(yfcc_fields(0)).encode() + b"\n" + b"\n".join(lines) + b"\n")
    out, lines_read, skips = read_all(str(path))
    assert lines_read == 3001
    assert lines_read == len(out["photo_id"]) + sum(skips.counts.values())
    assert np.all(np.abs(out["lat_e7"]) <= 900_000_000) and np.all(np.abs(out["lon_e7"]) <= 1_800_000_000)
    assert 0 < len(out["photo_id"]) < 3001 and len(skips.counts) >= 4
