"""Comparable evaluation: the Earth radius and threshold rule, GeoScore, country/region/city accuracy
by reverse geocoding, and the rows on photographers absent from training.

The models here predict points (``table_from_points``), so every error is a distance a person can
work out from the coordinates; the mesh only serves the paper's rows around them.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from geoloc_tf import prediction_tables
from geoloc_tf.evaluation import admin, leakage, report, results
from geoloc_tf.evaluation import model_predictions as predictions
from geoloc_tf.run_configs import EvaluateConfig
from geoloc_tf.run_layout import prediction_table_path
from tests.conftest import random_mesh

PARIS = (48.8566, 2.3522)
LYON = (45.7640, 4.8357)
#: Degrees of longitude along the equator that are exactly 25 km on an Earth of radius 6371 km.
LON_25_KM = math.degrees(25.0 / 6371.0)


@pytest.fixture(scope="module")
def mesh():
    return random_mesh(np.random.default_rng(5), 3000)


def point_model(tmp_path, lat, lon, pred_lat, pred_lon, users=None, ids=None, model="m1"):
    n = len(lat)
    meta = pd.DataFrame(
        {
            "photo_id": ids or [f"p{i}" for i in range(n)],
            "user_hash": users or [f"u{i}" for i in range(n)],
            "posted_at": np.arange(n, dtype=np.int64),
            "lat": np.asarray(lat, dtype=np.float64),
            "lon": np.asarray(lon, dtype=np.float64),
            "outdoor_prob": np.full(n, -1.0, np.float32),
        }
    )
    path = prediction_table_path(tmp_path / "predictions", model, "m23_val")
    prediction_tables.write_table(
        prediction_tables.table_from_points(meta, np.asarray(pred_lat), np.asarray(pred_lon)), path
    )
    return predictions.read_prediction_table(path, model)


def accuracy_25(evaluation):
    return evaluation.results["models"]["m1"]["by_label_point"]["imagery"]["accuracy_percent"]["25"]


def test_radius_and_rule_change_the_numbers_as_by_hand(tmp_path, mesh):
    """Photo 0 is predicted exactly 25 km away at R = 6371 km (25.007 km at the paper's 6372.795),
    photo 1 exactly: at 25 km, le/6371 counts both, lt/6371 one, le/6372.795 one."""
    pred = point_model(tmp_path, [0.0, 10.0], [0.0, 10.0], [0.0, 10.0], [LON_25_KM, 10.0])

    def run(**settings):
        config = results.EvalConfig.from_settings(EvaluateConfig(**settings), admin_accuracy=False)
        return results.evaluate_predictions({"m1": pred}, mesh, config)

    le_6371 = run(earth_radius_km=6371.0)
    assert accuracy_25(le_6371) == 100.0
    assert accuracy_25(run(earth_radius_km=6371.0, threshold_rule="lt")) == 50.0
    paper = run()
    assert accuracy_25(paper) == 50.0
    assert paper.errors_km["m1"][0] == pytest.approx(25.0 * 6372.795 / 6371.0)
    assert le_6371.results["convention"] == {
        "earth_radius_km": 6371.0,
        "distance": "haversine (great circle on a sphere)",
        "threshold_rule": "le",
        "admin_rule": "geoloc",
    }
    summary = le_6371.results["models"]["m1"]["by_label_point"]["imagery"]
    assert summary["geoscore"] == pytest.approx((5000.0 * math.exp(-25.0 / 1492.7) + 5000.0) / 2)
    assert summary["mean_km"] == pytest.approx(12.5)


def test_paris_predicted_as_lyon_is_the_right_country_in_the_wrong_region(tmp_path, mesh):
    """Truth: two photos in Paris. Predictions: Paris, Lyon. Country 2/2, region, sub-region and
    city 1/2 (Lyon is in Rhône-Alpes, Paris in Île-de-France)."""
    pred = point_model(tmp_path, [PARIS[0]] * 2, [PARIS[1]] * 2, [PARIS[0], LYON[0]], [PARIS[1], LYON[1]])
    got = results.evaluate_predictions({"m1": pred}, mesh).results["admin_accuracy"]
    m1 = got["models"]["m1"]
    assert [m1[level]["accuracy_percent"] for level in admin.ADMIN_LEVELS] == [100.0, 50.0, 50.0, 50.0]
    assert m1["country"]["num_photos"] == 2 and got["truth_source"] == admin.TRUTH_GEOCODED
    assert admin.reverse_geocode([LYON[0]], [LYON[1]]).tolist() == [
        ["FR", "Rhone-Alpes", "Departement du Rhone", "Lyon"]
    ]


def test_the_data_sets_admin_columns_are_the_truth_where_given(tmp_path, mesh):
    """Three Paris photos predicted in Paris. Their table says: p0 Île-de-France/Paris, p1 a
    region of another name (wrong at region and so at city), p2 no region and country "France"
    (a name, not a code: the country comes from the true point) and its city in OSV-5M's
    ``unique_city`` form. Sub-region unknown for all: left out. Region counts p0, p1 (1 of 2); city
    counts all three (p0 and p2 right)."""
    pred = point_model(tmp_path, [PARIS[0]] * 3, [PARIS[1]] * 3, [PARIS[0]] * 3, [PARIS[1]] * 3)
    truth = pd.DataFrame(
        {
            "photo_id": ["p0", "p1", "p2"],
            "country": ["FR", "FR", "France"],
            "region": ["Île-de-France", "Bretagne", ""],
            "sub_region": ["", "", ""],
            "city": ["PARIS", "Paris", "Paris_Paris_Ile-de-France_FR"],
        }
    )
    got = results.evaluate_predictions({"m1": pred}, mesh, admin_truth=truth).results["admin_accuracy"]
    m1 = got["models"]["m1"]
    assert got["truth_source"] == admin.TRUTH_DATASET and m1["truth"]["num_countries_geocoded"] == 1
    assert (m1["country"]["num_photos"], m1["country"]["accuracy_percent"]) == (3, 100.0)
    assert (m1["region"]["num_photos"], m1["region"]["accuracy_percent"]) == (2, 50.0)
    assert m1["sub_region"]["num_photos"] == 0 and math.isnan(m1["sub_region"]["accuracy_percent"])
    assert (m1["city"]["num_photos"], m1["city"]["num_correct"]) == (3, 2)


def tiny_training():
    return leakage.TrainingPhotos(
        {
            "m1_train": pd.DataFrame({"photo_id": ["t0", "p3"], "user_hash": ["uA", "uZ"]}),
            "m23_train": pd.DataFrame({"photo_id": ["t1"], "user_hash": ["uB"]}),
        },
        "tiny",
    )


def test_leakage_row_on_photographers_absent_from_training(tmp_path, mesh):
    """Four test photos: p0, p1 by uA (in M1's training), p2 by uB (in M2/M3's), p3 by uC (new
    photographer, but its photo id is in training). Only p3 is by an unseen photographer; its
    prediction is 100 km off, the others exact: all photos 75 % at 25 km, unseen 0 %."""
    km_100 = 100.0 * 180.0 / (math.pi * 6372.795)
    pred = point_model(
        tmp_path,
        [0.0, 1.0, 2.0, 3.0],
        [0.0] * 4,
        [0.0, 1.0, 2.0, 3.0 + km_100],
        [0.0] * 4,
        users=["uA", "uA", "uB", "uC"],
    )
    leak = results.evaluate_predictions({"m1": pred}, mesh, training=tiny_training()).results["leakage"]
    assert leak["has_users"] and leak["num_photos"] == 4
    assert (leak["num_photographers"], leak["num_unseen_photographers"]) == (3, 1)
    assert leak["num_photos_unseen_photographers"] == 1 and leak["num_test_ids_in_training"] == 1
    assert leak["by_split"]["m1_train"]["num_test_photos_whose_photographer_is_in_split"] == 2
    assert leak["by_split"]["m23_train"]["num_test_photos_whose_photographer_is_in_split"] == 1
    row = leak["models"]["m1"]
    assert row["all"]["accuracy_percent"]["25"] == 75.0 and row["all"]["num_photos"] == 4
    assert row["unseen_photographers"]["accuracy_percent"]["25"] == 0.0
    assert row["unseen_photographers"]["num_photos"] == 1


def test_no_photographers_no_disjoint_rows(tmp_path, mesh):
    """Every photo its own user (a test set without a user column): nothing to compare."""
    pred = point_model(tmp_path, [0.0, 1.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0], users=["x1", "x2"])
    leak = results.evaluate_predictions({"m1": pred}, mesh, training=tiny_training()).results["leakage"]
    assert not leak["has_users"] and leak["models"] == {}


def test_external_user_ids_hashed_with_the_training_salt_match(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, salt="s1", tables={"m1_train": (["t0"], ["hash-of-alice"])})
    hasher = leakage.training_user_hasher(data)
    from data_pipelines.hashing import UserHasher

    assert hasher("alice") == UserHasher("s1")("alice") != UserHasher("other")("alice")


def write_dataset(root, salt, tables, admin_columns=None):
    """A data set folder as ``data_pipelines.dataset.load`` reads it: manifest, metadata, summary,
    tables/<split>.parquet with photo_id, user_hash, lat and lon (and admin columns when given).
    ``tables``: split -> (ids, users) or (ids, users, lats, lons); without locations, every photo
    is at latitude 0, longitude 0."""
    (root / "tables").mkdir(parents=True)
    manifest = {"splits": {}}
    for split, (ids, users, *located) in tables.items():
        lat, lon = located or ([0.0] * len(ids), [0.0] * len(ids))
        frame = pd.DataFrame({"photo_id": ids, "user_hash": users, "lat": lat, "lon": lon})
        for column, values in (admin_columns or {}).get(split, {}).items():
            frame[column] = values
        frame.to_parquet(root / "tables" / f"{split}.parquet", index=False)
        manifest["splits"][split] = {"table": f"tables/{split}.parquet", "shards": []}
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "metadata.json").write_text(json.dumps({"user_hash_salt": salt, "settings": {}}))
    (root / "summary.json").write_text("{}")


def test_the_report_states_the_convention_and_has_geoscore_admin_and_leakage_tables(tmp_path, mesh):
    """A run with its data set: the report reads the admin columns of the evaluated split and the
    training splits from it."""
    mesh.save(tmp_path / "mesh" / "mesh.npz")
    point_model(
        tmp_path,
        [PARIS[0], LYON[0]],
        [PARIS[1], LYON[1]],
        [PARIS[0], PARIS[0]],
        [PARIS[1], PARIS[1]],
        users=["uA", "uC"],
    )
    write_dataset(
        tmp_path / "data",
        salt="s",
        tables={
            "m1_train": (["t0"], ["uA"]),
            "m23_train": (["t1"], ["uB"]),
            "m23_val": (["p0", "p1"], ["uA", "uC"]),
        },
        admin_columns={
            "m23_val": {
                "country": ["FR", "FR"],
                "region": ["Ile-de-France", "Auvergne-Rhône-Alpes"],
                "sub_region": ["", ""],
                "city": ["Paris", "Lyon"],
            }
        },
    )
    config = report.ReportConfig(
        evaluation=results.EvalConfig.from_settings(
            EvaluateConfig(earth_radius_km=6371.0, threshold_rule="lt"), split="m23_val"
        ),
        plots=False,
    )
    written = report.evaluate_run(tmp_path, config=config, data_dir=tmp_path / "data")
    text = open(written["report"]).read()
    assert (
        "Distances: haversine (great circle on a sphere), Earth radius 6371 km; only errors strictly "
        "below a threshold count (rule `lt`, as OSV-5M, PLONK and PIGEON)." in text
    )
    assert "| GeoScore |" in text
    assert "### Country / region / sub-region / city accuracy (%)" in text
    # Country right for both, region right for Paris only, city right for Paris only. Intervals over
    # the 2 photographers: both right in every resample at country; at region and city a resample
    # draws Paris's twice, Lyon's twice (1/4 each: 100 %, 0 %) or one each (50 %), so [0, 100].
    assert (
        "| Inception (M1) | 100.00 [100.00, 100.00] | 2 | 50.00 [0.00, 100.00] | 2 | - | 0 "
        "| 50.00 [0.00, 100.00] | 2 |"
    ) in text
    assert "### Photographers absent from training vs all test photos (accuracy %)" in text
    assert "| Inception (M1) | not in training | 1 | 0.00 [0.00, 0.00] |" in text
    res = json.loads(open(written["results"]).read())
    assert res["convention"]["threshold_rule"] == "lt" and res["convention"]["earth_radius_km"] == 6371.0
    assert res["admin_accuracy"]["truth_source"] == admin.TRUTH_DATASET
    assert res["leakage"]["num_photos_unseen_photographers"] == 1
    assert set(written) >= {"admin", "leakage"}
    # The report names the training data by its data set, not its path: the same run gives the
    # same report wherever its folder lies.
    assert str(tmp_path) not in open(written["tables_json"]).read()
    assert "Training data: data set " in text


def test_compare_refuses_runs_evaluated_under_different_conventions(tmp_path, mesh):
    from geoloc_tf.errors import EvaluationError
    from geoloc_tf.evaluation import compare

    pred = point_model(tmp_path, [0.0], [0.0], [0.0], [LON_25_KM])
    runs = {}
    for label, settings in (("paper", {}), ("osv5m", {"earth_radius_km": 6371.0, "threshold_rule": "lt"})):
        config = results.EvalConfig.from_settings(EvaluateConfig(**settings), admin_accuracy=False)
        runs[label] = results.evaluate_predictions({"m1": pred}, mesh, config).results
    with pytest.raises(EvaluationError, match="run osv5m: convention"):
        compare.compare_results(runs)
    table = compare.compare_results({"osv5m": runs["osv5m"]})
    assert "Earth radius 6371 km" in table.notes[0]
    m1 = next(r for r in table.rows if r[2] == "Inception (M1)")
    assert m1[table.columns.index("GeoScore")].value == pytest.approx(5000.0 * math.exp(-25.0 / 1492.7))


def test_compare_takes_runs_that_differ_only_in_admin_rule_or_predate_it(tmp_path, mesh):
    """The compare table holds no admin-level numbers: runs scored under another admin rule, or
    written before the admin rule was recorded, sit side by side; the distance convention must agree."""
    from geoloc_tf.evaluation import compare

    pred = point_model(tmp_path, [0.0], [0.0], [0.0], [LON_25_KM])
    runs = {}
    for label, rule in (("geoloc", "geoloc"), ("osv5m", "osv5m")):
        config = results.EvalConfig.from_settings(EvaluateConfig(admin_rule=rule), admin_accuracy=False)
        runs[label] = results.evaluate_predictions({"m1": pred}, mesh, config).results
    old = {**runs["geoloc"], "convention": dict(runs["geoloc"]["convention"])}
    del old["convention"]["admin_rule"]  # results.json written before the rule existed
    table = compare.compare_results({**runs, "old": old})
    assert [r[0] for r in table.rows if r[2] == "Inception (M1)"] == ["geoloc", "osv5m", "old"]
