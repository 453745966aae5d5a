"""The small demo in the OpenStreetView-5M layout through every stage, then scored as the OSV-5M
benchmark on its held-out test.csv, as a user with a copy of OSV-5M runs it.

    python -m experiments.run --flagfile=demo.cfg --data_demo_size=small --data_format=osv5m
    geoloc evaluate --benchmark=osv5m --model=RUN --csv=DEMO/test.csv --images=DEMO/images

(about 2 minutes on 2 cores with shorter training than the demo's; CI runs it). The demo is written as OSV-5M's train.csv / test.csv and
images/{train,test}/NN.zip (``data_pipelines.demo.formats``) and read back through the osv5m reader,
photos straight out of the zips. Checks a person can redo by hand: every train.csv row ingested and
none skipped; M2's time input is each photo's ``captured_at`` (epoch milliseconds in the CSV, seconds
in the tables); M3's albums are the photos of one ``creator_id`` (its hash with the demo's salt); the
report states its distance convention and has GeoScore, the admin-level accuracy against the CSV's
admin columns and the photographer-disjoint rows; the benchmark report puts the run beside the
published OSV-5M baseline under OSV-5M's convention (6371 km, d < t).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from experiments.stages import STAGES
from tests.experiments.conftest import REPO

#: Fewer epochs than demo.cfg (M1's SGD phase, M2's and M3's early-stopping caps).
SHORT_TRAINING = ("--m1_sgd_epochs=1", "--m2_max_epochs=3", "--m3_max_epochs=2")


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.network
def test_small_demo_in_the_osv5m_layout_runs_every_stage_and_scores_as_the_benchmark(
    tmp_path, run_small_demo, demo_env, demo_data_dir
):
    run_dir = (tmp_path / "demo_osv5m").resolve()
    # What this test checks is the layout, the reader, the tables and the scoring, not how well the
    # models learn: shorter training than the demo's keeps CI's time in bounds.
    result = run_small_demo(run_dir, "--data_format=osv5m", *SHORT_TRAINING)
    assert result.returncode == 0, result.stderr[-5000:]
    for stage in STAGES:
        assert (run_dir / "stages" / f"{stage.name}.json").is_file(), stage.name

    # The collection in OSV-5M's layout, read through the osv5m reader: train.csv only.
    summary = json.loads((run_dir / "data" / "summary.json").read_text())
    [source] = summary["files"]
    collection = Path(source["path"]).parent
    assert Path(source["path"]).name == "train.csv" and summary["format"] == "osv5m"
    assert sorted(p.name for p in (collection / "images" / "train").glob("*.zip")) == [
        "00.zip",
        "01.zip",
        "02.zip",
    ]
    train = {row["id"]: row for row in read_rows(collection / "train.csv")}
    assert summary["lines_read"] == summary["examples_written"] == len(train)
    assert sum(summary["skipped"].values()) == 0

    # Capture times (epoch ms in the CSV) are M2's time input; creator ids (hashed) M3's albums;
    # the admin columns are kept for the evaluation. The nickname column never reaches the tables.
    from data_pipelines.hashing import UserHasher

    hasher = UserHasher("geoloc-demo-seed0")  # the demo's salt (data_pipelines.demo.collection)
    table = pd.read_parquet(run_dir / "data" / "tables" / "m23_val.parquet")
    assert len(table) > 100 and "creator_username" not in table.columns
    for row in table.head(20).itertuples():
        source_row = train[row.photo_id]
        assert row.posted_at == int(source_row["captured_at"]) // 1000
        assert row.user_hash == hasher(source_row["creator_id"])
        assert (row.country, row.city) == (source_row["unique_country"], source_row["unique_city"])
    for model in ("m2", "m3"):
        predictions = pd.read_parquet(run_dir / "predictions" / model / "m23_val.parquet")
        assert sorted(predictions["photo_id"]) == sorted(table["photo_id"]), model

    # The report: its convention, GeoScore, admin-level accuracy against the data set's columns,
    # and the photographer-disjoint rows.
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    assert results["convention"]["earth_radius_km"] == 6372.795
    assert results["convention"]["threshold_rule"] == "le"
    assert 0 < results["models"]["m1"]["by_label_point"]["imagery"]["geoscore"] < 5000
    assert results["admin_accuracy"]["truth_source"] == "data set's admin columns"
    assert set(results["admin_accuracy"]["models"]) >= {"m1", "m2", "m3"}
    assert results["leakage"]["num_photos"] == len(table)
    assert results["leakage"]["num_test_ids_in_training"] == 0
    report = (run_dir / "eval" / "report.md").read_text()
    assert "SIMULATED DATA" in report
    assert (
        "Distances: haversine (great circle on a sphere), Earth radius 6372.795 km; an error equal" in report
    )
    assert "GeoScore" in report
    assert "### Country / region / sub-region / city accuracy (%)" in report
    assert "### Photographers absent from training vs all test photos" in report

    # test.csv, never trained on, scored as the OSV-5M benchmark beside the published baseline.
    test_rows = read_rows(collection / "test.csv")
    out = tmp_path / "bench"
    bench = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.cli",
            "evaluate",
            "--benchmark=osv5m",
            f"--model={run_dir}",
            f"--csv={collection / 'test.csv'}",
            f"--images={collection / 'images'}",
            f"--out={out}",
        ],
        cwd=REPO,
        env=demo_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert bench.returncode == 0, bench.stderr[-5000:]
    assert f"{len(test_rows)} photos evaluated" in bench.stdout
    scored = json.loads((out / "results.json").read_text())
    assert scored["convention"]["earth_radius_km"] == 6371 and scored["convention"]["threshold_rule"] == "lt"
    report = (out / "report.md").read_text()
    assert "SIMULATED DATA" in report
    assert "| OSV-5M baseline (released best model) |" in report
    assert "| Inception (M1) | this run | %d |" % len(test_rows) in report
    assert not set(r["id"] for r in test_rows) & set(train)
