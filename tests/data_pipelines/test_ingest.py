"""Ingestion end to end: skip reasons, counting identity, privacy, tfds, resume, CLI errors."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from data_pipelines import errors, ingest
from data_pipelines.config import IngestConfig
from tests.data_pipelines.conftest import (
    SECRETS,
    make_collection,
    write_jpeg,
    write_lines,
    yfcc_fields,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_records(path):
    import tensorflow as tf

    from data_pipelines import records

    spec = records.feature_spec(tf)
    return [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(path)]


def tree_bytes(out_dir):
    """Every file of the written data set except run-dependent ones, as {relative path: bytes}."""
    out = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "**", "*"), recursive=True)):
        rel = os.path.relpath(path, out_dir)
        if (
            os.path.isdir(path)
            or rel.startswith("_work")
            or rel in ("summary.json",)
            or rel.endswith("dataset_info.json")
        ):
            continue
        with open(path, "rb") as f:
            out[rel] = f.read()
    return out


@pytest.fixture
def messy(tmp_path):
    return write_messy(tmp_path)


# What ingesting write_messy's collection skips, by reason (its lines say why).
MESSY_SKIPPED = {
    "too_long": 0,
    "wrong_field_count": 1,
    "bad_field": 0,
    "no_coordinates": 1,
    "bad_coordinates": 1,
    "zero_coordinates": 1,
    "video": 1,
    "duplicate_id": 2,  # yfcc.tsv:16 and extra.csv:3
    "missing_image": 1,
    "placeholder_image": 0,  # MP16-Pro's tar only
    "outside_images": 0,
    "not_a_file": 0,
    "bad_image": 2,  # corrupt and truncated JPEG
}


def write_messy(tmp_path):
    """A YFCC file with one line of every metadata skip reason, broken images, and a CSV file;
    returns (YFCC file, CSV file, images folder)."""
    images = str(tmp_path / "images")
    lines = []
    for i in range(10):
        lines.append(
            "\t".join(
                yfcc_fields(
                    100 + i,
                    user=f"user{i % 3}@N00",
                    lat=10.0 + i,
                    lon=20.0 + i,
                    uploaded=1400000000 + i,
                )
            )
        )
        write_jpeg(os.path.join(images, f"{100 + i}.jpg"))
    lines.append("\t".join(yfcc_fields(200))[:-2])  # line 11: wrong field count
    lines.append("\t".join(yfcc_fields(201, lat=None, lon=None)))  # 12: no coordinates
    lines.append("\t".join(yfcc_fields(202, lat=95.0, lon=1.0)))  # 13: bad coordinates
    lines.append("\t".join(yfcc_fields(203, lat=0.0, lon=0.0)))  # 14: (0, 0)
    lines.append("\t".join(yfcc_fields(204, video=True)))  # 15: video
    lines.append("\t".join(yfcc_fields(100)))  # 16: duplicate of line 1
    lines.append("\t".join(yfcc_fields(205)))  # 17: missing image
    lines.append("\t".join(yfcc_fields(206)))  # 18: corrupt JPEG
    with open(os.path.join(images, "206.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 this is not a jpeg at all" * 10)
    lines.append("\t".join(yfcc_fields(207)))  # 19: truncated JPEG
    write_jpeg(os.path.join(images, "full207.jpg"), 200, 150)
    with open(os.path.join(images, "full207.jpg"), "rb") as f:
        data = f.read()
    with open(os.path.join(images, "207.jpg"), "wb") as f:
        f.write(data[: len(data) // 2])
    lines.append("\t".join(yfcc_fields(208, lat=-33.8688197, lon=151.2092955)))  # 20: large PNG
    write_jpeg(os.path.join(images, "208.jpg"), 1000, 500, fmt="PNG")  # PNG bytes, .jpg name
    yfcc = write_lines(tmp_path / "yfcc.tsv", lines)
    csv = write_lines(
        tmp_path / "extra.csv",
        [
            "IMG_ID,AUTHOR,LAT,LON,posted_at",
            "300,csvuser,51.5,-0.12,1500000000",
            "101,csvuser,51.5,-0.12,1500000000",
        ],
    )
    write_jpeg(os.path.join(images, "300.jpg"))
    return yfcc, csv, images


def test_ingest_counts_every_skip_reason_and_keeps_only_allowed_fields(tmp_path, messy):
    yfcc, csv, images = messy
    out = str(tmp_path / "out")
    config = IngestConfig(
        metadata=(yfcc, csv),
        images=images,
        max_image_side=128,
        examples_per_shard=4,
        workers=1,
    )
    summary = ingest.run_ingestion(config, out)
    assert summary["lines_read"] == 22  # 20 YFCC lines + 2 CSV rows
    assert summary["examples_written"] == 12  # 100-109, 208, 300
    assert summary["skipped"] == MESSY_SKIPPED
    assert summary["lines_read"] == summary["examples_written"] + sum(summary["skipped"].values())
    assert sum(summary["splits"].values()) == 12
    assert any(m.startswith(f"{yfcc}:16: duplicate_id") for m in summary["skipped_examples"]["duplicate_id"])
    assert any(m.startswith(f"{csv}:3: duplicate_id") for m in summary["skipped_examples"]["duplicate_id"])
    assert any(
        m.startswith(f"{yfcc}:19: bad_image") and "truncated" in m
        for m in summary["skipped_examples"]["bad_image"]
    )
    assert summary["skipped_examples"]["missing_image"][0].startswith(f"{yfcc}:17: missing_image")
    with open(os.path.join(out, "summary.json")) as f:
        assert json.load(f)["examples_written"] == 12

    manifest = json.load(open(os.path.join(out, "manifest.json")))
    tables = {s: pd.read_parquet(os.path.join(out, "tables", f"{s}.parquet")) for s in manifest["splits"]}
    all_rows = pd.concat(tables.values())
    assert sorted(all_rows["photo_id"]) == sorted([str(100 + i) for i in range(10)] + ["208", "300"])
    sydney = all_rows.set_index("photo_id").loc["208"]
    assert sydney["lat_e7"] == -338688197 and sydney["lon_e7"] == 1512092955  # no float32 loss
    assert sydney["lat"] == pytest.approx(-33.8688197, abs=1e-9)

    import tensorflow as tf

    seen = {}
    for split, entry in manifest["splits"].items():
        assert entry["num_examples"] == len(tables[split])
        for shard_index, shard in enumerate(entry["shards"]):
            examples = read_records(os.path.join(out, "records", shard["file"]))
            assert len(examples) == shard["num_examples"]
            rows = tables[split][tables[split]["shard"] == shard_index].sort_values("index_in_shard")
            assert [e["photo_id"].numpy().decode() for e in examples] == list(rows["photo_id"])
            for e in examples:
                seen[e["photo_id"].numpy().decode()] = e
    big = tf.io.decode_jpeg(seen["208"]["image"])
    assert tuple(big.shape) == (64, 128, 3)  # 1000 x 500 PNG -> JPEG, longest side 128
    assert int(seen["208"]["lat_e7"]) == -338688197
    assert int(seen["300"]["posted_at"]) == 1500000000
    assert float(seen["300"]["outdoor_prob"]) == -1.0

    # Privacy: no nickname, title, description, tags, URLs or raw user ids in any output file.
    blob = b"".join(
        open(p, "rb").read()
        for p in glob.glob(os.path.join(out, "**", "*"), recursive=True)
        if os.path.isfile(p)
    )
    for secret in SECRETS + ("user0@N00", "csvuser", "flickr.com"):
        assert secret.encode() not in blob, secret

    # tfds reads the result as it is.
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(os.path.join(out, "records"))
    ds = builder.as_dataset(split="m1_train")
    photo_ids = sorted(x["photo_id"].numpy().decode() for x in ds)
    assert photo_ids == sorted(tables["m1_train"]["photo_id"])
    assert builder.info.splits["m1_train"].num_examples == len(tables["m1_train"])


def wait_for(pattern, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if glob.glob(pattern):
            return True
        time.sleep(0.02)
    return False


def test_resume_after_kill_gives_identical_data_set(tmp_path):
    metadata, images = make_collection(str(tmp_path), n=40, users=5)
    common = dict(
        metadata=(metadata,),
        images=images,
        max_image_side=64,
        examples_per_shard=2,
        salt="fixed-test-salt",
    )
    # Reference: uninterrupted, two worker processes.
    reference = ingest.run_ingestion(IngestConfig(workers=2, **common), str(tmp_path / "a"))

    # A real kill: SIGKILL the CLI once its first shard is finished.
    out_b = str(tmp_path / "b")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "experiments.cli",
            "ingest",
            f"--metadata={metadata}",
            f"--images={images}",
            f"--out={out_b}",
            "--max_image_side=64",
            "--examples_per_shard=2",
            "--salt=fixed-test-salt",
            "--workers=1",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(os.path.join(out_b, "_work", "shards", "*.json"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # Make the interruption certain and as bad as it gets: a half-written temporary shard, a shard
    # renamed but without its status, and no summary.
    statuses = sorted(glob.glob(os.path.join(out_b, "_work", "shards", "*.json")))
    for status in statuses[len(statuses) // 2 :]:
        os.remove(status)
    records = os.path.join(out_b, "records")
    with open(
        os.path.join(records, ingest.shard_file_name("geoloc_photos", "m1_train", 0, 99) + ".tmp-1"),
        "wb",
    ) as f:
        f.write(b"half a shard")
    for name in ("summary.json", "manifest.json"):
        if os.path.exists(os.path.join(out_b, name)):
            os.remove(os.path.join(out_b, name))
    done_before = len(glob.glob(os.path.join(out_b, "_work", "shards", "*.json")))
    assert done_before < reference["num_shards"]

    resumed = ingest.run_ingestion(IngestConfig(workers=1, **common), out_b)
    assert resumed["examples_written"] == reference["examples_written"] == 40
    assert resumed["splits"] == reference["splits"]
    a, b = tree_bytes(str(tmp_path / "a")), tree_bytes(out_b)
    assert not [k for k in b if ".tmp-" in k]  # the killed run's half shard is cleaned up
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []  # shards, tables, manifest, metadata: byte-identical

    # A different setting is refused instead of silently mixing two data sets.
    with pytest.raises(errors.ConfigError, match="max_image_side=64, now 96"):
        ingest.run_ingestion(IngestConfig(workers=1, **{**common, "max_image_side": 96}), out_b)


def test_fuzzed_metadata_through_ingestion_keeps_the_counting_identity(tmp_path):
    import random

    from tests.data_pipelines.conftest import corrupt

    rng = random.Random(99)
    images = str(tmp_path / "images")
    good = []
    for i in range(20):  # first, so a corrupted id that collides is the duplicate, not these
        good.append("\t".join(yfcc_fields(500 + i, lat=rng.uniform(-80, 80), lon=rng.uniform(-170, 170))))
        write_jpeg(os.path.join(images, f"{500 + i}.jpg"), 40, 30)
    bad = [
        corrupt(
            "\t".join(yfcc_fields(10_000 + i, lat=rng.uniform(-80, 80), lon=rng.uniform(-170, 170))),
            rng,
        )
        for i in range(2500)
    ]
    path = tmp_path / "fuzz.tsv"
    path.write_bytes("\n".join(good).encode() + b"\n" + b"\n".join(bad) + b"\n")
    summary = ingest.run_ingestion(
        IngestConfig(
            metadata=(str(path),),
            images=images,
            workers=1,
            max_image_side=32,
            examples_per_shard=512,
        ),
        str(tmp_path / "out"),
    )
    assert summary["lines_read"] == 2520
    assert summary["lines_read"] == summary["examples_written"] + sum(summary["skipped"].values())
    assert summary["examples_written"] == 20
    assert summary["skipped"]["missing_image"] > 500  # corrupted but still valid metadata lines


def test_image_phase_logs_progress_lines_with_rate_and_eta(tmp_path, messy, caplog, monkeypatch):
    """Off a terminal the image phase logs done/total photos, rate, ETA and shards (here after
    every shard: the interval is set to 0), then one closing line."""
    import logging
    import re

    import mesh.progress

    yfcc, csv, images = messy
    monkeypatch.setattr(mesh.progress, "PROGRESS_EVERY_S", 0.0)
    caplog.set_level(logging.INFO, logger="data_pipelines.ingest")
    config = IngestConfig(
        metadata=(yfcc, csv), images=images, max_image_side=128, examples_per_shard=4, workers=1
    )
    summary = ingest.run_ingestion(config, str(tmp_path / "out"))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("images: ")]
    # 15 candidates reach the image phase (12 written, 3 without a usable image), 4 to a shard.
    assert summary["num_shards"] == 4
    for line, done, shard in zip(lines, (4, 8, 12, 15), (1, 2, 3, 4)):
        pattern = rf"images: {done}/15 photos \(\d+%\), [\d.]+ photos/s, ETA \d:\d\d:\d\d, {shard}/4 shards"
        assert re.fullmatch(pattern, line), line
    assert len(lines) == 5
    assert re.fullmatch(r"images: 15/15 photos in \d:\d\d:\d\d \([\d.]+ photos/s\), 4/4 shards", lines[-1])
