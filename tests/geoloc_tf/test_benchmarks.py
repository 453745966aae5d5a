"""`geoloc evaluate --benchmark`: a YFCC4k-layout test set scored under YFCC4k's convention, the
run's rows beside the published ones; a wrong header and an unknown benchmark as one-line errors;
the published data file's integrity."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from experiments.cli import main as geoloc
from geoloc_tf.evaluation import benchmarks
from geoloc_tf.run_configs import ADMIN_RULES
from mesh.geodesy import DISTANCE_FORMULA
from tests.geoloc_tf.conftest import build_tiny_run, jpeg

# The tiny run's M1 answers cell 3 for every photo (conftest.M1_TOP), so each photo's error is its
# distance from cell 3's imagery centroid. The photos lie due north or south of it, at these
# distances in km on YFCC4k's sphere (R = 6371 km): within 1, 25, 200, 750, 2500 km there are
# 1, 2, 3, 4, 4 of 5 photos: 20, 40, 60, 80, 80 %.
DISTANCES_KM = (0.0, 10.0, 100.0, 500.0, 5000.0)
EXPECTED_PERCENT = (20.0, 40.0, 60.0, 80.0, 80.0)


@pytest.fixture(scope="module")
def yfcc4k_set(tmp_path_factory) -> dict[str, Path]:
    """A tiny trained run and a YFCC4k-layout test set (IMG_ID, OwnerNSID, LAT, LON) of 5 JPEGs."""
    from mesh import Mesh

    root = tmp_path_factory.mktemp("bench")
    run = build_tiny_run(root / "run", export=False)
    lat0, lon0 = Mesh.load(run / "mesh" / "mesh.npz").imagery_centroids[3]
    toward_equator = -1.0 if lat0 > 0 else 1.0
    images = root / "images"
    images.mkdir()
    rows = ["IMG_ID,OwnerNSID,LAT,LON"]
    for i, d in enumerate(DISTANCES_KM):
        lat = lat0 + toward_equator * math.degrees(d / benchmarks.GEOESTIMATION.earth_radius_km)
        rows.append(f"{1000 + i},{20000 + i % 2}@N00,{lat:.7f},{lon0:.7f}")
        (images / f"{1000 + i}.jpg").write_bytes(jpeg(24, 32, seed=i))
    (root / "yfcc4k.csv").write_text("\n".join(rows) + "\n")
    return {"root": root, "run": run, "csv": root / "yfcc4k.csv", "images": images}


def _evaluate(data: dict[str, Path], out: str, *extra: str) -> int:
    return geoloc(
        [
            "evaluate",
            "--benchmark=yfcc4k",
            f"--model={data['run']}",
            f"--csv={data['csv']}",
            f"--images={data['images']}",
            f"--out={data['root'] / out}",
            "--image_path_template={id}.jpg",
            *extra,
        ]
    )


def _values(cells: list[str]) -> list[str]:
    """The numbers of report cells without their 95 % intervals ("20.00 [0.00, 60.00]" -> "20.00")."""
    return [cell.split(" [", 1)[0] for cell in cells]


def _markdown_row(report: str, name: str) -> list[str]:
    """The cells of row ``name`` of the report's benchmark table."""
    section = report.split("### Benchmark ", 1)[1].split("###", 1)[0]
    line = next(line for line in section.splitlines() if line.startswith(f"| {name} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_yfcc4k_report_shows_the_run_beside_the_published_rows(yfcc4k_set, capsys):
    assert _evaluate(yfcc4k_set, "out") == 0
    assert "5 photos evaluated" in capsys.readouterr().out
    out = yfcc4k_set["root"] / "out"
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())

    # scored under YFCC4k's convention: haversine, R = 6371 km, d <= t
    assert results["convention"]["earth_radius_km"] == 6371.0
    assert results["convention"]["threshold_rule"] == "le"
    assert "Earth radius 6371 km" in report and "d <= t" in report

    # the run's row: accuracies by hand from the distances above
    run_row = _markdown_row(report, "Inception (M1)")
    assert run_row[1:3] == ["this run", "5"]
    assert _values(run_row[3:8]) == [f"{p:.2f}" for p in EXPECTED_PERCENT]
    assert all(" [" in cell for cell in run_row[3:10])  # each with its 95 % interval
    geoscore = np.mean([5000 * math.exp(-d / 1492.7) for d in DISTANCES_KM])  # 3,679
    assert _values(run_row[8:10]) == [f"{np.mean(DISTANCES_KM):,.0f}", f"{geoscore:,.0f}"]  # mean 1,122 km

    # every published YFCC4k row of the data file, with its values, in the same table
    published = benchmarks.published_for("yfcc4k")
    assert published
    for row in published:
        cells = _markdown_row(report, row["system"])
        assert cells[3:8] == ["-" if row[f] is None else f"{row[f]:.2f}" for f in benchmarks.ACCURACY_FIELDS]
        assert cells[-1] == benchmarks.compare_convention(row, benchmarks.GEOESTIMATION, admin=False)[0]
    marks = {r["system"]: _markdown_row(report, r["system"])[-1] for r in published}
    assert marks["SemP({100, 125, 250}, f) (EfficientNet-B4 re-implementation)"] == "yes"  # 6371 km, <=
    assert marks["PIGEOTTO"] == "no"  # PIGEON's code: 6378.137 km, <
    assert marks["PLONK"] == "no"  # PLONK's code: 6371 km, but d < t
    assert marks["TransLocator"] == "unknown"
    # each "no" says why in the table's notes
    assert "'no' for PLONK: d < t, not d <= t." in report
    bench = results["benchmark"]
    assert bench["name"] == "yfcc4k" and bench["run_uses_benchmark_convention"]
    assert [r["system"] for r in bench["published"]] == [r["system"] for r in published]
    table = next(
        t for t in json.loads((out / "tables.json").read_text())["tables"] if t["key"] == "benchmark"
    )
    assert len(table["rows"]) == 1 + len(published)
    assert (out / "benchmark.csv").exists()


def test_a_convention_the_user_sets_wins_and_the_published_rows_say_so(yfcc4k_set):
    assert _evaluate(yfcc4k_set, "out_paper_radius", "--earth_radius_km=6372.795") == 0
    out = yfcc4k_set["root"] / "out_paper_radius"
    results = json.loads((out / "results.json").read_text())
    assert results["convention"]["earth_radius_km"] == 6372.795  # the user's
    assert results["convention"]["threshold_rule"] == "le"  # the benchmark's (not set)
    assert not results["benchmark"]["run_uses_benchmark_convention"]
    report = (out / "report.md").read_text()
    assert "the run was set to another one" in report
    marks = {r["system"]: _markdown_row(report, r["system"])[-1] for r in benchmarks.published_for("yfcc4k")}
    assert marks["SemP({100, 125, 250}, f) (EfficientNet-B4 re-implementation)"] == "no"
    assert marks["TransLocator"] == "unknown"


def test_a_header_without_the_benchmark_columns_is_one_clear_line(tmp_path, capsys):
    csv_path = tmp_path / "yfcc4k.csv"
    csv_path.write_text("photo,OwnerNSID,LAT,LON\n1,a@N00,10,20\n")
    code = geoloc(
        [
            "evaluate",
            "--benchmark=yfcc4k",
            f"--model={tmp_path / 'run'}",
            f"--csv={csv_path}",
            f"--images={tmp_path}",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(csv_path) in err and "lacks IMG_ID" in err and "IMG_ID, [OwnerNSID], LAT, LON" in err


def test_an_unknown_benchmark_is_a_flag_error_listing_the_known_ones(tmp_path, capsys):
    code = geoloc(["evaluate", "--benchmark=yfcc5k", "--model=m", "--csv=c", "--images=i"])
    assert code == 2
    err = capsys.readouterr().err
    assert "yfcc5k" in err and all(name in err for name in benchmarks.BENCHMARK_NAMES)


def _rows(*conventions: str) -> list[dict]:
    """Published rows in the data file's format, one per ``radius,distance,rule,admin_rule,city``
    (city: the row's city-level admin accuracy, empty for none), read by the data file's reader."""
    header = ",".join(benchmarks.PUBLISHED_COLUMNS)
    lines = []
    for i, c in enumerate(conventions):
        radius, distance, rule, admin_rule, city = c.split(",")
        lines.append(
            f"osv5m,system {i},paper,2024,,,,,,,,,,,{city},{radius},{distance},{rule},{admin_rule},src,page"
        )
    return benchmarks.read_published("\n".join([header, *lines]) + "\n")


def test_an_unknown_distance_kind_or_admin_rule_in_the_data_file_is_refused_with_its_line():
    with pytest.raises(benchmarks.EvaluationError, match=r"published_results.csv:3: distance 'vincenty'"):
        _rows("6371,haversine,lt,osv5m,5.9", ",vincenty,le,,")
    with pytest.raises(benchmarks.EvaluationError, match=r"published_results.csv:2: admin_rule 'OSV5M'"):
        _rows("6371,haversine,lt,OSV5M,5.9")


def test_the_same_convention_verdict_follows_each_recorded_part():
    """Each row differs from the run's convention (haversine, 6371 km, d < t, OSV-5M's admin rule)
    in one part; the admin rule matters only for a row with admin numbers on a benchmark with admin
    accuracy."""
    used = benchmarks.Convention(6371.0, "lt", benchmarks.HAVERSINE, "osv5m")
    rows = _rows(
        "6371,haversine,lt,osv5m,5.9",  # all equal
        "6378.137,haversine,lt,osv5m,5.9",  # radius
        "6371,haversine,le,osv5m,5.9",  # threshold rule
        ",geodesic,lt,osv5m,5.9",  # distance kind (no radius: an ellipsoid)
        "6371,haversine,lt,geoloc,5.9",  # admin rule
        "6371,haversine,lt,,",  # no admin numbers: its admin rule does not matter
        ",,,,",  # nothing recorded
        "6371,haversine,,osv5m,5.9",  # the rule not recorded, the rest equal
        "6378.137,haversine,,osv5m,5.9",  # the rule not recorded, but the radius differs
    )
    verdicts = [benchmarks.compare_convention(row, used, admin=True) for row in rows]
    assert [v for v, _ in verdicts] == ["yes", "no", "no", "no", "no", "yes", "unknown", "unknown", "no"]
    assert verdicts[1][1] == ("Earth radius 6378.14 km, not 6371 km",)
    assert verdicts[2][1] == ("d <= t, not d < t",)
    assert "geodesic distance, not haversine" in verdicts[3][1][0]
    assert "geoloc does not compute" in verdicts[3][1][0]
    assert verdicts[4][1] == ("admin accuracy by the geoloc rule, not the osv5m rule",)
    # on a benchmark without admin accuracy the admin rule is not compared
    assert benchmarks.compare_convention(rows[4], used, admin=False)[0] == "yes"
    # nor is it when the run's rule is geoloc's and the row has no admin numbers
    geoloc_rule = dataclasses.replace(used, admin_rule="geoloc")
    assert benchmarks.compare_convention(rows[5], geoloc_rule, admin=True)[0] == "yes"
    assert benchmarks.compare_convention(rows[0], geoloc_rule, admin=True)[0] == "no"


def test_the_recovered_conventions_of_the_data_file():
    """GeoEstimation's own rows (its code's history: haversine, 6371 km, d <= t) are under the
    Im2GPS3k convention; GeoCLIP's (geopy's WGS84 geodesic) is under no convention of geoloc's."""
    used = benchmarks.get_benchmark("im2gps3k").convention
    rows = {r["system"]: r for r in benchmarks.published_for("im2gps3k")}
    for system in ("base(M, f*) (GeoEstimation)", "ISNs (M, f*, S3)"):
        assert benchmarks.compare_convention(rows[system], used, admin=False)[0] == "yes", system
    im2gps = {r["system"]: r for r in benchmarks.published_for("im2gps")}
    assert benchmarks.compare_convention(im2gps["base(M, f*) (GeoEstimation)"], used, admin=False)[0] == "yes"
    verdict, why = benchmarks.compare_convention(rows["GeoCLIP"], used, admin=False)
    assert verdict == "no" and "geodesic" in why[0]
    # not even a run set to GeoCLIP's radius-free rule d <= t on any sphere
    for radius in (6371.0, 6372.795, 6378.137):
        assert (
            benchmarks.compare_convention(rows["GeoCLIP"], benchmarks.Convention(radius, "le"), admin=False)[
                0
            ]
            == "no"
        )
    im2gps3k = benchmarks.get_benchmark("im2gps3k")
    assert im2gps3k.photos.startswith("2,997 photos")


def test_results_written_before_the_admin_rule_read_as_geolocs():
    convention = {"earth_radius_km": 6371.0, "distance": DISTANCE_FORMULA, "threshold_rule": "lt"}
    assert benchmarks.used_convention({"convention": convention}).admin_rule == "geoloc"
    used = benchmarks.used_convention({"convention": {**convention, "admin_rule": "osv5m"}})
    assert used == benchmarks.OSV5M


def test_every_published_row_has_a_source_and_sane_accuracies():
    rows = benchmarks.read_published()
    assert rows
    for row in rows:
        where = f"{row['benchmark']} / {row['system']}"
        assert row["benchmark"] in benchmarks.BENCHMARK_NAMES, where
        assert row["source"].strip() and row["verified_at"].strip(), where
        assert row["paper"].strip() and row["year"].isdigit(), where
        acc = [row[f] for f in benchmarks.ACCURACY_FIELDS if row[f] is not None]  # None: not reported
        admin = [row[f] for f in benchmarks.ADMIN_FIELDS if row[f] is not None]
        assert acc or admin or row["geoscore"] is not None, where  # some number
        assert all(0.0 <= a <= 100.0 for a in acc + admin), where
        assert np.all(np.diff(acc) >= 0), where  # accuracy grows with the threshold
        assert np.all(np.diff(admin) <= 0), where  # and falls from country to city
        assert row["geoscore"] is None or 0.0 <= row["geoscore"] <= 5000.0, where
        # a convention is recorded whole or not at all: a haversine row names its sphere's radius,
        # a geodesic row (the WGS84 ellipsoid) none
        assert row["distance"] in ("", *benchmarks.DISTANCES), where
        assert row["threshold_rule"] in ("", "le", "lt"), where
        assert bool(row["distance"]) == bool(row["threshold_rule"]), where
        assert (row["earth_radius_km"] is not None) == (row["distance"] == benchmarks.HAVERSINE), where
        # an admin rule exactly where the row has admin numbers
        assert row["admin_rule"] in ("", *ADMIN_RULES), where
        assert bool(row["admin_rule"]) == benchmarks.has_admin_numbers(row), where
        # a recorded convention names the code it was read from
        assert not row["distance"] or "convention from" in row["verified_at"], where
    keys = [(r["benchmark"], r["system"]) for r in rows]
    assert len(keys) == len(set(keys))  # one row per system x benchmark


@pytest.mark.parametrize(
    "given,radius_km,rule,admin_rule",
    [
        ((), 6371.0, "lt", "osv5m"),  # OSV-5M's own
        (("--threshold_rule=le",), 6371.0, "le", "osv5m"),
        (("--earth_radius_km=6378.137",), 6378.137, "lt", "osv5m"),
        (("--admin_rule=geoloc",), 6371.0, "lt", "geoloc"),  # the user's, though it is the default
    ],
)
def test_the_benchmark_convention_fills_what_the_user_did_not_set(
    monkeypatch, capsys, given, radius_km, rule, admin_rule
):
    seen = {}

    def record(*args):
        seen["config"], seen["benchmark"] = args[6], args[9]
        return {"photos": 1, "unreadable": [], "report": "r.md"}

    monkeypatch.setattr("geoloc_tf.evaluation.external.evaluate_external", record)
    assert geoloc(["evaluate", "--benchmark=osv5m", "--model=m", "--csv=c", "--images=i", *given]) == 0
    assert seen["benchmark"] == "osv5m"
    assert seen["config"].evaluate.earth_radius_km == radius_km
    assert seen["config"].evaluate.threshold_rule == rule
    assert seen["config"].evaluate.admin_rule == admin_rule


@pytest.mark.parametrize("images_in", ["zip", "files"])
def test_osv5m_is_scored_under_its_convention_with_admin_columns(yfcc4k_set, images_in):
    """The same photos in OSV-5M's layout (id, latitude, longitude, captured_at, admin columns,
    creator_id), read by the osv5m collection format from a zip (or extracted files): R = 6371 km
    and d < t (no distance sits on a threshold, so the same percentages); the benchmark table gains
    the admin-level accuracy columns and the published OSV-5M baseline row."""
    import shutil
    import zipfile

    root = yfcc4k_set["root"]
    lines = (root / "yfcc4k.csv").read_text().splitlines()[1:]
    rows = ["id,latitude,longitude,captured_at,country,region,sub-region,city,creator_id"]
    for line in lines:
        photo, user, lat, lon = line.split(",")
        # captured_at in epoch ms; with the zip, a country code no place has ("ZZ"): the data set's
        # admin columns are the truth, so no predicted country can match it
        country = "ZZ" if images_in == "zip" else ""
        rows.append(f"{photo},{lat},{lon},1500000000000,{country},,,,{user}")
    (root / "test.csv").write_text("\n".join(rows) + "\n")
    images = root / f"osv5m_{images_in}"
    shutil.rmtree(images, ignore_errors=True)
    (images / "test").mkdir(parents=True)
    jpegs = sorted(yfcc4k_set["images"].glob("*.jpg"))
    if images_in == "zip":
        with zipfile.ZipFile(images / "test" / "00.zip", "w") as zf:
            for path in jpegs:
                zf.write(path, f"test/{path.name}")
    else:
        for path in jpegs:
            shutil.copy(path, images / "test" / path.name)
    out = root / f"out_osv5m_{images_in}"
    code = geoloc(
        [
            "evaluate",
            "--benchmark=osv5m",
            f"--model={yfcc4k_set['run']}",
            f"--csv={root / 'test.csv'}",
            f"--images={images / 'test'}",
            f"--out={out}",
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert (
        results["convention"]["earth_radius_km"] == 6371.0 and results["convention"]["threshold_rule"] == "lt"
    )
    report = (out / "report.md").read_text()
    assert "an error counts when d < t" in report and "test.csv (osv5m): 5 photos evaluated" in report
    header = next(
        line for line in report.split("### Benchmark ", 1)[1].splitlines() if line.startswith("| System")
    )
    assert "Country (admin)" in header and "City (admin)" in header
    run_row = _markdown_row(report, "Inception (M1)")
    assert _values(run_row[3:8]) == [f"{p:.2f}" for p in EXPECTED_PERCENT]
    country = results["admin_accuracy"]["models"]["m1"]["country"]["accuracy_percent"]
    lo, hi = results["admin_accuracy"]["models"]["m1"]["country"]["interval"]
    assert lo <= country <= hi
    assert run_row[10] == f"{country:.2f} [{lo:.2f}, {hi:.2f}]"
    if images_in == "zip":
        assert results["admin_accuracy"]["truth_source"] == "data set's admin columns"
        assert country == 0.0
    assert "Time Inputs (M2)" in results["models"]["m2"]["display_name"]  # M2 on the capture times
    baseline = _markdown_row(report, "OSV-5M baseline (released best model)")  # the data file's row
    assert baseline[3:8] == ["-"] * 5  # its model card gives no threshold accuracy
    assert baseline[8:14] == ["1,814", "3,361", "68.00", "39.40", "10.30", "5.90"]
    assert baseline[-1] == "yes"  # OSV-5M's code: haversine, 6371 km, d < t, its admin rule
    assert results["convention"]["admin_rule"] == "osv5m"  # the benchmark's, the user set none
    assert results["benchmark"]["run_uses_benchmark_convention"]


def test_test_photographers_seen_in_training_are_split_out(tiny_world, tmp_path):
    """A run directory holding its data set (the tiny demo world's): the YFCC4k-layout set's
    photographers are hashed with its salt, so one training photographer (2 photos, one of them a
    training photo itself) is recognised; the photographer-disjoint rows cover the other 3 photos
    (100, 500, 5000 km: 0, 0, 33.33, 66.67, 66.67 %)."""
    from data_pipelines import dataset
    from data_pipelines.demo import generate as demo
    from mesh import Mesh

    run = build_tiny_run(tmp_path / "run", export=False)
    (run / "data").symlink_to(Path(tiny_world.data_root).resolve())
    train_ids = sorted(
        dataset.load(tiny_world.data_root).table("m1_train", ["photo_id"])["photo_id"].astype(str)
    )
    collection = Path(tiny_world.data_root).parent / "collection" / demo.METADATA_FILE
    user_of = dict(line.split("\t")[:2] for line in collection.read_text().splitlines())
    seen_id = train_ids[0]
    lat0, lon0 = Mesh.load(run / "mesh" / "mesh.npz").imagery_centroids[3]
    toward_equator = -1.0 if lat0 > 0 else 1.0
    photos = [
        (seen_id, user_of[seen_id]),
        ("t1", user_of[seen_id]),
        ("t2", "n1@N00"),
        ("t3", "n1@N00"),
        ("t4", "n2@N00"),
    ]
    images = tmp_path / "images"
    images.mkdir()
    rows = ["IMG_ID,OwnerNSID,LAT,LON"]
    for i, ((photo, user), d) in enumerate(zip(photos, DISTANCES_KM)):
        lat = lat0 + toward_equator * math.degrees(d / benchmarks.GEOESTIMATION.earth_radius_km)
        rows.append(f"{photo},{user},{lat:.7f},{lon0:.7f}")
        (images / f"{photo}.jpg").write_bytes(jpeg(24, 32, seed=i))
    (tmp_path / "yfcc4k.csv").write_text("\n".join(rows) + "\n")
    data = {"root": tmp_path, "run": run, "csv": tmp_path / "yfcc4k.csv", "images": images}
    assert _evaluate(data, "out") == 0
    leakage = json.loads((tmp_path / "out" / "results.json").read_text())["leakage"]
    assert leakage["num_test_ids_in_training"] == 1
    assert leakage["num_photos_unseen_photographers"] == 3
    unseen = leakage["models"]["m1"]["unseen_photographers"]
    assert unseen["num_photos"] == 3
    assert [round(v, 2) for v in unseen["accuracy_percent"].values()] == [0.0, 0.0, 33.33, 66.67, 66.67]
    assert leakage["models"]["m1"]["all"]["num_photos"] == 5
