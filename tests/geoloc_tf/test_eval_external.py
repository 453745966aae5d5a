"""`geoloc evaluate` on a 20-image test set whose LAT/LON headers are swapped (a known defect of
one public Im2GPS3k file), with one corrupt image."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from PIL import Image


def test_geoloc_evaluate_on_a_swapped_header_csv(tmp_path, capsys):
    import keras

    from geoloc_tf.evaluation.external import main
    from geoloc_tf.m1.inception_v4 import InceptionV4Config, build_inception_v4
    from mesh import build_mesh

    rng = np.random.default_rng(5)
    run = tmp_path / "run"
    lat, lon = rng.uniform(-60, 60, 3000), rng.uniform(-170, 170, 3000)
    mesh = build_mesh(lat, lon, refinement_limit=300, min_examples=20, init_grid=6)
    mesh.save(run / "mesh" / "mesh.npz")
    model = build_inception_v4(InceptionV4Config(num_cells=mesh.num_cells, image_size=75,
                                                 width_multiplier=0.05, num_blocks_a=1,
                                                 num_blocks_b=0, num_blocks_c=0))
    (run / "m1").mkdir()
    model.save(run / "m1" / "m1.keras")

    images = tmp_path / "images"
    images.mkdir()
    rows = ["IMG_ID,LAT,LON"]  # swapped: the LAT column holds longitudes, LON latitudes
    truth = {}
    for i in range(20):
        la, lo = rng.uniform(-50, 50), rng.uniform(100, 170) * rng.choice([-1, 1])
        truth[f"{i}.jpg"] = (la, lo)
        rows.append(f"{i}.jpg,{lo:.5f},{la:.5f}")
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(images / f"{i}.jpg")
    (images / "7.jpg").write_bytes(b"not a jpeg")  # one unreadable image: named, skipped
    (tmp_path / "test.csv").write_text("\n".join(rows) + "\n")

    code = main([f"--model={run}", f"--csv={tmp_path / 'test.csv'}", f"--images={images}",
                 f"--out={tmp_path / 'out'}", "--image_path_template={id}"])
    assert code == 0
    captured = capsys.readouterr()
    assert "19 photos evaluated" in captured.out
    assert "7.jpg" in captured.err
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Inception (M1)" in report and "External test set test.csv" in report
    table = pd.read_parquet(tmp_path / "out" / "predictions" / "m1" / "external.parquet")
    assert len(table) == 19
    for _, row in table.iterrows():  # the swap was undone: true latitudes, true longitudes
        la, lo = truth[f"{row['photo_id']}"]
        assert abs(row["lat"] - la) < 1e-4 and abs(row["lon"] - lo) < 1e-4
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "m2" not in json.dumps(results.get("models", {}))  # no times: no M2 rows
