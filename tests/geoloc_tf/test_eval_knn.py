"""The "M1 kNN" row: a point prediction scored next to M1 by the same evaluation code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geoloc_tf import prediction_tables
from geoloc_tf.evaluation import compare, report, results, tables
from geoloc_tf.evaluation import model_predictions as predictions
from geoloc_tf.run_layout import prediction_table_path
from mesh import Mesh
from mesh.geodesy import great_circle_km
from tests.conftest import random_mesh

# Four validation photos; the kNN point is exact for two, 30 km north for one, missing for one.
LAT = np.array([48.85, 40.71, 35.68, -33.87])
LON = np.array([2.35, -74.0, 139.69, 151.21])
KM_IN_LAT_DEG = 180.0 / (np.pi * 6372.795)


@pytest.fixture(scope="module")
def knn_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("knn_run")
    rng = np.random.default_rng(3)
    mesh = random_mesh(rng, 3000)
    mesh.save(run / "mesh" / "mesh.npz")
    meta = pd.DataFrame(
        {
            "photo_id": ["a", "b", "c", "d"],
            "user_hash": ["u1", "u1", "u2", "u3"],
            "posted_at": np.arange(4, dtype=np.int64),
            "lat": LAT,
            "lon": LON,
            "outdoor_prob": np.array([0.9, 0.9, 0.1, -1.0], np.float32),
        }
    )
    cells = mesh.locate(LAT, LON)
    cells = np.where(cells >= 0, cells, 0)
    prediction_tables.write_table(
        prediction_tables.table_from_top_k(meta, cells[:, None], np.ones((4, 1))),
        prediction_table_path(run / "predictions", "m1", "m23_val"),
    )
    pred_lat = np.array([LAT[0], LAT[1] + 30 * KM_IN_LAT_DEG, LAT[2], np.nan])
    pred_lon = np.array([LON[0], LON[1], LON[2], np.nan])
    prediction_tables.write_table(
        prediction_tables.table_from_points(meta, pred_lat, pred_lon),
        prediction_table_path(run / "predictions", "m1_knn", "m23_val"),
    )
    return run


def test_point_table_is_read_as_a_point_prediction(knn_run):
    found = predictions.discover_prediction_tables(knn_run, "m23_val")
    assert list(found) == ["m1", "m1_knn"]  # next to M1, in report order
    knn = predictions.load_predictions(found)["m1_knn"]
    assert knn.is_point and (knn.cell == -1).all() and knn.pred_lat[1] > LAT[1]
    assert knn.take(np.array([3, 0])).pred_lon[1] == LON[0]


def test_knn_row_has_the_accuracy_and_no_class_bias(knn_run):
    evaluation = results.evaluate_predictions(
        predictions.load_predictions(predictions.discover_prediction_tables(knn_run, "m23_val")),
        Mesh.load(knn_run / "mesh" / "mesh.npz"),
    )
    row = evaluation.results["models"]["m1_knn"]
    assert row["display_name"] == "M1 kNN" and row["prediction"] == "point"
    assert row["num_without_prediction"] == 1 and row["class_bias"] is None
    s = row["by_label_point"]["imagery"]
    # errors 0, 30 km, 0, and the half circumference for the photo without a point
    assert s["accuracy_percent"] == {"1": 50.0, "25": 50.0, "200": 75.0, "750": 75.0, "2500": 75.0}
    assert s["median_km"] == pytest.approx(15.0, rel=1e-6)
    assert row["by_label_point"]["cell"] == s  # a point has no label point
    assert row["outdoor"]["by_label_point"]["imagery"]["num_photos"] == 2
    assert evaluation.errors_km["m1_knn"][1] == pytest.approx(
        great_circle_km(LAT[1], LON[1], LAT[1] + 30 * KM_IN_LAT_DEG, LON[1])
    )
    assert ("m1", "m1_knn") in [(t["model_a"], t["model_b"]) for t in evaluation.results["wilcoxon"]]

    t3 = tables.table3(evaluation.results)
    knn_rows = [r for r in t3.rows if r[0] == "M1 kNN"]
    assert len(knn_rows) == 1 and knn_rows[0][1] is None  # one row, no label point
    t7 = tables.table7(evaluation.results)
    knn7 = next(r for r in t7.rows if r[0] == "M1 kNN")
    assert knn7[1:5] == (None, None, None, None) and knn7[5] == 4
    assert any("M1 kNN predicts a point, not a cell" in n for n in t7.notes)
    knn6 = next(r for r in tables.table6(evaluation.results).rows if r[0] == "M1 kNN")
    assert tuple(cell.value for cell in knn6[3:8]) == (  # each with its 95 % interval
        50.0,
        50.0,
        75.0,
        75.0,
        75.0,
    )


def test_report_and_compare_include_the_knn_row(knn_run, tmp_path):
    written = report.evaluate_run(knn_run, out_dir=tmp_path / "eval", config=report.ReportConfig(plots=False))
    text = open(written["report"]).read()
    assert "| M1 kNN | - | - | - | - | 4 |" in text and "(appendix C), so they are left empty" in text
    table = compare.compare_results({"run": compare.read_results(tmp_path / "eval")})
    knn = next(r for r in table.rows if r[2] == "M1 kNN")
    assert np.isnan(knn[-1]) and knn[4].value == 50.0  # no KL divergence; 50 % at 1 km
