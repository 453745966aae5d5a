"""M1's prediction in record shards: a kill loses at most the shard in progress, workers split the
shards and the chief joins them (also with two real MultiWorkerMirroredStrategy workers on this
host), the join appends one part at a time, and MirroredStrategy over 2 logical CPUs predicts what
one device does, every replica given the same number of photos, never none, also where a shard
ends in a batch of fewer photos than replicas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.geoloc_tf.conftest import save_tiny_m1

REPO = Path(__file__).resolve().parents[2]
SPLIT = "m1_train"
BATCH = 7  # odd: padded to 8, a global batch splits 4 + 4 over two replicas; a shard's last is short
#: The tiny world's 32-photo shards end in a batch of 1 photo: fewer than the replicas.
FEWER_THAN_REPLICAS_BATCH = 31
#: Mirrored vs one device: the same cells in the same order; probabilities and features within
#: this (float32 sums in another order: the batches per replica differ).
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def run(tiny_world, tmp_path_factory) -> Path:
    """A run directory: the tiny world's data and an untrained tiny M1 whose logits are scaled up
    30x, so that its top cells are far apart (unlike near-uniform untrained ones) and depend on
    each photo's pixels."""
    import keras

    from geoloc_tf.run_layout import RunLayout
    from mesh import Mesh

    root = tmp_path_factory.mktemp("predict_run")
    (root / "data").symlink_to(tiny_world.data_root)
    save_tiny_m1(root, Mesh.load(tiny_world.mesh_path).num_cells)
    path = RunLayout(root).m1_model
    model = keras.saving.load_model(path)
    logits = model.get_layer("Logits.Logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([30 * kernel, bias])
    model.save(path)
    return root


def predict(
    run: Path, out: Path, replicas=None, store_features: bool = True, batch: int = BATCH
) -> dict[str, str]:
    from data_pipelines.dataset import load
    from geoloc_tf.m1.predict_records import Replicas, predict_splits
    from geoloc_tf.run_configs import PredictConfig
    from geoloc_tf.run_layout import RunLayout

    replicas = replicas or Replicas.of()
    model = replicas.load(RunLayout(run).m1_model)
    config = PredictConfig(top_k=3, store_features=store_features)
    return predict_splits(
        model, load(str(run / "data")), RunLayout(out), config, 75, (SPLIT,), batch, replicas
    )


def counting_shards(monkeypatch, fail_at: int | None = None) -> list[int]:
    """Records the shards predicted; ``fail_at``: that shard dies as a killed process would."""
    from geoloc_tf.m1 import predict_records

    calls: list[int] = []
    real = predict_records._predict_shard

    def shard(forward, data, split, index, *rest):
        if index == fail_at:
            raise KeyboardInterrupt
        calls.append(index)
        return real(forward, data, split, index, *rest)

    monkeypatch.setattr(predict_records, "_predict_shard", shard)
    return calls


def test_a_killed_prediction_redoes_only_the_unfinished_shards(run, tmp_path, monkeypatch):
    from data_pipelines.dataset import load
    from geoloc_tf.prediction_tables import read_frame

    lengths = load(str(run / "data")).shard_lengths(SPLIT)
    assert len(lengths) >= 4
    counting_shards(monkeypatch, fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        predict(run, tmp_path, store_features=False)
    parts_dir = tmp_path / "predictions" / "m1" / "_parts" / SPLIT
    assert sorted(p.name for p in parts_dir.iterdir()) == ["00000.parquet", "00001.parquet"]
    mtimes = [(parts_dir / f"0000{i}.parquet").stat().st_mtime_ns for i in (0, 1)]
    monkeypatch.undo()
    calls = counting_shards(monkeypatch)
    paths = predict(run, tmp_path, store_features=False)
    assert calls == list(range(2, len(lengths)))  # shards 0 and 1 were kept
    assert [(parts_dir / f"0000{i}.parquet").stat().st_mtime_ns for i in (0, 1)] == mtimes
    table = read_frame(paths[SPLIT])
    assert list(table["photo_id"]) == list(load(str(run / "data")).table(SPLIT)["photo_id"])
    # the join appended one part at a time: one row group per record shard
    assert pq.ParquetFile(paths[SPLIT]).num_row_groups == len(lengths)
    calls.clear()
    predict(run, tmp_path, store_features=False)
    assert calls == []  # every shard is done; only the join runs again


def test_workers_predict_their_own_shards_and_the_chief_joins(run, tmp_path, monkeypatch):
    import tensorflow as tf

    from data_pipelines.dataset import load
    from geoloc_tf.m1 import predict_records
    from geoloc_tf.m1.predict_records import Replicas
    from geoloc_tf.prediction_tables import read_frame
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    n = len(load(str(run / "data")).shard_lengths(SPLIT))
    one_device = tf.distribute.get_strategy()
    calls = counting_shards(monkeypatch)
    # worker 1 of 2 predicts the odd shards, then waits for the chief's table: cut short here
    real_wait, waited = predict_records.wait_for, []
    monkeypatch.setattr(predict_records, "wait_for", lambda paths, what: waited.append(what))
    predict(run, tmp_path / "shared", Replicas(one_device, worker=1, workers=2))
    assert calls == list(range(1, n, 2)) and waited == ["predict: the chief's joins"]
    assert not (tmp_path / "shared" / "predictions" / "m1" / f"{SPLIT}.parquet").exists()
    monkeypatch.setattr(predict_records, "wait_for", real_wait)
    calls.clear()
    paths = predict(run, tmp_path / "shared", Replicas(one_device, worker=0, workers=2))
    assert calls == list(range(0, n, 2))  # the chief's own shards, then the join of all
    alone = predict(run, tmp_path / "alone")
    joined, reference = read_frame(paths[SPLIT]), read_frame(alone[SPLIT])
    assert list(joined["photo_id"]) == list(reference["photo_id"])
    np.testing.assert_array_equal(np.stack(joined["top_ids"]), np.stack(reference["top_ids"]))
    index, reference_index = (FeatureIndex.open(p[f"{SPLIT}_features"]) for p in (paths, alone))
    np.testing.assert_array_equal(index.features, reference_index.features)


MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from pathlib import Path
from geoloc_tf import distribute
from geoloc_tf.m1 import predict_records
from geoloc_tf.m1.predict_records import Replicas
from tests.geoloc_tf.test_predict_records import predict
pieces = []  # each replica's rows of every output of every global batch: the rows it was given
joined = predict_records._joined
def recording(strategy, value):
    pieces.append([len(p) for p in strategy.experimental_local_results(value)])
    return joined(strategy, value)
predict_records._joined = recording
replicas = Replicas.of(distribute.make_strategy("mirrored"))
result = {"replicas": replicas.strategy.num_replicas_in_sync}
for batch in json.loads(sys.argv[3]):
    pieces.clear()
    paths = predict(Path(sys.argv[1]), Path(sys.argv[2]) / str(batch), replicas, batch=batch)
    result[batch] = {"paths": paths, "pieces": sorted({tuple(p) for p in pieces})}
print("RESULT", json.dumps(result))
"""


@pytest.fixture(scope="module")
def mirrored(run, tmp_path_factory) -> dict:
    """MirroredStrategy over 2 logical CPUs (a process of its own: logical devices are set before
    TensorFlow starts) predicting with global batches of ``BATCH`` and of
    ``FEWER_THAN_REPLICAS_BATCH`` photos: {"replicas": n, "<batch>": {"paths", "pieces"}}."""
    out = tmp_path_factory.mktemp("mirrored")
    script = out / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    batches = json.dumps([BATCH, FEWER_THAN_REPLICAS_BATCH])
    done = subprocess.run(
        [sys.executable, str(script), str(run), str(out), batches],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))[7:])


def assert_predicts_what_one_device_does(paths: dict[str, str], one: dict[str, str], data) -> None:
    from geoloc_tf.prediction_tables import read_frame
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    mirrored, reference = read_frame(paths[SPLIT]), read_frame(one[SPLIT])
    # exactly the real photos, in record order: the padding's outputs are dropped
    assert list(mirrored["photo_id"]) == list(data.table(SPLIT)["photo_id"])
    assert list(mirrored["photo_id"]) == list(reference["photo_id"])
    ids, reference_ids = np.stack(mirrored["top_ids"]), np.stack(reference["top_ids"])
    assert len(np.unique(reference_ids[:, 0])) > 1  # the top cell depends on the photo
    np.testing.assert_array_equal(ids, reference_ids)
    np.testing.assert_allclose(
        np.stack(mirrored["top_probs"]), np.stack(reference["top_probs"]), atol=TOLERANCE
    )
    np.testing.assert_allclose(mirrored["top10_mass"], reference["top10_mass"], atol=TOLERANCE)
    index = FeatureIndex.open(paths[f"{SPLIT}_features"])
    reference_index = FeatureIndex.open(one[f"{SPLIT}_features"])
    assert list(index.photos["photo_id"]) == list(reference_index.photos["photo_id"])
    np.testing.assert_allclose(index.features, reference_index.features, atol=TOLERANCE, rtol=TOLERANCE)


def test_mirrored_over_two_cpus_predicts_what_one_device_does(run, mirrored, tmp_path):
    from data_pipelines.dataset import load

    data = load(str(run / "data"))
    assert all(length % BATCH for length in data.shard_lengths(SPLIT))  # every shard ends short
    assert mirrored["replicas"] == 2
    # every global batch of 7, a shard's short last one too, went 4 + 4 to the two replicas: padded
    # to 8, the global batch rounded up to a multiple of the replicas
    assert mirrored[str(BATCH)]["pieces"] == [[4, 4]]
    assert_predicts_what_one_device_does(mirrored[str(BATCH)]["paths"], predict(run, tmp_path), data)


def test_a_last_batch_of_fewer_photos_than_replicas_leaves_no_replica_empty(run, mirrored, tmp_path):
    from data_pipelines.dataset import load

    data = load(str(run / "data"))
    # a 32-photo shard is a batch of 31 and one of 1 photo, for 2 replicas (unpadded: 16 + 15, 1 + 0)
    assert 32 % FEWER_THAN_REPLICAS_BATCH == 1 and 32 in data.shard_lengths(SPLIT)
    # every batch reached the replicas padded to 32 photos, 16 each: no replica was handed none
    assert mirrored[str(FEWER_THAN_REPLICAS_BATCH)]["pieces"] == [[16, 16]]
    one = predict(run, tmp_path, batch=FEWER_THAN_REPLICAS_BATCH)
    assert_predicts_what_one_device_does(mirrored[str(FEWER_THAN_REPLICAS_BATCH)]["paths"], one, data)


def test_a_short_batch_is_padded_with_zeros_to_a_multiple_of_the_devices():
    from geoloc_tf.distribute import pad_batch

    batch = np.arange(1, 7, dtype=np.float32).reshape(3, 2)  # 3 photos of 2 values
    padded, real = pad_batch(batch, batch_size=7, devices=2)  # 7 rounded up to 8 rows
    assert real == 3 and padded.dtype == np.float32
    np.testing.assert_array_equal(padded, [[1, 2], [3, 4], [5, 6]] + [[0, 0]] * 5)
    full = np.ones((8, 2), np.float32)
    assert pad_batch(full, batch_size=7, devices=2)[0] is full  # a full batch is not copied
    assert pad_batch(batch, batch_size=3, devices=1)[0] is batch
    with pytest.raises(ValueError, match="at most 4"):
        pad_batch(np.ones((5, 2)), batch_size=3, devices=2)


def test_worker_share_comes_from_the_cluster():
    import tensorflow as tf

    from geoloc_tf.distribute import worker_share

    def share(cluster, task_type, task_id):
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id
        )
        return worker_share(types.SimpleNamespace(cluster_resolver=resolver))

    three = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    assert share(three, "chief", 0) == (0, 3)
    assert share(three, "worker", 0) == (1, 3)  # the workers come after the chief
    assert share(three, "worker", 1) == (2, 3)
    assert share({"worker": ["a:1", "b:1"]}, "worker", 1) == (1, 2)
    assert share({"worker": ["a:1"]}, "worker", 0) == (0, 1)
    assert worker_share(types.SimpleNamespace()) == (0, 1)  # MirroredStrategy: no cluster


def test_join_appends_one_part_at_a_time_and_passes_over_an_empty_one(tmp_path):
    import pandas as pd

    from geoloc_tf import prediction_tables
    from geoloc_tf.m1.predict_records import join_parts

    def part(name, ids):
        metadata = pd.DataFrame(
            {
                "photo_id": [f"p{i}" for i in ids],
                "user_hash": ["u"] * len(ids),
                "posted_at": np.zeros(len(ids), np.int64),
                "lat": np.ones(len(ids)),
                "lon": np.ones(len(ids)),
                "outdoor_prob": np.ones(len(ids), np.float32),
            }
        )
        top = np.tile([[0.5, 0.25]], (len(ids), 1)) if ids else np.zeros((0, 2))
        frame = prediction_tables.table_from_top_k(metadata, np.ones_like(top), top)
        frame["features"] = [np.ones(3, np.float32)] * len(ids)  # parts hold features; tables not
        return prediction_tables.write_table(frame, tmp_path / name)

    parts = [part("0.parquet", [0, 1]), part("1.parquet", []), part("2.parquet", [2])]
    assert join_parts(parts, tmp_path / "split.parquet", top_k=2) == 3
    table, ids, probs = prediction_tables.read_table(tmp_path / "split.parquet")
    assert list(table["photo_id"]) == ["p0", "p1", "p2"] and "features" not in table
    np.testing.assert_allclose(probs, [[0.5, 0.25]] * 3)
    np.testing.assert_allclose(table["top10_mass"], [0.75] * 3)
    assert pq.ParquetFile(tmp_path / "split.parquet").num_row_groups == 2  # the non-empty parts
    assert join_parts([], tmp_path / "none.parquet", top_k=2) == 0
    assert len(prediction_tables.read_frame(tmp_path / "none.parquet")) == 0


def test_the_predict_stage_loads_and_predicts_under_the_runs_strategy(tmp_path, monkeypatch):
    import tensorflow as tf

    from experiments.stages import predict_stage
    from geoloc_tf import distribute, saving
    from geoloc_tf.m1 import predict_records
    from geoloc_tf.m1.config import M1Config
    from geoloc_tf.run_configs import PredictConfig
    from geoloc_tf.runtime_config import RuntimeConfig

    made, seen = [], {}
    real_make = distribute.make_strategy
    monkeypatch.setattr(distribute, "make_strategy", lambda name: made.append(name) or real_make(name))
    # the "model" is the strategy whose scope it was loaded in
    monkeypatch.setattr(saving, "load_keras", lambda path: tf.distribute.get_strategy())
    monkeypatch.setattr("data_pipelines.dataset.load", lambda path: None)

    def record(model, data, layout, config, image_size, replicas):
        seen.update(model=model, replicas=replicas)
        return {}

    monkeypatch.setattr(predict_records, "predict_splits", record)
    config = types.SimpleNamespace(
        runtime=RuntimeConfig(strategy="one_device"), predict=PredictConfig(), m1=M1Config()
    )
    predict_stage.run(config, tmp_path)
    assert made == ["one_device"]
    assert isinstance(seen["replicas"].strategy, tf.distribute.OneDeviceStrategy)
    assert seen["model"] is seen["replicas"].strategy and seen["replicas"].chief


WORKER_SCRIPT = """
import json, sys
from pathlib import Path
from geoloc_tf import distribute
strategy = distribute.make_strategy("multi_worker")  # collective ops: before TensorFlow's start
from geoloc_tf.m1 import predict_records
from geoloc_tf.m1.predict_records import Replicas
from tests.geoloc_tf.test_predict_records import predict
predict_records.WAIT_SECONDS = 0.2
predicted = []
real = predict_records._predict_shard
predict_records._predict_shard = lambda *a: predicted.append(a[3]) or real(*a)
replicas = Replicas.of(strategy)
paths = predict(Path(sys.argv[1]), Path(sys.argv[2]), replicas)
print("RESULT", json.dumps({"worker": replicas.worker, "workers": replicas.workers,
                            "predicted": predicted, "paths": paths}))
"""


@pytest.mark.slow  # two TensorFlow processes that form a cluster: about a minute on 2 cores
def test_two_workers_of_multi_worker_mirrored_strategy_share_the_shards(run, tmp_path):
    import socket

    from data_pipelines.dataset import load
    from geoloc_tf.prediction_tables import read_frame

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    workers = []
    for index in range(2):
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        }
        command = [sys.executable, str(script), str(run), str(tmp_path / "shared")]
        workers.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    results = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr[-3000:]
        results.append(json.loads(next(l for l in stdout.splitlines() if l.startswith("RESULT "))[7:]))
    n = len(load(str(run / "data")).shard_lengths(SPLIT))
    assert [(r["worker"], r["workers"]) for r in results] == [(0, 2), (1, 2)]
    assert results[0]["predicted"] == list(range(0, n, 2))
    assert results[1]["predicted"] == list(range(1, n, 2))
    joined = read_frame(results[0]["paths"][SPLIT])
    assert list(joined["photo_id"]) == list(load(str(run / "data")).table(SPLIT)["photo_id"])
