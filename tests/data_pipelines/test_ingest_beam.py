"""The Beam engine (``--engine=beam``) against the local one: the same collection, with bad records,
gives the same photos per split, the same skip counts, the same example bytes and tables; every
format reads alike; a rerun keeps the finished shards.

The comparison runs on Beam's DirectRunner in multi_processing mode with 2 workers, as
``geoloc ingest --engine=beam`` does by default: the steps then cross process boundaries (pickled
tasks, spawned SDK workers) as they would on a cluster. The other tests use in_memory mode: what
they check (which shards a rerun redoes, what each format's reader keeps) is decided by the same
functions, and it saves the ~20 s start-up of the worker processes in each.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys

import pandas as pd
import pytest

from data_pipelines import ingest, splits
from data_pipelines.config import IngestConfig
from tests.data_pipelines.conftest import make_collection
from tests.data_pipelines.test_ingest import MESSY_SKIPPED, tree_bytes, write_messy

pytest.importorskip("apache_beam")

MULTI_PROCESSING = "--runner=DirectRunner --direct_running_mode=multi_processing --direct_num_workers=2"
IN_MEMORY = "--runner=DirectRunner --direct_running_mode=in_memory"


def settings(root) -> dict:
    yfcc, csv, images = write_messy(root)
    return dict(
        metadata=(yfcc, csv), images=images, max_image_side=128, examples_per_shard=3, salt="s", workers=1
    )


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory):
    """The messy collection ingested by each engine: (settings, local out, local summary, beam out,
    beam summary)."""
    root = tmp_path_factory.mktemp("engines")
    common = settings(root)
    local_out, beam_out = str(root / "local"), str(root / "beam")
    local = ingest.run_ingestion(IngestConfig(**common), local_out)
    beam = ingest.run_ingestion(
        IngestConfig(engine="beam", beam_pipeline_options=MULTI_PROCESSING, **common), beam_out
    )
    return common, local_out, local, beam_out, beam


def examples_by_id(out_dir) -> dict[str, dict[str, bytes]]:
    """split -> photo id -> the serialized tf.train.Example, read back from the shards."""
    import tensorflow as tf

    out: dict[str, dict[str, bytes]] = {name: {} for name in splits.SPLITS}
    for path in sorted(glob.glob(os.path.join(out_dir, "records", "*.tfrecord-*"))):
        split = os.path.basename(path).split("-")[1].split(".")[0]
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            photo_id = tf.train.Example.FromString(record).features.feature["photo_id"].bytes_list.value[0]
            out[split][photo_id.decode()] = record
    return out


def test_beam_engine_writes_what_the_local_engine_writes(both_engines):
    _, local_out, local, beam_out, beam = both_engines
    # The collection's bad records (messy: one of every metadata skip reason, a missing, a corrupt
    # and a truncated image, a duplicate across files) are counted alike by both engines.
    assert beam["skipped"] == local["skipped"]
    assert local["skipped"] == MESSY_SKIPPED
    assert beam["lines_read"] == local["lines_read"] == 22
    assert beam["examples_written"] == local["examples_written"] == 12
    assert beam["engine"] == "beam" and local["engine"] == "local"
    assert beam["num_shards"] == local["num_shards"] > 2  # several shards, so several workers' work

    a, b = examples_by_id(local_out), examples_by_id(beam_out)
    assert {s: sorted(ids) for s, ids in b.items()} == {s: sorted(ids) for s, ids in a.items()}
    assert sorted(i for ids in a.values() for i in ids) == sorted(
        [str(p) for p in range(100, 110)] + ["208", "300"]
    )
    assert [(s, i) for s in a for i in a[s] if a[s][i] != b[s][i]] == []  # the same example bytes
    for name in splits.SPLITS:
        table = f"tables/{name}.parquet"
        pd.testing.assert_frame_equal(
            pd.read_parquet(os.path.join(beam_out, table)), pd.read_parquet(os.path.join(local_out, table))
        )
    # Shards, tables, manifest, metadata.json: byte for byte (summary.json differs in its timing).
    local_tree, beam_tree = tree_bytes(local_out), tree_bytes(beam_out)
    assert sorted(beam_tree) == sorted(local_tree)
    assert [k for k in local_tree if local_tree[k] != beam_tree[k]] == []


def test_beam_engine_resumes_keeping_finished_shards(both_engines, tmp_path):
    common, _, _, beam_out, beam = both_engines
    out = str(tmp_path / "resumed")
    shutil.copytree(beam_out, out)
    shards = sorted(glob.glob(os.path.join(out, "records", "*.tfrecord-*")))
    lost = shards[1]  # as if the run had been killed while writing it
    os.remove(lost)
    kept = {p: os.stat(p).st_mtime_ns for p in shards if p != lost}
    parsed = {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(out, "_work", "parsed", "*"))}
    for name in ("summary.json", "manifest.json"):
        os.remove(os.path.join(out, name))

    resumed = ingest.run_ingestion(
        IngestConfig(engine="beam", beam_pipeline_options=IN_MEMORY, **common), out
    )
    assert {p: os.stat(p).st_mtime_ns for p in kept} == kept  # finished shards not redone
    assert {p: os.stat(p).st_mtime_ns for p in parsed} == parsed  # nor the parsed metadata files
    assert os.path.exists(lost)
    assert resumed["splits"] == beam["splits"] and resumed["skipped"] == beam["skipped"]
    before, after = tree_bytes(beam_out), tree_bytes(out)
    assert [k for k in before if before[k] != after.get(k)] == []  # the lost shard rewritten identically


def test_beam_engine_without_beam_names_the_extra(monkeypatch, tmp_path):
    from data_pipelines import errors

    monkeypatch.setitem(sys.modules, "apache_beam", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "data_pipelines.ingest.beam_pipeline", raising=False)
    metadata, images = make_collection(str(tmp_path), n=2)
    config = IngestConfig(engine="beam", metadata=(metadata,), images=images)
    with pytest.raises(errors.ConfigError, match=r'beam extra: pip install -e "\.\[beam\]"'):
        ingest.run_ingestion(config, str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")  # stopped before writing anything


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """The same 12 photos written in the layout of every format (the ingestion benchmark's writer)."""
    from experiments.benchmarks.ingest_bench import FORMATS, photos, write_layout

    root = tmp_path_factory.mktemp("layouts")
    table = photos(12, 64)
    return {fmt: write_layout(fmt, root / fmt, table) for fmt in FORMATS}


@pytest.mark.parametrize("fmt", ["csv", "osv5m", "mp16pro", "msgpack", "webdataset", "exif"])
def test_beam_engine_reads_every_format_as_the_local_engine_does(layouts, fmt, tmp_path):
    metadata, images = layouts[fmt]
    common = dict(
        format=fmt, metadata=tuple(metadata), images=images, salt="s", workers=1, examples_per_shard=5
    )
    local = ingest.run_ingestion(IngestConfig(max_image_side=32, **common), str(tmp_path / "local"))
    beam = ingest.run_ingestion(
        IngestConfig(engine="beam", beam_pipeline_options=IN_MEMORY, max_image_side=32, **common),
        str(tmp_path / "beam"),
    )
    # osv5m: 2 of the 12 photos are in test.csv, which the layout leaves out of the metadata.
    assert beam["examples_written"] == local["examples_written"] == (10 if fmt == "osv5m" else 12)
    a, b = tree_bytes(str(tmp_path / "local")), tree_bytes(str(tmp_path / "beam"))
    assert sorted(a) == sorted(b) and [k for k in a if a[k] != b[k]] == []
