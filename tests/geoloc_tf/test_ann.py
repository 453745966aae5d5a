"""The FAISS engine of a feature index (geoloc_tf.retrieval.ann): recall against the exact search,
the cached index file, the kNN row with it, and what happens without FAISS."""

from __future__ import annotations

import builtins
import json
import logging

import numpy as np
import pandas as pd
import pytest

from geoloc_tf import prediction_tables
from geoloc_tf.errors import RetrievalError
from geoloc_tf.retrieval import ann
from geoloc_tf.retrieval.config import AnnConfig, IndexConfig
from geoloc_tf.retrieval.feature_index import FeatureIndex, prepare_engine
from geoloc_tf.retrieval.knn import KNN_MODEL, write_knn_predictions
from geoloc_tf.run_layout import RunLayout
from mesh.settings import SettingError

pytest.importorskip("faiss")

DIM = 64
#: Small enough for 3,000 photos: 32 cells of ~94 photos, 8 of them scanned per query.
SMALL = AnnConfig(ann_lists=32, ann_code_bytes=16, ann_train_photos=2000, ann_probes=8, ann_rerank_factor=5)


def clustered(n: int, seed: int, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative features around ``centres`` (one per place): (features [n, DIM], place [n])."""
    rng = np.random.default_rng(seed)
    place = rng.integers(0, len(centres), n)
    features = np.maximum(centres[place] + rng.normal(0, 0.3, (n, DIM)), 0).astype(np.float32)
    return features, place


def centres(places: int = 30) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 2, (places, DIM))


def write_index(path, features, lat=None, lon=None, ids=None) -> FeatureIndex:
    n = len(features)
    lat = np.zeros(n) if lat is None else lat
    lon = np.zeros(n) if lon is None else lon
    ids = [f"p{i}" for i in range(n)] if ids is None else ids
    return FeatureIndex.write(path, features, ids, lat, lon)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true k nearest found among the k returned, over all queries."""
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def test_faiss_finds_most_of_the_exact_ten_nearest(tmp_path):
    gallery, _ = clustered(3000, 1, centres())
    queries, _ = clustered(200, 2, centres())  # same places, other photos
    index = write_index(tmp_path / "i", gallery)
    truth, truth_d = index.search(queries, 10, "exact")
    found, found_d = index.search(queries, 10, "faiss", SMALL)
    # 8 of 32 cells scanned, 50 code-ranked candidates re-ranked exactly: most true neighbours
    # are in the query's own place's cells; 0.9 is a bound the default settings clear easily.
    assert recall_at(found, truth) >= 0.9
    # Distances are exact: a neighbour found by both engines has the same distance.
    same = found[:, 0] == truth[:, 0]
    assert same.mean() >= 0.9
    np.testing.assert_allclose(found_d[same, 0], truth_d[same, 0], rtol=1e-6)
    # A photo of the gallery queried with its own features is its own nearest, at distance 0.
    rows, distances = index.search(gallery[:20], 1, "faiss", SMALL)
    assert rows[:, 0].tolist() == list(range(20)) and not distances.any()


def test_the_index_file_is_reused_and_rebuilt_when_settings_or_features_change(tmp_path, monkeypatch):
    gallery, _ = clustered(2000, 1, centres())
    write_index(tmp_path / "i", gallery)
    builds = []
    real_build = ann.build
    monkeypatch.setattr(
        ann, "build", lambda index, config: builds.append(config) or real_build(index, config)
    )

    FeatureIndex.open(tmp_path / "i").search(gallery[:5], 3, "faiss", SMALL)
    meta = json.loads((tmp_path / "i" / ann.ANN_DIR / ann.ANN_META).read_text())
    # 16 code bytes: 16 sub-vectors of 4 values, 8 bits each; 8 more bytes for the photo's id.
    assert (meta["factory"], meta["resident_bytes_per_photo"]) == ("IVF32,PQ16np", 24)
    assert len(builds) == 1
    # Another process opening the folder reads the file; search-time settings do not rebuild it.
    FeatureIndex.open(tmp_path / "i").search(
        gallery[:5], 3, "faiss", AnnConfig(**{**vars(SMALL), "ann_probes": 2})
    )
    assert len(builds) == 1
    # A build setting does.
    FeatureIndex.open(tmp_path / "i").search(
        gallery[:5], 3, "faiss", AnnConfig(**{**vars(SMALL), "ann_lists": 16})
    )
    assert len(builds) == 2
    assert json.loads((tmp_path / "i" / ann.ANN_DIR / ann.ANN_META).read_text())["lists"] == 16
    # New features in the folder (an index rewritten in place) do too.
    write_index(tmp_path / "i", gallery[::-1].copy())
    rows, _ = FeatureIndex.open(tmp_path / "i").search(
        gallery[:1], 1, "faiss", AnnConfig(**{**vars(SMALL), "ann_lists": 16})
    )
    assert len(builds) == 3 and rows[0, 0] == 1999


def test_geoloc_index_builds_the_faiss_index_only_when_the_engine_says_so(tmp_path):
    gallery, _ = clustered(500, 1, centres())
    index = write_index(tmp_path / "i", gallery)
    prepare_engine(index, IndexConfig(engine="auto"))  # 500 photos: exact, nothing to build
    assert not (tmp_path / "i" / ann.ANN_DIR).exists()
    prepare_engine(index, IndexConfig(engine="faiss", ann=SMALL))
    assert (tmp_path / "i" / ann.ANN_DIR / ann.ANN_FILE).is_file()


def test_auto_is_exact_below_the_measured_size_and_faiss_above():
    assert ann.resolve_engine("auto", ann.AUTO_MIN_PHOTOS - 1) == "exact"
    assert ann.resolve_engine("auto", ann.AUTO_MIN_PHOTOS) == "faiss"
    assert ann.resolve_engine("exact", 10**9) == "exact"


def test_the_plan_fits_the_photos_and_the_feature_width():
    # 1 M photos: 4 sqrt(n) = 4000 -> 4096 cells, but 65,536 training photos / 39 per cell allow
    # 1680: the power of two below, 1024; 96 sub-vectors of 16 values, 8 bits each (96 bytes).
    shape = {"lists": 1024, "subvectors": 96, "bits": 8, "train_photos": 65536}
    assert ann.plan(1_000_000, 1536, AnnConfig()) == shape
    assert ann.factory(shape) == "IVF1024,PQ96np"
    assert ann.plan(1_000_000, 1536, AnnConfig(ann_train_photos=200_000))["lists"] == 4096
    # 4 bits: twice the sub-vectors in the same 96 bytes, scanned with SIMD.
    fast = ann.plan(1_000_000, 1536, AnnConfig(ann_code_bits=4))
    assert ann.factory(fast) == "IVF1024,PQ192x4fs"
    # 100 photos of width 384 (the demo's M1): 100 // 39 = 2 cells.
    assert ann.plan(100, 384, AnnConfig()) == {"lists": 2, "subvectors": 96, "bits": 8, "train_photos": 100}
    # Width 100: the largest divisor of 100 not above 96 is 50; width 1000 -> 50 too (1000 / 20).
    assert ann.plan(5000, 100, AnnConfig())["subvectors"] == 50
    assert ann.plan(5000, 1000, AnnConfig())["subvectors"] == 50


def missing_faiss(monkeypatch):
    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name == "faiss" or name.startswith("faiss."):
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)


