"""--evaluate_knn_k: the evaluate stage adds the "M1 kNN" row from the stored M1 features."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from experiments.config import SECTIONS
from geoloc_tf.run_layout import RunLayout
from mesh.settings import SettingError
from tests.conftest import random_mesh

PARIS, SYDNEY = (48.85, 2.35), (-33.87, 151.21)


def test_knn_without_stored_features_is_refused_when_flags_are_parsed(run_config):
    with pytest.raises(SettingError, match="predict_store_features"):
        run_config(evaluate=SECTIONS["evaluate"](knn_k=5))
    config = run_config(
        evaluate=SECTIONS["evaluate"](knn_k=5), predict=SECTIONS["predict"](store_features=True)
    )
    assert config.evaluate.knn_k == 5


def store_m1_predictions(layout, split, mesh, lat, lon, features, prefix):
    """What the predict stage writes with --predict_store_features: M1's table and the split's
    feature index."""
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
    cells = np.maximum(mesh.locate(lat, lon), 0)
    prediction_tables.write_table(
        prediction_tables.table_from_top_k(meta, cells[:, None], np.ones((n, 1))),
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
