"""--evaluate_knn_k and --evaluate_cell_retrieval_cells: the evaluate stage adds the "M1 kNN" and
"M1 Cell Retrieval" rows from the stored M1 features."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from experiments.config import SECTIONS
from geoloc_tf.run_layout import RunLayout
from mesh.settings import SettingError
from tests.conftest import random_mesh

PARIS, SYDNEY = (48.85, 2.35), (-33.87, 151.21)


def test_cell_retrieval_needs_stored_features_and_at_most_the_stored_cells(run_config):
    retrieval = SECTIONS["evaluate"]().cell_retrieval
    three = SECTIONS["evaluate"](cell_retrieval=dataclasses.replace(retrieval, cell_retrieval_cells=3))
    with pytest.raises(SettingError, match="predict_store_features"):
        run_config(evaluate=three)
    with pytest.raises(SettingError, match="exceeds.*predict_top_k"):
        run_config(evaluate=three, predict=SECTIONS["predict"](store_features=True, top_k=2))
    config = run_config(evaluate=three, predict=SECTIONS["predict"](store_features=True))
    assert config.evaluate.cell_retrieval.cell_retrieval_cells == 3


def test_knn_without_stored_features_is_refused_when_flags_are_parsed(run_config):
    with pytest.raises(SettingError, match="predict_store_features"):
        run_config(evaluate=SECTIONS["evaluate"](knn_k=5))
    config = run_config(
        evaluate=SECTIONS["evaluate"](knn_k=5), predict=SECTIONS["predict"](store_features=True)
    )
    assert config.evaluate.knn_k == 5


def store_m1_predictions(layout, split, mesh, lat, lon, features, prefix, top_ids=None, top_probs=None):
    """What the predict stage writes with --predict_store_features: M1's table (top cells: each
    photo's own cell at probability 1, or ``top_ids``/``top_probs``) and the split's feature index."""
    from geoloc_tf import prediction_tables
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    n = len(lat)
    meta = pd.DataFrame(
        {
            "photo_id": [f"{prefix}{i}" for i in range(n)],
            "user_hash": [f"u{i % 3}" for i in range(n)],
            "posted_at": np.arange(n, dtype=np.int64) * 3600,
            "lat": lat,
            "lon": lon,
            "outdoor_prob": np.full(n, 0.9, np.float32),
        }
    )
    if top_ids is None:
        top_ids, top_probs = np.maximum(mesh.locate(lat, lon), 0)[:, None], np.ones((n, 1))
    prediction_tables.write_table(
        prediction_tables.table_from_top_k(meta, top_ids, top_probs),
        layout.prediction_table("m1", split),
    )
    FeatureIndex.write(layout.index_dir(split), np.asarray(features, np.float32), meta["photo_id"], lat, lon)


def test_evaluate_stage_adds_and_removes_the_knn_row(tmp_path, run_config):
    from experiments.stages.evaluate_stage import run as run_evaluate

    layout = RunLayout(tmp_path)
    rng = np.random.default_rng(0)
    mesh = random_mesh(rng, 3000)
    mesh.save(layout.mesh)
    # Training photos: features (1, 0) in Paris, (0, 1) in Sydney; validation photos: one of each
    # kind, so kNN puts them exactly in Paris and Sydney.
    train_lat = np.array([PARIS[0]] * 4 + [SYDNEY[0]] * 4)
    train_lon = np.array([PARIS[1]] * 4 + [SYDNEY[1]] * 4)
    train_features = np.repeat([[1.0, 0.0], [0.0, 1.0]], 4, axis=0)
    store_m1_predictions(layout, "m1_train", mesh, train_lat, train_lon, train_features, "t")
    store_m1_predictions(
        layout,
        "m23_val",
        mesh,
        np.array([48.0, -34.0]),
        np.array([2.0, 151.0]),
        [[0.9, 0.1], [0.2, 0.8]],
        "v",
    )

    config = run_config(
        predict=SECTIONS["predict"](store_features=True),
        evaluate=SECTIONS["evaluate"](knn_k=3, knn_bandwidth_km=50.0),
    )
    run_evaluate(config, tmp_path)
    knn = pd.read_parquet(layout.prediction_table("m1_knn", "m23_val"))
    assert list(zip(knn["pred_lat"], knn["pred_lon"])) == [PARIS, SYDNEY]
    table6 = pd.read_csv(layout.eval_dir / "table6.csv")
    knn_row = table6[table6["Model"].str.endswith("M1 kNN") & ~table6["Outdoor Only"]]
    assert knn_row["Photos"].tolist() == [2]
    assert "M1 kNN" in layout.eval_report.read_text()

    run_evaluate(dataclasses.replace(config, evaluate=SECTIONS["evaluate"](knn_k=0)), tmp_path)
    assert not layout.prediction_table("m1_knn", "m23_val").exists()
    assert "M1 kNN" not in layout.eval_report.read_text()


def test_evaluate_stage_adds_and_removes_the_cell_retrieval_row(tmp_path, run_config):
    """Training photos: three in Paris, two in Sydney, in the two cells holding those cities.
    Validation photo v0 looks like the Sydney photos, but M1 puts it in Paris (90 %): it gets the
    Paris photo most similar to it (t1, cosine 0.65 against t0's 0.24), which is among its three
    nearest (s1, s0, t1). Validation photo v1 looks like Paris, but M1 says Sydney: its three
    nearest are the Paris photos, none in Sydney's cell, so it falls back to Sydney's cell's
    label point, and that is counted."""
    from experiments.stages.evaluate_stage import run as run_evaluate

    layout = RunLayout(tmp_path)
    mesh = random_mesh(np.random.default_rng(0), 3000)
    mesh.save(layout.mesh)
    paris, sydney = (int(c) for c in mesh.locate([PARIS[0], SYDNEY[0]], [PARIS[1], SYDNEY[1]]))
    assert paris >= 0 and sydney >= 0 and paris != sydney
    train_lat = np.array([PARIS[0], PARIS[0] + 0.1, PARIS[0] - 0.1, SYDNEY[0], SYDNEY[0] + 0.1])
    train_lon = np.array([PARIS[1]] * 3 + [SYDNEY[1]] * 2)
    assert (mesh.locate(train_lat, train_lon) == [paris] * 3 + [sydney] * 2).all()
    train_features = [[1.0, 0.0], [1.0, 0.5], [1.0, 0.2], [0.0, 1.0], [0.1, 1.0]]
    store_m1_predictions(layout, "m1_train", mesh, train_lat, train_lon, train_features, "t")
    store_m1_predictions(
        layout,
        "m23_val",
        mesh,
        np.array([48.0, -34.0]),
        np.array([2.0, 151.0]),
        [[0.2, 0.8], [1.0, 0.05]],
        "v",
        top_ids=np.array([[paris, sydney], [sydney, paris]]),
        top_probs=np.array([[0.9, 0.1], [0.7, 0.3]]),
    )
    evaluate = SECTIONS["evaluate"]()
    retrieval = dataclasses.replace(
        evaluate.cell_retrieval, cell_retrieval_cells=1, cell_retrieval_neighbours=3
    )
    config = run_config(
        predict=SECTIONS["predict"](store_features=True),
        evaluate=dataclasses.replace(evaluate, cell_retrieval=retrieval, bootstrap_samples=20),
    )
    run_evaluate(config, tmp_path)

    table = pd.read_parquet(layout.prediction_table("m1_cell_retrieval", "m23_val"))
    label = mesh.imagery_centroids[sydney]
    assert list(zip(table["pred_lat"], table["pred_lon"])) == [
        (PARIS[0] + 0.1, PARIS[1]),
        (label[0], label[1]),
    ]
    assert table["retrieval_fallback"].tolist() == [False, True]
    assert table["retrieval_photo_id"].tolist() == ["t1", ""]
    assert table["retrieval_similarity"][0] == pytest.approx(0.6 / np.sqrt(0.68 * 1.25), abs=1e-6)
    table6 = pd.read_csv(layout.eval_dir / "table6.csv")
    row = table6[table6["Model"].str.endswith("M1 Cell Retrieval") & ~table6["Outdoor Only"]]
    assert row["Photos"].tolist() == [2]
    results = json.loads(layout.eval_results.read_text())
    pairs = [(d["a"]["model"], d["b"]["model"]) for d in results["differences"] if d["kind"] == "models"]
    assert ("m1", "m1_cell_retrieval") in pairs
    assert results["models"]["m1_cell_retrieval"]["num_fallback"] == 1  # v1, counted
    assert results["models"]["m1"]["num_fallback"] is None  # a cell table has no fallback
    report = layout.eval_report.read_text()
    assert "M1 Cell Retrieval: 1 of 2 photos (50.0%) had no retrieved photo in the top cells" in report

    run_evaluate(dataclasses.replace(config, evaluate=evaluate), tmp_path)
    assert not layout.prediction_table("m1_cell_retrieval", "m23_val").exists()
    assert "M1 Cell Retrieval" not in layout.eval_report.read_text()
