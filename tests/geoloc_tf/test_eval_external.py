"""`geoloc evaluate` on a 20-image test set whose LAT/LON headers are swapped (a known defect of
one public Im2GPS3k file), with one corrupt image."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from PIL import Image


def test_geoloc_evaluate_on_a_swapped_header_csv(tmp_path, capsys):

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


def test_geoloc_evaluate_with_a_scene_model_for_the_outdoor_rows(tmp_path, capsys):
    """A tiny 'scene model' that calls bright images outdoor (class 1 = outdoor in the IO file)."""
    import keras

    from geoloc_tf.evaluation.external import main
    from geoloc_tf.m1.inception_v4 import InceptionV4Config, build_inception_v4
    from mesh import build_mesh

    rng = np.random.default_rng(2)
    run = tmp_path / "run"
    mesh = build_mesh(rng.uniform(-60, 60, 2000), rng.uniform(-170, 170, 2000), refinement_limit=300,
                      min_examples=20, init_grid=6)
    mesh.save(run / "mesh" / "mesh.npz")
    (run / "m1").mkdir()
    build_inception_v4(InceptionV4Config(num_cells=mesh.num_cells, image_size=75, width_multiplier=0.05,
                                         num_blocks_a=1, num_blocks_b=0, num_blocks_c=0)
                       ).save(run / "m1" / "m1.keras")
    inputs = keras.Input((8, 8, 3))
    rgb = keras.layers.GlobalAveragePooling2D()(inputs)  # pixels in [0, 1]
    dense = keras.layers.Dense(2, activation="softmax")
    scene = keras.Model(inputs, dense(rgb))
    # logits: indoor 20 - 40 * brightness, outdoor 40 * brightness - 20 (brightness = mean of RGB)
    dense.set_weights([np.array([[-40 / 3, 40 / 3]] * 3, np.float32), np.array([20.0, -20.0],
                                                                              np.float32)])
    scene.save(tmp_path / "scene.keras")
    (tmp_path / "io.txt").write_text("/d/dark_room 1\n/b/bright_field 2\n")

    images = tmp_path / "images"
    images.mkdir()
    rows = ["IMG_ID,LAT,LON"]
    for i in range(10):
        value = 230 if i < 4 else 20  # 4 bright (outdoor), 6 dark (indoor)
        Image.fromarray(np.full((30, 30, 3), value, np.uint8)).save(images / f"{i}.jpg")
        rows.append(f"{i}.jpg,{rng.uniform(-40, 40):.4f},{rng.uniform(-100, 100):.4f}")
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    assert main([f"--model={run}", f"--csv={tmp_path / 't.csv'}", f"--images={images}",
                 f"--out={tmp_path / 'out'}", "--image_path_template={id}",
                 f"--scene_model={tmp_path / 'scene.keras'}", f"--scene_io_labels={tmp_path / 'io.txt'}",
                 "--scene_image_size=8"]) == 0
    table4 = pd.read_csv(tmp_path / "out" / "table4.csv")
    outdoor_rows = table4[table4["Outdoor Only"].astype(str) == "True"]
    assert list(outdoor_rows["Photos"]) == [4]
