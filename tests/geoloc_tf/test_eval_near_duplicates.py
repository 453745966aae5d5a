"""The rows without near-duplicates: every model on the test photos with no training photo within
``near_duplicate_km``, beside all photos.

Five test photos around two training photos, A = (10, 20) in M1's training split and B = (-30, 40)
in M2/M3's; offsets in degrees of latitude (pi * R / 180 km each, R = 6372.795 km):

- p0 0.5 km north of A and p1 0.8 km south of B: near-duplicates at 1 km;
- p2 1.5 km north of A: not at 1 km, one at 2 km;
- p3 at (5, 5) and p4 at (50, 60): far from every training photo.

The models predict points, so every error is worked out by hand: M1 is exact except on p3
(100 km north); "M1 kNN" is exact on the near-duplicates p0, p1 and 500 km off on p2, p3, p4.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from geoloc_tf.evaluation import leakage, report, results
from geoloc_tf.evaluation.tables import near_duplicate_table
from geoloc_tf.run_configs import EvaluateConfig
from mesh.geodesy import EARTH_RADIUS_KM
from tests.conftest import random_mesh
from tests.geoloc_tf.test_eval_conventions import point_model, write_dataset

DEG_PER_KM = 180.0 / (math.pi * EARTH_RADIUS_KM)
A, B = (10.0, 20.0), (-30.0, 40.0)
LAT = [A[0] + 0.5 * DEG_PER_KM, B[0] - 0.8 * DEG_PER_KM, A[0] + 1.5 * DEG_PER_KM, 5.0, 50.0]
LON = [A[1], B[1], A[1], 5.0, 60.0]


@pytest.fixture(scope="module")
def mesh():
    return random_mesh(np.random.default_rng(5), 3000)


def models(tmp_path):
    """M1 (100 km off on p3) and M1 kNN (500 km off on p2, p3, p4), north of the truth."""
    m1_lat = [LAT[0], LAT[1], LAT[2], LAT[3] + 100.0 * DEG_PER_KM, LAT[4]]
    knn_lat = [la + (500.0 * DEG_PER_KM if i >= 2 else 0.0) for i, la in enumerate(LAT)]
    return {
        "m1": point_model(tmp_path, LAT, LON, m1_lat, LON),
        "m1_knn": point_model(tmp_path, LAT, LON, knn_lat, LON, model="m1_knn"),
    }


def training(m23_extra=()):
    """A in M1's training split, B (and ``m23_extra`` points) in M2/M3's."""
    m23 = [B, *m23_extra]
    return leakage.TrainingPhotos(
        {
            "m1_train": pd.DataFrame({"photo_id": ["t0"], "user_hash": ["uA"], "lat": [A[0]], "lon": [A[1]]}),
            "m23_train": pd.DataFrame(
                {
                    "photo_id": [f"s{i}" for i in range(len(m23))],
                    "user_hash": ["uB"] * len(m23),
                    "lat": [p[0] for p in m23],
                    "lon": [p[1] for p in m23],
                }
            ),
        },
        "hand-made",
    )


def evaluate(tmp_path, mesh, train, **settings):
    config = results.EvalConfig.from_settings(EvaluateConfig(**settings), admin_accuracy=False)
    return results.evaluate_predictions(models(tmp_path), mesh, config, training=train).results


def test_two_of_five_near_duplicates_leave_a_row_over_three_photos(tmp_path, mesh):
    near = evaluate(tmp_path, mesh, training())["near_duplicates"]
    assert (near["radius_km"], near["num_photos"]) == (1.0, 5)
    assert (near["num_near_duplicates"], near["num_no_near_duplicate"]) == (2, 3)
    assert near["by_split"] == {
        "m1_train": {"num_training_photos": 1, "num_test_photos_near": 1},
        "m23_train": {"num_training_photos": 1, "num_test_photos_near": 1},
    }
    assert near["training"] == "hand-made" and near["label_point"] == "imagery"
    m1, knn = near["models"]["m1"], near["models"]["m1_knn"]
    # M1: 4 of 5 within 25 km over all photos (mean 100 / 5 km); 2 of p2, p3, p4 (mean 100 / 3 km).
    assert (m1["all"]["num_photos"], m1["all"]["accuracy_percent"]["25"]) == (5, 80.0)
    assert m1["all"]["mean_km"] == pytest.approx(20.0)
    assert m1["no_near_duplicate"]["num_photos"] == 3
    assert m1["no_near_duplicate"]["accuracy_percent"]["25"] == pytest.approx(200.0 / 3)
    assert m1["no_near_duplicate"]["mean_km"] == pytest.approx(100.0 / 3)
    assert m1["no_near_duplicate"]["median_km"] == pytest.approx(0.0, abs=1e-6)
    # M1 kNN: right only on the near-duplicates: 40 % over all photos, 0 % without them.
    assert knn["all"]["accuracy_percent"]["25"] == 40.0
    assert knn["no_near_duplicate"]["accuracy_percent"]["2500"] == 100.0
    assert knn["no_near_duplicate"]["accuracy_percent"]["200"] == 0.0
    assert knn["no_near_duplicate"]["mean_km"] == pytest.approx(500.0)


def test_the_radius_is_the_setting(tmp_path, mesh):
    """At 2 km p2 (1.5 km from A) is a near-duplicate too: M1's row covers p3, p4 (1 of 2)."""
    near = evaluate(tmp_path, mesh, training(), near_duplicate_km=2.0)["near_duplicates"]
    assert near["radius_km"] == 2.0 and near["num_near_duplicates"] == 3
    assert near["by_split"]["m1_train"]["num_test_photos_near"] == 2
    row = near["models"]["m1"]["no_near_duplicate"]
    assert (row["num_photos"], row["accuracy_percent"]["25"]) == (2, 50.0)


