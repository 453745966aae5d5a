"""M2 -> M3 -> averaging -> report, from synthetic M1 prediction tables on a real mesh: the glue
the runner's m2, m3 and evaluate stages call."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from data_pipelines.splits import M23_TRAIN, M23_VAL
from experiments.cli import main as geoloc
from geoloc_tf import prediction_tables
from geoloc_tf.run_layout import RunLayout, prediction_table_path


def synthetic_m1_tables(mesh, predictions_dir, seed=0, users=30, photos_per_user=12):
    """Users living in one random kept cell each; 'M1' puts 60 % of its mass on the true cell half
    the time and on a random cell otherwise."""
    rng = np.random.default_rng(seed)
    centroids = mesh.imagery_centroids
    for split_seed, split in enumerate((M23_TRAIN, M23_VAL)):
        rows = []
        for u in range(users):
            home = rng.integers(mesh.num_cells)
            for p in range(photos_per_user):
                lat, lon = centroids[home] + rng.normal(0, 0.01, 2)
                rows.append(
                    (
                        f"{split}-{u}-{p}",
                        f"user{split_seed}-{u}",
                        1_300_000_000 + 3600 * p,
                        lat,
                        lon,
                        rng.uniform(),
                    )
                )
        table = pd.DataFrame(rows, columns=list(prediction_tables.METADATA_COLUMNS))
        truth = mesh.locate(table["lat"].to_numpy(), table["lon"].to_numpy())
        k = 10
        ids = np.stack([rng.permutation(mesh.num_cells)[:k] for _ in range(len(table))])
        right = rng.uniform(size=len(table)) < 0.5
        ids[right, 0] = truth[right]
        probs = np.sort(rng.dirichlet(np.ones(k), size=len(table)), axis=1)[:, ::-1] * 0.4
        probs[:, 0] += 0.6
        prediction_tables.write_table(
            prediction_tables.table_from_top_k(table, ids, probs),
            prediction_table_path(predictions_dir, "m1", split),
        )


@pytest.fixture(scope="module")
def tiny_mesh(tmp_path_factory):
    from mesh import build_mesh

    rng = np.random.default_rng(3)
    lat, lon = rng.uniform(-60, 70, 4000), rng.uniform(-180, 180, 4000)
    mesh = build_mesh(lat, lon, refinement_limit=400, min_examples=50, init_grid=6)
    assert mesh.num_cells >= 5
    return mesh


def test_m2_m3_averaging_and_report_from_prediction_tables(tiny_mesh, tmp_path):
    from geoloc_tf.averaging import write_averaging_predictions
    from geoloc_tf.evaluation.report import evaluate_run
    from geoloc_tf.m2 import task as m2_task
    from geoloc_tf.m2.config import M2Config
    from geoloc_tf.m3 import task as m3_task
    from geoloc_tf.m3.config import M3Config

    run_dir = tmp_path / "run"
    layout = RunLayout(run_dir)
    predictions = layout.predictions_dir
    synthetic_m1_tables(tiny_mesh, predictions)
    tiny_mesh.save(layout.mesh)
    m2 = M2Config(hidden_units=16, boosting_rounds=1, max_epochs=3, early_stopping_patience=2, batch_size=64)
    artifacts = m2_task.run(layout, tiny_mesh, m2, seed=0, top_k=5)
    assert artifacts["model"] == str(layout.m2_model) and layout.m2_model.exists()
    assert m2_task.TrainedM2.load(layout).config == m2  # saved with the config it was built from
    m3 = M3Config(lstm_units=8, max_epochs=2, batch_size=8)
    m3_task.run(layout, tiny_mesh, m3, m2, seed=0, top_k=5)
    loaded = m3_task.TrainedM3.load(layout)
    assert (loaded.config, loaded.m2) == (m3, m2)
    averaging = write_averaging_predictions(predictions, M23_VAL)

    m1_table, _, _ = prediction_tables.read_table(prediction_table_path(predictions, "m1", M23_VAL))
    for model in ("m2", "m3", "user_averaging", "album_averaging"):
        table, ids, probs = prediction_tables.read_table(prediction_table_path(predictions, model, M23_VAL))
        assert list(table["photo_id"]) == list(m1_table["photo_id"]), model  # every photo once, same order
        assert ids.shape[1] == (1 if "averaging" in model else 5)
        assert ((ids >= 0) & (ids < tiny_mesh.num_cells)).all()
        assert np.all(np.diff(probs, axis=1) <= 1e-6)  # best first
    # user averaging: a user's photos all get the same cell (users stay in one cell here)
    user_table, user_ids, _ = prediction_tables.read_table(averaging["user_averaging"])
    per_user = pd.Series(user_ids[:, 0]).groupby(user_table["user_hash"].to_numpy()).nunique()
    assert (per_user == 1).all()

    written = evaluate_run(
        run_dir, mesh_path=run_dir / "mesh" / "mesh.npz", out_dir=run_dir / "eval", simulated=True
    )
    report = (run_dir / "eval" / "report.md").read_text()
    assert "SIMULATED" in report.upper()
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    text = json.dumps(results)
    for label in ("Inception (M1)", "Time Inputs (M2)", "User Averaging", "Album Averaging"):
        assert label in text, label
    assert any("m3" in json.dumps(w).lower() for w in results["wilcoxon"]), results["wilcoxon"]
    assert written


def test_m2_and_m3_savedmodels_answer_like_the_models(tiny_mesh, tmp_path):
    import tensorflow as tf

    from geoloc_tf.m2.config import M2Config
    from geoloc_tf.m2.data import M2Data
    from geoloc_tf.m2.model import build_m2
    from geoloc_tf.m2.task import TrainedM2
    from geoloc_tf.m3.config import M3Config
    from geoloc_tf.m3.model import build_m3
    from geoloc_tf.m3.task import TrainedM3
    from geoloc_tf.time_features import time_features

    rng = np.random.default_rng(1)
    n, k, cells = 6, 10, tiny_mesh.num_cells
    ids = np.stack([rng.permutation(cells)[:k] for _ in range(n)]).astype(np.int32)
    probs = np.sort(rng.dirichlet(np.ones(k), n), axis=1)[:, ::-1].astype(np.float32)
    posted = rng.integers(1_200_000_000, 1_500_000_000, n).astype(np.int64)
    m2 = build_m2(cells, M2Config(hidden_units=8))
    exported = tf.saved_model.load(
        TrainedM2(m2, M2Config(hidden_units=8)).export(tiny_mesh.imagery_centroids, tmp_path / "m2", top_k=3)
    )
    out = exported.serve(ids, probs, posted)
    direct = m2.predict_on_batch(M2Data(ids.astype(np.int64), probs, posted).model_inputs())
    np.testing.assert_array_equal(out["cell_ids"].numpy()[:, 0], direct.argmax(axis=1))
    np.testing.assert_allclose(out["lat"].numpy(), tiny_mesh.imagery_centroids[direct.argmax(axis=1), 0])

    m3_config = M3Config(lstm_units=4)
    m3 = build_m3(cells, m3_config, M2Config(hidden_units=8))
    album = lambda a: np.zeros((1, 24) + a.shape[1:], a.dtype)  # noqa: E731
    a_ids, a_probs, a_posted = album(ids), album(probs), album(posted)
    a_ids[0, :n], a_probs[0, :n], a_posted[0, :n] = ids, probs, posted
    mask = np.zeros((1, 24), bool)
    mask[0, :n] = True
    exported3 = tf.saved_model.load(
        TrainedM3(m3, m3_config, M2Config(hidden_units=8)).export(
            tiny_mesh.imagery_centroids, tmp_path / "m3", top_k=3
        )
    )
    out3 = exported3.serve(a_ids, a_probs, a_posted, mask)
    direct3 = m3.predict_on_batch(
        {"cell_ids": a_ids, "cell_probs": a_probs, "time": time_features(a_posted), "mask": mask}
    )
    np.testing.assert_array_equal(out3["cell_ids"].numpy()[0, :n, 0], direct3[0, :n].argmax(axis=1))


def test_geoloc_compare_puts_two_runs_side_by_side(tiny_mesh, tmp_path, capsys):
    from geoloc_tf.evaluation.report import ReportConfig, evaluate_run

    for name, seed in (("runA", 0), ("runB", 1)):
        run_dir = tmp_path / name
        synthetic_m1_tables(tiny_mesh, run_dir / "predictions", seed=seed)
        tiny_mesh.save(run_dir / "mesh" / "mesh.npz")
        evaluate_run(run_dir, mesh_path=run_dir / "mesh" / "mesh.npz", config=ReportConfig(plots=False))
    assert (
        geoloc(["compare", str(tmp_path / "runA"), str(tmp_path / "runB"), f"--out={tmp_path / 'cmp'}"]) == 0
    )
    out = capsys.readouterr().out
    assert "runA" in out and "runB" in out and "Inception (M1)" in out
    assert (tmp_path / "cmp" / "compare.csv").exists()
    assert geoloc(["compare", str(tmp_path / "nothing-here")]) == 2
    assert "no results.json" in capsys.readouterr().err
