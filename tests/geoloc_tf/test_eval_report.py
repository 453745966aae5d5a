"""The report renders every table and plot from a small fake run directory.

The run directory holds a real tiny mesh (``mesh.build_mesh``) and fake prediction tables in the
predict stage's format: M1, M2 (same photos, same order), user averaging (k = 1) and M3 (a shuffled
subset, so pairing by photo_id is exercised).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geoloc_tf.errors import EvaluationError
from geoloc_tf.evaluation import compare, report, results
from geoloc_tf.evaluation import model_predictions as predictions
from mesh import Mesh, build_mesh

N = 400  # validation photos


def clustered_points(rng, n):
    """80 % of photos around 4 "cities", 20 % anywhere: some triangles end up dropped."""
    centres = np.array([[48.0, 2.0], [40.0, -74.0], [35.0, 139.0], [-33.0, 151.0]])
    k = rng.integers(0, 4, n)
    lat = centres[k, 0] + rng.normal(0, 3, n)
    lon = centres[k, 1] + rng.normal(0, 3, n)
    wide = rng.random(n) < 0.2
    lat[wide] = np.degrees(np.arcsin(rng.uniform(-1, 1, wide.sum())))
    lon[wide] = rng.uniform(-180, 180, wide.sum())
    return np.clip(lat, -89, 89), (lon + 180) % 360 - 180


def write_table(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def fake_predictions(rng, mesh, lat, lon, hit_rate, k, users, posted, outdoor, photo_ids):
    true = mesh.locate(lat, lon)
    guess = rng.integers(0, mesh.num_cells, (len(lat), k)).astype(np.int32)
    hit = (rng.random(len(lat)) < hit_rate) & (true >= 0)
    guess[hit, 0] = true[hit]
    probs = np.sort(rng.random((len(lat), k)).astype(np.float32), axis=1)[:, ::-1]
    return pd.DataFrame(
        {
            "photo_id": photo_ids,
            "user_hash": users,
            "posted_at": posted,
            "lat": lat,
            "lon": lon,
            "outdoor_prob": outdoor,
            "top_ids": list(guess),
            "top_probs": list(probs),
            "top10_mass": probs.sum(axis=1),
        }
    )


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("fake_run")
    rng = np.random.default_rng(5)
    train_lat, train_lon = clustered_points(rng, 3000)
    mesh = build_mesh(train_lat, train_lon, refinement_limit=150, min_examples=40, init_grid=4)
    assert mesh.num_cells < mesh.num_triangles  # some cells dropped
    (run / "mesh").mkdir()
    mesh.save(run / "mesh" / "mesh.npz")
    lat, lon = clustered_points(rng, N)
    users = np.array([f"u{i % 60:02d}" for i in range(N)], dtype=object)
    posted = (1_400_000_000 + rng.integers(0, 86400 * 30, N)).astype(np.int64)
    outdoor = rng.random(N).astype(np.float32)
    outdoor[:40] = -1.0  # unknown
    ids = np.array([f"p{i:04d}" for i in range(N)], dtype=object)
    args = (users, posted, outdoor, ids)
    write_table(
        run / "predictions" / "m1" / "m23_val.parquet", fake_predictions(rng, mesh, lat, lon, 0.3, 10, *args)
    )
    write_table(
        run / "predictions" / "m2" / "m23_val.parquet", fake_predictions(rng, mesh, lat, lon, 0.6, 10, *args)
    )
    write_table(
        run / "predictions" / "user_averaging" / "m23_val.parquet",
        fake_predictions(rng, mesh, lat, lon, 0.5, 1, *args),
    )
    m3 = fake_predictions(rng, mesh, lat, lon, 0.7, 10, *args).iloc[rng.permutation(N)[:300]]
    write_table(run / "predictions" / "m3" / "m23_val.parquet", m3)
    write_table(
        run / "predictions" / "m1" / "m23_train.parquet",
        fake_predictions(rng, mesh, lat, lon, 0.3, 10, users, posted, outdoor, ids + "t"),
    )
    return run


def test_discovery_finds_models_in_report_order(fake_run):
    found = predictions.discover_prediction_tables(fake_run, "m23_val")
    assert list(found) == ["m1", "m2", "user_averaging", "m3"]
    both = predictions.discover_prediction_tables(fake_run, "m23_train+m23_val")  # all of M1's validation
    assert list(both) == ["m1"] and len(both["m1"]) == 2
    assert len(predictions.load_predictions(both)["m1"]) == 2 * N
    m1 = predictions.read_prediction_table(found["m1"], "m1")
    table = pd.read_parquet(found["m1"])
    np.testing.assert_array_equal(m1.cell, [ids[0] for ids in table["top_ids"]])


def test_report_renders_every_table_and_plot(fake_run):
    artifacts = report.evaluate_run(fake_run, simulated=True)
    out = fake_run / "eval"
    for name in (
        "report.md",
        "results.json",
        "tables.json",
        "table3.csv",
        "table4.csv",
        "table6.csv",
        "table7.csv",
        "wilcoxon.csv",
        "figure1_longitude_by_hour.png",
        "figure2_mesh.png",
        "error_cdf.png",
        "accuracy_map_m1.png",
        "accuracy_map_m2.png",
        "accuracy_map_m3.png",
        "accuracy_map_user_averaging.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert artifacts["report"] == str(out / "report.md")
    md = (out / "report.md").read_text()
    assert md.startswith("> **SIMULATED DATA.**")
    for title in (
        "Table 3",
        "Table 4",
        "Table 6",
        "Table 7",
        "Wilcoxon",
        "Figure 1",
        "Figure 2",
        "Error CDF",
    ):
        assert title in md
    assert not list(out.glob(".*.tmp"))  # atomic writes leave nothing behind

    res = json.loads((out / "results.json").read_text())
    mesh = Mesh.load(fake_run / "mesh")
    assert res["simulated"] is True and res["num_cells"] == mesh.num_cells
    assert res["models"]["m1"]["num_photos"] == N and res["models"]["m3"]["num_photos"] == 300
    # Outdoor rows cover exactly the photos with known probability >= 0.5.
    m1 = pd.read_parquet(fake_run / "predictions" / "m1" / "m23_val.parquet")
    assert res["models"]["m1"]["outdoor"]["num_outdoor"] == int((m1["outdoor_prob"] >= 0.5).sum())
    assert res["models"]["m1"]["outdoor"]["num_known"] == N - 40
    # Wilcoxon pairs by photo_id: M3 shares 300 photos with M2 and M1.
    pairs = {(w["model_a"], w["model_b"]): w for w in res["wilcoxon"]}
    assert set(pairs) == {("m1", "m2"), ("m2", "m3"), ("m1", "m3"), ("m1", "user_averaging")}
    assert pairs[("m2", "m3")]["num_photos"] == 300 and pairs[("m1", "m2")]["num_photos"] == N
    # Table 6 has every model, the most-frequent-cell baseline and 4 best-possible rows.
    t6 = pd.read_csv(out / "table6.csv")
    assert t6["Photos"].notna().all()
    assert sum(t6["Model"].str.startswith("Best Possible")) == 4
    mf = t6[t6["Model"].str.startswith("Most Frequent")].iloc[0]
    assert f"cell {int(np.argmax(mesh.counts))}" in mf["Model"]
    t7 = pd.read_csv(out / "table7.csv")
    best = t7[t7["Model"] == "Best Possible"].iloc[0]
    assert best["KL Divergence"] == 0.0 and best["Entropy true (nats)"] == best["Entropy predicted (nats)"]
    assert (t7["KL Divergence"] >= 0).all()
    t3 = pd.read_csv(out / "table3.csv")
    assert len(t3) == 2 * 4 and set(t3["Imagery Centroid"]) == {True, False}


def test_results_agree_with_a_direct_computation(fake_run):
    """M1's imagery-centroid accuracy at 2500 km recomputed here with plain numpy."""
    from mesh.geodesy import great_circle_km

    mesh = Mesh.load(fake_run / "mesh")
    m1 = pd.read_parquet(fake_run / "predictions" / "m1" / "m23_val.parquet")
    cell = np.array([ids[0] for ids in m1["top_ids"]])
    pts = mesh.imagery_centroids[cell]
    d = great_circle_km(m1["lat"], m1["lon"], pts[:, 0], pts[:, 1])
    ev = results.evaluate_predictions(
        predictions.load_predictions({"m1": fake_run / "predictions" / "m1" / "m23_val.parquet"}), mesh
    )
    s = ev.results["models"]["m1"]["by_label_point"]["imagery"]
    assert s["accuracy_percent"]["2500"] == pytest.approx(100.0 * np.mean(d <= 2500))
    assert s["median_km"] == pytest.approx(np.median(d))
    assert s["mean_km"] == pytest.approx(np.mean(d))