def test_without_faiss_the_engine_names_the_extra_and_auto_warns(tmp_path, monkeypatch, caplog):
    gallery, _ = clustered(300, 1, centres())
    index = write_index(tmp_path / "i", gallery)
    missing_faiss(monkeypatch)
    with pytest.raises(RetrievalError, match=r"needs the `ann` extra \(pip install 'geoloc\[ann\]'"):
        index.search(gallery[:2], 3, "faiss")
    with caplog.at_level(logging.WARNING):
        assert ann.resolve_engine("auto", ann.AUTO_MIN_PHOTOS) == "exact"
    assert "`ann` extra" in caplog.text and "searching exactly" in caplog.text
    assert index.search(gallery[:2], 3, "auto")[0][:, 0].tolist() == [0, 1]  # small: exact, silent


def test_bad_engine_and_ann_settings_are_refused():
    with pytest.raises(SettingError, match="engine"):
        IndexConfig(engine="scann")
    with pytest.raises(SettingError, match="ann_probes"):
        AnnConfig(ann_probes=0)
    with pytest.raises(SettingError, match="ann_train_photos"):
        AnnConfig(ann_train_photos=10)


def test_geoloc_search_and_index_refuse_a_bad_engine(capsys):
    from experiments.cli import main as geoloc

    assert geoloc(["search", "q.jpg", "--index=i", "--engine=scann"]) != 0
    assert "--engine" in capsys.readouterr().err
    assert geoloc(["index", "--model=m", "--ann_rerank_factor=0"]) != 0
    assert "--ann_rerank_factor=0" in capsys.readouterr().err


def test_knn_row_with_faiss_matches_the_exact_one_on_a_small_run(tmp_path):
    """3,000 training photos in 30 places (one location each), 300 validation photos: the kNN
    estimate with FAISS neighbours equals the exact one for nearly every photo."""
    layout = RunLayout(tmp_path)
    rng = np.random.default_rng(5)
    place_lat, place_lon = rng.uniform(-60, 60, 30), rng.uniform(-180, 180, 30)

    def store(split, n, seed, prefix):
        features, place = clustered(n, seed, centres())
        meta = pd.DataFrame(
            {
                "photo_id": [f"{prefix}{i}" for i in range(n)],
                "user_hash": "u",
                "posted_at": np.zeros(n, np.int64),
                "lat": place_lat[place],
                "lon": place_lon[place],
                "outdoor_prob": np.full(n, -1.0, np.float32),
            }
        )
        prediction_tables.write_table(
            prediction_tables.table_from_top_k(meta, np.zeros((n, 1)), np.ones((n, 1))),
            layout.prediction_table("m1", split),
        )
        write_index(layout.index_dir(split), features, meta["lat"], meta["lon"], meta["photo_id"])

    store("m1_train", 3000, 1, "t")
    store("m23_val", 300, 2, "v")

    def estimate(engine):
        path = write_knn_predictions(layout, "m23_val", k=10, bandwidth_km=100.0, engine=engine)
        return pd.read_parquet(path)[["pred_lat", "pred_lon"]].to_numpy()

    exact = estimate("exact")
    approximate = estimate("faiss")  # default settings, built in m1_train's folder on first use
    assert (layout.index_dir("m1_train") / ann.ANN_DIR / ann.ANN_FILE).is_file()
    assert layout.prediction_table(KNN_MODEL, "m23_val").is_file()
    assert np.mean(np.all(exact == approximate, axis=1)) >= 0.98


def test_small_cells_are_scanned_until_enough_photos_are():
    # ann_probes cells where cells are large; more where a cell holds few photos; never more than all.
    config = AnnConfig(ann_probes=8, ann_min_scan=1000)
    assert ann.probes(config, photos=1_000_000, lists=1024) == 8  # 977 a cell: 8 scan 7,800
    assert ann.probes(config, photos=16_888, lists=256) == 16  # 66 a cell: 16 scan 1,055
    assert ann.probes(config, photos=500, lists=32) == 32  # all cells hold 500 < 1,000
    assert ann.probes(AnnConfig(ann_probes=8, ann_min_scan=0), photos=500, lists=32) == 8
