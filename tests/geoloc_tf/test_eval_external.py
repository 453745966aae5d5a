"""`geoloc evaluate` on a 20-image test set whose LAT/LON headers are swapped (a known defect of
one public Im2GPS3k file), with one corrupt image."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from PIL import Image

from experiments.cli import main as geoloc
from tests.conftest import random_mesh
from tests.geoloc_tf.conftest import save_tiny_m1


def test_geoloc_evaluate_on_a_swapped_header_csv(tmp_path, capsys):

    rng = np.random.default_rng(5)
    run = tmp_path / "run"
    mesh = random_mesh(rng, 3000)
    mesh.save(run / "mesh" / "mesh.npz")
    save_tiny_m1(run, mesh.num_cells)

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

    code = geoloc(
        [
            "evaluate",
            f"--model={run}",
            f"--csv={tmp_path / 'test.csv'}",
            f"--images={images}",
            f"--out={tmp_path / 'out'}",
            "--image_path_template={id}",
        ]
    )
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

    rng = np.random.default_rng(2)
    run = tmp_path / "run"
    mesh = random_mesh(rng, 2000)
    mesh.save(run / "mesh" / "mesh.npz")
    save_tiny_m1(run, mesh.num_cells)
    inputs = keras.Input((8, 8, 3))
    rgb = keras.layers.GlobalAveragePooling2D()(inputs)  # pixels in [0, 1]
    dense = keras.layers.Dense(2, activation="softmax")
    scene = keras.Model(inputs, dense(rgb))
    # logits: indoor 20 - 40 * brightness, outdoor 40 * brightness - 20 (brightness = mean of RGB)
    dense.set_weights([np.array([[-40 / 3, 40 / 3]] * 3, np.float32), np.array([20.0, -20.0], np.float32)])
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
    assert (
        geoloc(
            [
                "evaluate",
                f"--model={run}",
                f"--csv={tmp_path / 't.csv'}",
                f"--images={images}",
                f"--out={tmp_path / 'out'}",
                "--image_path_template={id}",
                f"--scene_model={tmp_path / 'scene.keras'}",
                f"--scene_io_labels={tmp_path / 'io.txt'}",
                "--scene_image_size=8",
            ]
        )
        == 0
    )
    table4 = pd.read_csv(tmp_path / "out" / "table4.csv")
    outdoor_rows = table4[table4["Outdoor Only"].astype(str) == "True"]
    assert list(outdoor_rows["Photos"]) == [4]


def test_geoloc_evaluate_adds_m2_and_m3_rows_from_the_runs_task_modules(tmp_path, capsys):
    """A test set with posting times and users: M2 and M3 (saved by their task modules with their
    configs) answer every photo, with the inputs their configs declare (M2 here takes M1's top 3)."""
    from geoloc_tf.m2.config import M2Config
    from geoloc_tf.m2.model import build_m2
    from geoloc_tf.m2.task import TrainedM2, photo_data
    from geoloc_tf.m3.config import M3Config
    from geoloc_tf.m3.model import build_m3
    from geoloc_tf.m3.task import TrainedM3
    from geoloc_tf.prediction_tables import read_table
    from geoloc_tf.run_layout import REPORT_FILE, RunLayout

    rng = np.random.default_rng(7)
    layout = RunLayout(tmp_path / "run")
    mesh = random_mesh(rng, 3000)
    mesh.save(layout.mesh)
    save_tiny_m1(layout.root, mesh.num_cells)
    m2_config = M2Config(top_k=3, hidden_units=8)
    m2 = TrainedM2(build_m2(mesh.num_cells, m2_config), m2_config)
    m2.save(layout)
    m3_config = M3Config(album_size=4, lstm_units=4)
    TrainedM3(build_m3(mesh.num_cells, m3_config, m2_config), m3_config, m2_config).save(layout)

    images = tmp_path / "images"
    images.mkdir()
    rows = ["IMG_ID,LAT,LON,USER,POSTED_AT"]
    for i in range(6):
        rows.append(
            f"{i}.jpg,{rng.uniform(-50, 50):.5f},{rng.uniform(-160, 160):.5f},u{i % 2},"
            f"{1_400_000_000 + 3600 * i}"
        )
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(images / f"{i}.jpg")
    (tmp_path / "test.csv").write_text("\n".join(rows) + "\n")
    out = RunLayout(tmp_path / "out")
    assert (
        geoloc(
            [
                "evaluate",
                f"--model={layout.root}",
                f"--csv={tmp_path / 'test.csv'}",
                f"--images={images}",
                f"--out={out.root}",
                "--image_path_template={id}",
            ]
        )
        == 0
    )
    m1_table, m1_ids, m1_probs = read_table(out.prediction_table("m1", "external"))
    m2_table, m2_ids, _ = read_table(out.prediction_table("m2", "external"))
    m3_table, _, _ = read_table(out.prediction_table("m3", "external"))
    assert list(m2_table["photo_id"]) == list(m3_table["photo_id"]) == list(m1_table["photo_id"])
    direct = m2.probabilities(photo_data(m1_table, m1_ids, m1_probs, mesh, m2_config))
    np.testing.assert_array_equal(m2_ids[:, 0], direct.argmax(axis=1))
    report = (out.root / REPORT_FILE).read_text()  # the external report is the folder itself
    assert "Time Inputs (M2)" in report and "User Albums Time Inputs (M3)" in report


def test_an_mp16pro_test_set_leaves_out_the_placeholders_as_ingestion_does(tmp_path):
    """MP16-Pro's tar as a test set: a member of 5,120 bytes is a placeholder of a deleted photo,
    named and left out; one of 5,121 bytes is located; one in no archive is named missing."""
    from data_pipelines import archives
    from geoloc_tf.evaluation.external import locate_images
    from tests.data_pipelines.test_format_mp16pro import build_tar, jpeg, padded

    (tmp_path / "mp-16-images00").write_bytes(
        build_tar(
            {
                "mp-16-images/e5_2d_1.jpg": padded(jpeg(), archives.PLACEHOLDER_MAX_BYTES),
                "mp-16-images/e5_2d_2.jpg": padded(jpeg(), archives.PLACEHOLDER_MAX_BYTES + 1),
            }
        )
    )
    table = pd.DataFrame(
        {"photo_id": ["1", "2", "3"], "image_path": ["e5_2d_1.jpg", "e5_2d_2.jpg", "e5_2d_3.jpg"]}
    )
    located, found_in, messages = locate_images(table, "mp16pro", str(tmp_path))
    assert list(located["photo_id"]) == ["2"] and list(located["size"]) == [5121]
    assert len(found_in) == 1
    assert len(messages) == 2
    assert "e5_2d_3.jpg is in none" in messages[0]
    assert "e5_2d_1.jpg is a placeholder" in messages[1]
