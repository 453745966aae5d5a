"""Query by example (appendix B): exact search, the on-disk index, `geoloc index` / `geoloc search`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from geoloc_tf.errors import RetrievalError
from geoloc_tf.retrieval import feature_index, search
from geoloc_tf.retrieval.feature_index import FeatureIndex, read_features
from geoloc_tf.retrieval.search import nearest
from tests.geoloc_tf.conftest import save_tiny_m1


def brute_force(index: np.ndarray, queries: np.ndarray, k: int):
    d = np.sqrt(((queries[:, None, :].astype(np.float64) - index[None].astype(np.float64)) ** 2).sum(-1))
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


def test_distances_a_person_can_check():
    index = np.array([[0, 0], [3, 4], [6, 8], [-3, -4]], np.float32)
    rows, distances = nearest(index, np.array([[0, 0], [6, 8]], np.float32), k=3, block_rows=3)
    assert rows.tolist() == [[0, 1, 3], [2, 1, 0]]  # 5 and 5 tie: index order
    assert distances.tolist() == [[0, 5, 5], [0, 5, 10]]


@pytest.mark.parametrize("block_rows,k", [(10, 25), (7, 3), (1000, 8), (1, 1)])
def test_exact_against_brute_force(block_rows, k):
    rng = np.random.default_rng(block_rows)
    index = rng.standard_normal((103, 16)).astype(np.float32)  # 103: not a multiple of any block
    queries = np.concatenate([index[[5, 50, 102]], rng.standard_normal((9, 16)).astype(np.float32)])
    rows, distances = nearest(index, queries, k, block_rows=block_rows, query_rows=4)
    expected_rows, expected = brute_force(index, queries, k)
    assert rows.dtype == np.int64 and distances.dtype == np.float32 and rows.shape == (12, k)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(distances, expected, rtol=1e-6)
    assert rows[:3, 0].tolist() == [5, 50, 102] and (distances[:3, 0] == 0).all()  # itself, 0


def test_ties_come_back_in_index_order_whatever_the_blocks():
    index = np.zeros((9, 4), np.float32)
    index[[1, 4, 7]] = 1.0  # three identical rows
    for block_rows in (1, 2, 4, 9):
        rows, distances = nearest(index, np.ones((1, 4), np.float32), k=4, block_rows=block_rows)
        assert rows.tolist() == [[1, 4, 7, 0]] and distances.tolist() == [[0, 0, 0, 2]]


def test_k_above_n_memory_map_and_bad_input(tmp_path):
    index = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.save(tmp_path / "f.npy", index)
    mapped = np.load(tmp_path / "f.npy", mmap_mode="r")
    rows, distances = nearest(mapped, index[:1], k=50, index_sq_norms=search.squared_norms(index))
    assert rows.tolist() == [[0, 1, 2, 3, 4, 5]]  # k > n: all n rows
    assert distances[0, 1] == pytest.approx(np.sqrt(8))
    with pytest.raises(RetrievalError, match=r"same d"):
        nearest(index, np.zeros((1, 3), np.float32), 2)


def test_index_write_open_round_trip(tmp_path):
    features = np.array([[3, 4], [0, 1], [1, 1]], np.float32)
    out = tmp_path / "index"
    written = FeatureIndex.write(
        out, features, ["a", "b", "c"], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0], meta={"split": "m1_train"}
    )
    again = FeatureIndex.open(out)
    assert isinstance(again.features, np.memmap) and len(again) == 3 and again.dim == 2
    np.testing.assert_array_equal(again.features, features)
    assert again.sq_norms.tolist() == [25.0, 1.0, 2.0]
    assert again.photos["photo_id"].tolist() == ["a", "b", "c"]
    assert again.photos["lon"].tolist() == [4.0, 5.0, 6.0]
    assert again.meta["split"] == "m1_train" and again.meta["count"] == 3
    assert written.search(np.array([[3, 4]], np.float32), 1)[0].tolist() == [[0]]
    FeatureIndex.write(out, features[:2], ["a", "b"], [1, 2], [4, 5])  # replaces the old index
    assert len(FeatureIndex.open(out)) == 2
    assert sorted(os.listdir(tmp_path)) == ["index"]  # no temporary directory left behind
    with pytest.raises(RetrievalError, match="2 photo ids/locations for 3 feature rows"):
        FeatureIndex.write(tmp_path / "bad", features, ["a", "b"], [1, 2], [3, 4])
    with pytest.raises(RetrievalError, match="no index.json"):
        FeatureIndex.open(tmp_path)


def test_read_features_from_a_list_column(tmp_path):
    pd.DataFrame({"features": [np.array([1, 2], np.float32), np.array([3, 4], np.float32)]}).to_parquet(
        tmp_path / "t.parquet"
    )
    assert read_features(tmp_path / "t.parquet").tolist() == [[1, 2], [3, 4]]
    pd.DataFrame({"features": [[1.0], [1.0, 2.0]]}).to_parquet(tmp_path / "ragged.parquet")
    with pytest.raises(RetrievalError, match="same feature width"):
        read_features(tmp_path / "ragged.parquet")


@pytest.fixture(scope="module")
def tiny_run(tiny_world, tmp_path_factory) -> Path:
    """A run directory: the tiny world's data and mesh and an untrained tiny M1."""
    from mesh import Mesh

    run = tmp_path_factory.mktemp("retrieval_run")
    mesh = Mesh.load(tiny_world.mesh_path)
    (run / "mesh").mkdir()
    mesh.save(run / "mesh" / "mesh.npz")
    (run / "data").symlink_to(tiny_world.data_root)
    save_tiny_m1(run, mesh.num_cells)
    return run