def test_m2_m3_rows_only_when_their_tables_exist(fake_run, tmp_path):
    out = tmp_path / "only_m1"
    report.evaluate_run(
        fake_run,
        mesh_path=fake_run / "mesh" / "mesh.npz",
        tables={"m1": fake_run / "predictions" / "m1" / "m23_val.parquet"},
        out_dir=out,
        config=report.ReportConfig(plots=False),
        notice="",
    )
    res = json.loads((out / "results.json").read_text())
    assert list(res["models"]) == ["m1"] and res["wilcoxon"] == []
    md = (out / "report.md").read_text()
    assert "Time Inputs (M2)" not in md and "SIMULATED" not in md
    with pytest.raises(EvaluationError, match="no <model>/nope.parquet"):
        report.evaluate_run(fake_run, config=report.ReportConfig(results.EvalConfig(split="nope")))


def test_compare_puts_runs_side_by_side(fake_run, tmp_path):
    a, b = tmp_path / "coarse", tmp_path / "fine"
    for d in (a, b):
        report.evaluate_run(fake_run, out_dir=d / "eval", config=report.ReportConfig(plots=False))
    tables, files = compare.compare_runs([a, b / "eval" / "results.json"], out_dir=tmp_path / "cmp")
    assert [t.key for t in tables] == ["compare", "compare_differences"]
    assert tables[1].rows == ()  # these runs hold no prediction tables of their own
    csv = pd.read_csv(files["csv"])
    assert list(dict.fromkeys(csv["Run"])) == ["coarse", "fine"]
    assert len(csv) == 2 * (4 + 1)  # 4 models + best possible per run
    assert csv["Photos"].notna().all()
    assert "| coarse |" in Path(files["markdown"]).read_text()
    assert (
        csv["Country 750 km lo"].notna().sum() == 2 * 4
    )  # every model row has its interval, best possible none
    with pytest.raises(EvaluationError, match="no results.json"):
        compare.compare_runs([tmp_path / "missing"])