def test_a_photo_near_both_training_splits_counts_in_each_and_once_in_all(tmp_path, mesh):
    """M2/M3's split also holds a photo at A: p0 is near both splits, still one near-duplicate."""
    near = evaluate(tmp_path, mesh, training(m23_extra=[A]))["near_duplicates"]
    assert near["by_split"]["m1_train"]["num_test_photos_near"] == 1
    assert near["by_split"]["m23_train"]["num_test_photos_near"] == 2
    assert near["num_near_duplicates"] == 2


def test_no_rows_when_off_or_without_training_locations(tmp_path, mesh):
    assert evaluate(tmp_path, mesh, training(), near_duplicate_km=0.0)["near_duplicates"] is None
    assert evaluate(tmp_path, mesh, None)["near_duplicates"] is None
    without_locations = leakage.TrainingPhotos(
        {"m1_train": pd.DataFrame({"photo_id": ["t0"], "user_hash": ["uA"]})}, "ids only"
    )
    got = evaluate(tmp_path, mesh, without_locations)
    assert got["near_duplicates"] is None and got["leakage"] is not None


def test_the_table_puts_each_models_two_rows_side_by_side(tmp_path, mesh):
    table = near_duplicate_table(evaluate(tmp_path, mesh, training()))
    assert table.key == "near_duplicates"
    assert table.columns[:4] == ("Model", "Near-duplicates", "Photos", "Street 1 km")
    assert [row[:3] for row in table.rows] == [
        ("Inception (M1)", "included", 5),
        ("Inception (M1)", "excluded", 3),
        ("M1 kNN", "included", 5),
        ("M1 kNN", "excluded", 3),
    ]
    assert "Of the 5 test photos, 2 have a training photo within 1 km" in table.notes[0]
    assert "m1_train (1 photos): 1; m23_train (1 photos): 1" in table.notes[0]


def test_a_runs_report_reads_the_training_locations_from_its_data_set(tmp_path, mesh):
    mesh.save(tmp_path / "mesh" / "mesh.npz")
    models(tmp_path)
    write_dataset(
        tmp_path / "data",
        salt="s",
        tables={
            "m1_train": (["t0"], ["uA"], [A[0]], [A[1]]),
            "m23_train": (["t1"], ["uB"], [B[0]], [B[1]]),
            "m23_val": ([f"p{i}" for i in range(5)], [f"u{i}" for i in range(5)], LAT, LON),
        },
    )
    config = report.ReportConfig(
        evaluation=results.EvalConfig.from_settings(EvaluateConfig(), split="m23_val", admin_accuracy=False),
        plots=False,
    )
    written = report.evaluate_run(tmp_path, config=config, data_dir=tmp_path / "data")
    text = open(written["report"]).read()
    assert "### Test photos with no training photo within 1 km vs all test photos (accuracy %)" in text
    # Every excluded photo is 500 km off: each resample gives the same numbers, so do the intervals.
    assert (
        "| M1 kNN | excluded | 3 | 0.00 [0.00, 0.00] | 0.00 [0.00, 0.00] | 0.00 [0.00, 0.00] | "
        "100.00 [100.00, 100.00] | 100.00 [100.00, 100.00] | 500 [500, 500] |"
    ) in text
    assert "95 % interval" in text.split("### Test photos with no training photo")[1]
    csv = pd.read_csv(written["near_duplicates"])
    assert list(csv["Photos"]) == [5, 3, 5, 3]
    assert csv.loc[1, "City 25 km"] == pytest.approx(200.0 / 3)
    res = json.loads(open(written["results"]).read())
    assert res["near_duplicates"]["num_near_duplicates"] == 2
    assert text.index("### Photographers absent") < text.index("### Test photos with no training photo")


def test_geoloc_evaluate_on_an_external_set_uses_the_runs_training_locations(tmp_path, capsys):
    """`geoloc evaluate` with a run directory holding its data set: p0 and p1 are near-duplicates
    of its training photos, whatever the (untrained) M1 predicts."""
    from experiments.cli import main as geoloc
    from tests.geoloc_tf.conftest import save_tiny_m1

    run = tmp_path / "run"
    run_mesh = random_mesh(np.random.default_rng(3), 2000)
    run_mesh.save(run / "mesh" / "mesh.npz")
    save_tiny_m1(run, run_mesh.num_cells)
    write_dataset(
        run / "data",
        salt="s",
        tables={"m1_train": (["t0"], ["uA"], [A[0]], [A[1]]), "m23_train": (["t1"], ["uB"], [B[0]], [B[1]])},
    )
    images = tmp_path / "images"
    images.mkdir()
    rows = ["IMG_ID,LAT,LON"]
    rng = np.random.default_rng(0)
    for i, (la, lo) in enumerate(zip(LAT, LON)):
        Image.fromarray(rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)).save(images / f"{i}.jpg")
        rows.append(f"{i}.jpg,{la:.7f},{lo:.7f}")
    (tmp_path / "test.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    args = ["evaluate", f"--model={run}", f"--csv={tmp_path / 'test.csv'}", f"--images={images}"]
    assert geoloc([*args, f"--out={out}", "--image_path_template={id}"]) == 0
    near = json.loads((out / "results.json").read_text())["near_duplicates"]
    assert (near["num_photos"], near["num_near_duplicates"]) == (5, 2)
    assert near["models"]["m1"]["no_near_duplicate"]["num_photos"] == 3
    assert list(pd.read_csv(out / "near_duplicates.csv")["Photos"]) == [5, 3]
