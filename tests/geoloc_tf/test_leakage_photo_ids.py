"""Test photo ids present in training, compared by Flickr photo id across data sets: Im2GPS3k as
GeoEstimation distributes it against training data written in MP-16's path form, and "unknown"
(never 0) where no Flickr id can be derived."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from PIL import Image

from data_pipelines.hashing import UserHasher
from experiments.cli import main as geoloc
from geoloc_tf.evaluation import leakage, results, tables
from geoloc_tf.evaluation.external import read_test_set
from tests.conftest import random_mesh
from tests.geoloc_tf.conftest import save_tiny_m1
from tests.geoloc_tf.test_eval_conventions import point_model, write_dataset

#: Five rows of GeoEstimation's meta/im2gps3k_places365.csv, as distributed (its header names LON
#: before LAT; the CSV reader proves and undoes the swap).
IM2GPS3K = (
    "IMG_ID,AUTHOR,LON,LAT,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,Prob_urban\n"
    "1000269685_e60e9cdfb4_1125_78841376@N00.jpg,78841376@N00,32.325436,-64.764404,2,12,353,0.27,0.05,0.68\n"
    "1005977048_5ccf8b05d3_1201_91728102@N00.jpg,91728102@N00,29.976052,122.390356,2,6,273,0.004,0.48,0.52\n"
    "1008804117_ce4e6fef8a_1349_97522422@N00.jpg,97522422@N00,46.478536,30.758714,0,0,198,0.97,0.002,0.02\n"
    "101220879_0a1be45b79_33_24311489@N00.jpg,24311489@N00,42.249915,-87.82711,1,8,249,0.0001,0.99,0.003\n"
    "1021054395_ca7cfe55b3_1061_7132415@N03.jpg,7132415@N03,-0.400997,-90.704498,1,6,191,0.22,0.47,0.31\n"
)

#: MP-16 path-form training ids; two of them (1000269685, 1008804117) are Im2GPS3k photos above.
MP16_M1_TRAIN = ["e5/2d/2218633389.jpg", "3f/a0/1000269685.jpg", "0c/11/555.jpg"]
MP16_M23_TRAIN = ["77/b2/1008804117.jpg"]


def test_geoloc_evaluate_im2gps3k_reads_every_photo_and_counts_mp16_training_ids(tmp_path, capsys):
    rng = np.random.default_rng(3)
    run = tmp_path / "run"
    mesh = random_mesh(rng, 3000)
    mesh.save(run / "mesh" / "mesh.npz")
    save_tiny_m1(run, mesh.num_cells)
    write_dataset(
        run / "data",
        salt="s",
        # One training photographer is Im2GPS3k's 78841376@N00 (user ids hashed with the data set's salt).
        tables={
            "m1_train": (MP16_M1_TRAIN, [UserHasher("s")("78841376@N00"), "u2", "u3"]),
            "m23_train": (MP16_M23_TRAIN, ["u4"]),
        },
    )
    images = tmp_path / "im2gps3ktest"
    images.mkdir()
    csv = tmp_path / "im2gps3k_places365.csv"
    csv.write_text(IM2GPS3K)
    for line in IM2GPS3K.splitlines()[1:]:
        pixels = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / line.split(",")[0], format="JPEG")

    code = geoloc(
        [
            "evaluate",
            "--benchmark=im2gps3k",
            f"--model={run}",
            f"--csv={csv}",
            f"--images={images}",
            f"--out={tmp_path / 'out'}",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "5 photos evaluated;" in captured.out and "unreadable" not in captured.err
    leak = json.loads((tmp_path / "out" / "results.json").read_text())["leakage"]
    assert leak["photo_ids_compared"] == "by Flickr photo id"
    assert (leak["num_test_ids_comparable"], leak["num_test_ids_in_training"]) == (5, 2)
    assert leak["num_test_ids_in_training_as_written"] == 0  # as written, nothing would match
    assert leak["by_split"]["m1_train"]["num_test_ids_in_split"] == 1
    assert leak["by_split"]["m23_train"]["num_test_ids_in_split"] == 1
    assert leak["num_photos_unseen_photographers"] == 4  # all but 78841376@N00's photo
    report = (tmp_path / "out" / "report.md").read_text()
    assert "2 of the 5 with a Flickr photo id have it in the training data" in report


def test_ids_that_cannot_be_compared_are_unknown_not_zero(tmp_path):
    """OSV-5M-like numeric ids (not Flickr's) against MP-16 training data: unknown, with the
    reason, in results and in the table note; no per-split count either."""
    mesh = random_mesh(np.random.default_rng(5), 3000)
    pred = point_model(
        tmp_path, [0.0, 1.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0], ids=["374133185604297", "1000269685"]
    )
    training = leakage.TrainingPhotos(
        {"m1_train": pd.DataFrame({"photo_id": MP16_M1_TRAIN, "user_hash": ["u1", "u2", "u3"]})}, "mp16"
    )
    evaluation = results.evaluate_predictions(
        {"m1": pred}, mesh, training=training, test_numeric_flickr=False
    )
    leak = evaluation.results["leakage"]
    assert leak["num_test_ids_in_training"] is None and leak["num_test_ids_comparable"] == 0
    assert leak["ids_unknown_reason"] == "no test photo id is a recognisable Flickr photo id"
    assert leak["by_split"]["m1_train"]["num_test_ids_in_split"] is None
    note = tables.leakage_table(evaluation.results).notes[0]
    assert "unknown (no test photo id is a recognisable Flickr photo id)" in note and " 0 have" not in note

    # The same ids from a Flickr test set (bare numbers are Flickr's): both compared, 1000269685 found.
    leak = results.evaluate_predictions(
        {"m1": pred}, mesh, training=training, test_numeric_flickr=True
    ).results
    assert (leak["leakage"]["num_test_ids_comparable"], leak["leakage"]["num_test_ids_in_training"]) == (2, 1)


def test_training_ids_without_flickr_ids_are_unknown_too():
    """Im2GPS3k test ids against a training set of OSV-5M ids: nothing to compare on the training
    side."""
    training = leakage.TrainingPhotos(
        {"m1_train": pd.DataFrame({"photo_id": ["374133185604297"], "user_hash": ["u1"]})}, "osv5m", "osv5m"
    )
    counts = leakage.leakage_counts(
        ["1000269685_e60e9cdfb4_1125_78841376@N00.jpg"], ["h"], training, test_numeric_flickr=True
    )
    assert counts["num_test_ids_in_training"] is None
    assert counts["ids_unknown_reason"] == "no training photo id is a recognisable Flickr photo id"


def test_the_owner_in_a_flickr_file_name_is_the_photographer(tmp_path):
    """GeoEstimation's Im2GPS (its header and two of its rows): for a name with a place prefix its
    AUTHOR holds ``<secret>_<server>_<NSID>``; the photographer is the NSID of the name, hashed as
    a training set hashes it."""
    csv = tmp_path / "im2gps_places365.csv"
    csv.write_text(
        "IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,Prob_urban\n"
        "104123223_7410c654ba_19_19355699@N00.jpg,19355699@N00,-16.663606,145.563537,1,8,150,0.003,0.78,0.22\n"
        "Ankara_00003_601190107_9f05b2251e_1292_8504005@N07.jpg,9f05b2251e_1292_8504005@N07,39.936592,32.8553,"
        "2,15,332,0.2,0.006,0.78\n"
    )
    hasher = UserHasher("s")
    table, _ = read_test_set(str(csv), user_hasher=hasher)
    assert table["user_hash"].tolist() == [hasher("19355699@N00"), hasher("8504005@N07")]
    assert table["image_path"].tolist() == table["photo_id"].tolist()  # the IMG_ID is the file name