def test_runs_differ_as_their_models_do_on_the_same_photos(fake_run, tmp_path):
    """Run B is run A with M1's table replaced by M2's: B's M1 - A's M1 across runs is the same
    paired difference (value and interval) as M2 - M1 within run A's own report."""
    import shutil

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(fake_run, a)
    shutil.copytree(fake_run, b)
    shutil.copy(a / "predictions" / "m2" / "m23_val.parquet", b / "predictions" / "m1" / "m23_val.parquet")
    for run in (a, b):
        report.evaluate_run(run, config=report.ReportConfig(plots=False))
    diffs = compare.run_differences([a, b], ["without", "with"], models=["m1", "m2"])
    assert [(d["b"]["model"], d["run_a"], d["run_b"]) for d in diffs] == [
        ("m1", "without", "with"),
        ("m2", "without", "with"),
    ]
    m1, m2 = diffs
    within = json.loads((a / "eval" / "results.json").read_text())["differences"]
    m2_minus_m1 = next(d for d in within if d["a"]["model"] == "m1" and d["b"]["model"] == "m2")
    assert m1["accuracy_percent"] == m2_minus_m1["accuracy_percent"]
    assert m1["interval"] == m2_minus_m1["interval"]
    assert m1["num_photos"] == N
    # The same model in both runs: no difference, in every resample.
    assert set(m2["accuracy_percent"].values()) == {0.0}
    assert all(bounds == [0.0, 0.0] for bounds in m2["interval"]["accuracy_percent"].values())
    tables, _ = compare.compare_runs([a, b])
    assert len(tables[1].rows) == len(json.loads((a / "eval" / "results.json").read_text())["models"])
    # A later run needs only its predictions and mesh (a run stopped after its predict stage).
    shutil.rmtree(b / "eval")
    assert (
        compare.run_differences([a, b], ["without", "with"], models=["m1"])[0]["interval"] == m1["interval"]
    )


def test_predicted_cell_is_the_first_id_and_missing_columns_are_reported(tmp_path):
    frame = pd.DataFrame(
        {
            "photo_id": ["a", "b", "c"],
            "user_hash": ["u", "u", "v"],
            "posted_at": [0, 3600, 7200],
            "lat": [1.0, 2.0, 3.0],
            "lon": [4.0, 5.0, 6.0],
            "outdoor_prob": np.float32([0.1, -1, 0.9]),
            "top_ids": [np.int32([7, 3]), np.int32([]), np.int32([2, 9])],
            "top_probs": [np.float32([0.6, 0.1]), np.float32([]), np.float32([0.5, 0.4])],
            "top10_mass": np.float32([0.7, 0, 0.9]),
        }
    )
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    p = predictions.read_prediction_table(tmp_path / "t.parquet", "m1")
    np.testing.assert_array_equal(p.cell, [7, -1, 2])  # an empty list: no prediction
    frame.drop(columns=["outdoor_prob"]).to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(EvaluationError, match="model 'm1': .*bad.parquet: cannot read prediction table"):
        predictions.read_prediction_table(tmp_path / "bad.parquet", "m1")