def test_index_build_resumes_after_a_kill(tiny_run, monkeypatch):
    from data_pipelines.dataset import load
    from geoloc_tf.m1 import predict_records as predict

    lengths = load(str(tiny_run / "data")).shard_lengths("m1_train")
    assert len(lengths) > 2
    out = tiny_run / "index" / "resume"

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(feature_index, "assemble_index", killed)  # dies after every shard is done
    with pytest.raises(KeyboardInterrupt):
        feature_index.build_index(tiny_run, out_dir=out)
    parts = sorted((out.parent / ".resume.build" / "parts").glob("*.parquet"))
    assert len(parts) == len(lengths) and not out.exists()
    parts[1].unlink()  # as if killed during shard 1
    monkeypatch.undo()
    calls = []
    real = predict._predict_shard
    monkeypatch.setattr(predict, "_predict_shard", lambda *a: calls.append(a[3]) or real(*a))
    index = feature_index.build_index(tiny_run, out_dir=out)
    assert calls == [1]  # only the unfinished shard was redone
    assert len(index) == sum(lengths) and not (out.parent / ".resume.build").exists()
    assert index.photos["offset"].tolist()[: lengths[0]] == list(range(lengths[0]))


def test_geoloc_index_and_search_find_a_photo_itself(tiny_run, tmp_path, capsys):
    from experiments import cli
    from geoloc_tf.retrieval.sheet import record_images

    assert cli.main(["index", f"--model={tiny_run}", "--batch_size=16"]) == 0
    assert "photos x" in capsys.readouterr().out
    index = FeatureIndex.open(tiny_run / "index" / "m1_train")
    # The tiny random network gives some photos identical (e.g. all-zero) features, which tie at
    # distance 0; query a photo whose features are its own: the nearest other row is > 1e-3 away.
    features = np.asarray(index.features)
    own = np.flatnonzero(brute_force(features, features, 2)[1][:, 1] > 1e-3)
    assert len(own) > len(index) // 2
    row = int(own[len(own) // 2])
    photo = index.photos.iloc[row]
    # The very pixels M1 indexed: the record's JPEG decoded as the input pipeline decodes it
    # (TensorFlow's fast integer IDCT), stored losslessly; the image decoder reads them unchanged
    # (a JPEG query would differ by about one grey level: libjpeg's accurate IDCT).
    pixels = tf.io.decode_jpeg(record_images(index, [row])[0], channels=3)
    query = tmp_path / "query.png"
    query.write_bytes(tf.io.encode_png(pixels).numpy())
    sheet = tmp_path / "sheet.png"
    assert (
        cli.main(
            [
                "search",
                str(query),
                f"--index={index.root}",
                "--k=4",
                "--format=json",
                f"--lat={photo['lat']}",
                f"--lon={photo['lon']}",
                f"--sheet={sheet}",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    first = result["neighbours"][0]
    assert first["photo_id"] == photo["photo_id"] and first["distance"] < 1e-3
    assert first["km_from_query"] == pytest.approx(0.0, abs=1e-6)
    assert [n["rank"] for n in result["neighbours"]] == [1, 2, 3, 4]
    distances = [n["distance"] for n in result["neighbours"]]
    assert distances == sorted(distances)
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["search", str(query), f"--index={index.root}", "--k=2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["rank", "photo_id", "L2"] and photo["photo_id"] in table[1]
