"""The Flickr photo id behind each data set's id form, and GeoEstimation's IMG_ID read as the file
name it already is (no ``.jpg.jpg``)."""

from __future__ import annotations

import pandas as pd

from data_pipelines.photo_identity import flickr_ids, numeric_ids_are_flickr
from data_pipelines.readers import SkipLog, common, csv_layout


def test_each_id_form_gives_its_flickr_photo_id_and_owner():
    ids = [
        "e5/2d/2218633389.jpg",  # MP-16 / MP16-Pro IMG_ID
        "e5_2d_2218633389.jpg",  # the same as MP16-Pro's tar member / msgpack key
        "1000269685_e60e9cdfb4_1125_78841376@N00.jpg",  # GeoEstimation's Im2GPS3k
        "Ankara_00003_601190107_9f05b2251e_1292_8504005@N07.jpg",  # its Im2GPS, place prefix
        "8177669756_e7d9798151_s.jpg",  # a Flickr static file name, no owner
        "IMG_1234.JPG",  # a camera's file name (EXIF folder)
        "photo:7",
        "",
    ]
    got = flickr_ids(ids)
    assert got["flickr_id"].tolist()[:5] == [
        "2218633389",
        "2218633389",
        "1000269685",
        "601190107",
        "8177669756",
    ]
    assert got["owner"].tolist()[2:4] == ["78841376@N00", "8504005@N07"]
    assert got["owner"].isna().tolist() == [True, True, False, False, True, True, True, True]
    assert got["flickr_id"][5:].isna().all()


def test_bare_numbers_are_flickr_ids_only_in_a_flickr_data_set():
    """YFCC100M's numeric ids, YFCC4k's ``<id>.jpg``: Flickr's only when the caller knows the set
    is Flickr's; an OSV-5M id (Mapillary's, also a bare number) stays unknown."""
    ids = ["2218633389", "0002218633389", "2218633389.jpg"]
    assert flickr_ids(ids, numeric=True)["flickr_id"].tolist() == ["2218633389"] * 3
    assert flickr_ids(["374133185604297"], numeric=False)["flickr_id"].isna().all()  # OSV-5M
    assert numeric_ids_are_flickr("yfcc100m") and numeric_ids_are_flickr("mp16pro")
    assert not numeric_ids_are_flickr("osv5m") and not numeric_ids_are_flickr("csv")
    assert not numeric_ids_are_flickr("exif")


def test_geoestimation_img_id_is_its_own_file_name(tmp_path):
    """Im2GPS3k as GeoEstimation distributes it (its header, LON before LAT): every image path is
    the IMG_ID as written; a bare id still gets ``.jpg``."""
    assert common.default_image_path("a.JPEG") == "a.JPEG"
    assert common.default_image_path("123") == "123.jpg"
    path = tmp_path / "im2gps3k_places365.csv"
    path.write_text(
        "IMG_ID,AUTHOR,LON,LAT,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,Prob_urban\n"
        "1000269685_e60e9cdfb4_1125_78841376@N00.jpg,78841376@N00,32.325436,-64.764404,2,12,353,0.27,0.05,0.68\n"
        "1005977048_5ccf8b05d3_1201_91728102@N00.jpg,91728102@N00,29.976052,122.390356,2,6,273,0.004,0.48,0.52\n"
    )
    chunks = [
        pd.DataFrame(c)
        for _, c in csv_layout.read_csv(
            str(path), template=None, user_hasher=lambda b: b.decode(), skips=SkipLog()
        )
    ]
    table = pd.concat(chunks)
    assert table["image_path"].tolist() == [
        "1000269685_e60e9cdfb4_1125_78841376@N00.jpg",
        "1005977048_5ccf8b05d3_1201_91728102@N00.jpg",
    ]