def test_every_row_carries_its_interval_and_the_differences_are_paired(fake_run, tmp_path):
    """60 photographers (u00..u59) in the fake run: every row of results.json says how its interval
    was made; the report shows "value [lo, hi]"; CSV/JSON tables keep lo/hi columns."""
    out = tmp_path / "boot"
    config = report.ReportConfig(results.EvalConfig(bootstrap_samples=200, bootstrap_seed=3), plots=False)
    report.evaluate_run(fake_run, out_dir=out, config=config)
    res = json.loads((out / "results.json").read_text())
    assert res["bootstrap"] == {"samples": 200, "seed": 3, "level": 0.95, "method": "percentile bootstrap"}
    m1 = res["models"]["m1"]
    for s in (*m1["by_label_point"].values(), *m1["outdoor"]["by_label_point"].values()):
        i = s["interval"]
        assert (i["unit"], i["samples"], i["seed"]) == ("photographers", 200, 3)
        for t, (lo, hi) in i["accuracy_percent"].items():
            assert lo <= s["accuracy_percent"][t] <= hi
        assert i["median_km"][0] <= s["median_km"] <= i["median_km"][1]
    assert m1["by_label_point"]["imagery"]["interval"]["num_units"] == 60
    assert res["most_frequent_cell"]["by_label_point"]["imagery"]["interval"]["num_units"] == 60
    diffs = {(d["kind"], d["a"]["model"], d["b"]["model"]): d for d in res["differences"]}
    assert set(diffs) >= {
        ("models", "m1", "m2"),
        ("models", "m2", "m3"),
        ("models", "most_frequent_cell", "m1"),
        ("label_point", "m1", "m1"),
        ("outdoor", "m1", "m1"),
    }
    m2_m1 = diffs[("models", "m1", "m2")]
    a, b = (res["models"][m]["by_label_point"]["imagery"] for m in ("m1", "m2"))
    assert m2_m1["accuracy_percent"]["750"] == pytest.approx(
        b["accuracy_percent"]["750"] - a["accuracy_percent"]["750"]
    )
    assert m2_m1["mean_km"] == pytest.approx(b["mean_km"] - a["mean_km"])
    assert diffs[("models", "m2", "m3")]["num_photos"] == 300  # the photos both tables hold
    lo, hi = m2_m1["interval"]["accuracy_percent"]["750"]
    assert lo <= m2_m1["accuracy_percent"]["750"] <= hi
    assert diffs[("label_point", "m1", "m1")]["a"]["label_point"] == "cell"

    md = (out / "report.md").read_text()
    assert "### Paired differences: B - A with 95 % interval" in md
    assert "bootstrap over 60 photographers" in md and "200 resamples, seed 3" in md
    value, (lo, hi) = b["accuracy_percent"]["750"], b["interval"]["accuracy_percent"]["750"]
    assert f"{value:.2f} [{lo:.2f}, {hi:.2f}]" in md
    tables = {t["key"]: t for t in json.loads((out / "tables.json").read_text())["tables"]}
    columns = tables["table6"]["columns"]
    assert columns[columns.index("Country 750 km") + 1 : columns.index("Country 750 km") + 3] == [
        "Country 750 km lo",
        "Country 750 km hi",
    ]
    best = next(r for r in tables["table6"]["rows"] if r[0].startswith("Best Possible"))
    assert best[columns.index("Country 750 km lo")] is None  # no interval for the ceiling
    t6 = pd.read_csv(out / "table6.csv")
    assert "Median (km) lo" in t6.columns
    assert "differences" in tables and "City 25 km hi" in tables["differences"]["columns"]


def test_bootstrap_off_gives_the_numbers_without_intervals_and_says_so(fake_run, tmp_path):
    out = tmp_path / "off"
    config = report.ReportConfig(results.EvalConfig(bootstrap_samples=0), plots=False)
    report.evaluate_run(fake_run, out_dir=out, config=config)
    res = json.loads((out / "results.json").read_text())
    assert res["models"]["m1"]["by_label_point"]["imagery"]["interval"] is None
    assert all(d["interval"] is None for d in res["differences"])
    md = (out / "report.md").read_text()
    assert "No 95 % intervals: the bootstrap is off (bootstrap_samples = 0)." in md
    assert " [" not in md.split("### Table 6", 1)[1].split("###", 1)[0]
    tables = json.loads((out / "tables.json").read_text())["tables"]
    assert not any(c.endswith(" lo") for t in tables for c in t["columns"])
