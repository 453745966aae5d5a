"""Labels per mesh and the tf.data input: alignment, augmentation, sampler copies, batching."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import dataset, labels
from data_pipelines.config import InputConfig, SamplerConfig
from data_pipelines.input_pipeline import curriculum_epoch, make_dataset
from data_pipelines.sampler import CurriculumSampler
from tests.data_pipelines.conftest import build_test_mesh


@pytest.fixture(scope="module")
def data(ingested):
    return dataset.load(ingested)


@pytest.fixture(scope="module")
def mesh_and_labels(data):
    train = data.table("m1_train")
    mesh = build_test_mesh(train["lat"], train["lon"], min_examples=2)
    return mesh, labels.shard_labels(data, "m1_train", mesh)


def collect(ds):
    out = {"label": [], "photo_id": [], "lat": [], "lon": [], "image": []}
    for features, label in ds:
        out["label"].extend(label.numpy().tolist())
        if isinstance(features, dict):
            out["photo_id"].extend(x.decode() for x in features["photo_id"].numpy())
            out["lat"].extend(features["lat"].numpy().tolist())
            out["lon"].extend(features["lon"].numpy().tolist())
            out["image"].append(features["image"].numpy())
        else:
            out["image"].append(features.numpy())
    return out


def test_labels_come_from_mesh_locate_per_shard(data, mesh_and_labels):
    mesh, per_shard = mesh_and_labels
    assert [len(l) for l in per_shard] == data.shard_lengths("m1_train")
    table = data.table("m1_train")
    expected = np.asarray(mesh.locate(table["lat"].to_numpy(), table["lon"].to_numpy()))
    assert np.array_equal(np.concatenate(per_shard), expected)
    counts = labels.class_counts(np.concatenate(per_shard), mesh.num_cells)
    assert counts.sum() == (expected >= 0).sum()
    assert data.table("m1_val")["shard"].max() == len(data.shard_paths("m1_val")) - 1


def test_eval_input_is_deterministic_aligned_and_complete(data, mesh_and_labels):
    mesh, per_shard = mesh_and_labels
    config = InputConfig(
        training=False, deterministic=True, image_size=32, global_batch_size=8, with_metadata=True
    )
    out = collect(make_dataset(data, "m1_train", per_shard, config))
    table = data.table("m1_train").set_index("photo_id")
    assert sorted(out["photo_id"]) == sorted(table.index)  # every photo once, -1 labels kept
    rows = table.loc[out["photo_id"]]
    assert np.array_equal(out["lat"], rows["lat"].to_numpy())  # float64, no loss
    assert out["label"] == np.asarray(mesh.locate(rows["lat"].to_numpy(), rows["lon"].to_numpy())).tolist()
    images = np.concatenate(out["image"])
    assert images.shape == (len(table), 32, 32, 3) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    again = collect(make_dataset(data, "m1_train", per_shard, config))
    assert again["photo_id"] == out["photo_id"]
    np.testing.assert_array_equal(np.concatenate(again["image"]), images)


def test_training_input_follows_sampler_copies_and_is_reproducible(data, mesh_and_labels):
    mesh, per_shard = mesh_and_labels
    counts = labels.class_counts(np.concatenate(per_shard), mesh.num_cells)
    sampler = CurriculumSampler(counts, SamplerConfig(alpha_schedule=(0.0,), examples_per_cell=3), seed=0)
    copies = sampler.copies(per_shard, epoch=0)
    config = InputConfig(
        training=True,
        deterministic=True,
        image_size=24,
        global_batch_size=4,
        drop_remainder=False,
        shuffle_buffer=64,
        seed=1,
    )
    out = collect(make_dataset(data, "m1_train", per_shard, config, copies_by_shard=copies))
    all_labels, all_copies = np.concatenate(per_shard), np.concatenate(copies)
    assert len(out["label"]) == all_copies[all_labels >= 0].sum()
    expected = np.bincount(all_labels[all_labels >= 0], all_copies[all_labels >= 0], minlength=mesh.num_cells)
    assert np.array_equal(np.bincount(out["label"], minlength=mesh.num_cells), expected)
    assert min(out["label"]) >= 0  # dropped-cell photos leave training
    again = collect(make_dataset(data, "m1_train", per_shard, config, copies_by_shard=copies))
    assert again["label"] == out["label"]
    np.testing.assert_array_equal(np.concatenate(again["image"]), np.concatenate(out["image"]))
    other = collect(make_dataset(data, "m1_train", per_shard, config, copies_by_shard=copies, epoch=1))
    assert not np.array_equal(np.concatenate(other["image"]), np.concatenate(out["image"]))
    # The same through curriculum_epoch, which also reports the plan and the epoch's size.
    ds, plan, num_examples = curriculum_epoch(data, "m1_train", per_shard, sampler, 0, config)
    assert plan.alpha == 0.0 and plan.size == mesh.num_cells * 3
    assert num_examples == len(out["label"]) and collect(ds)["label"] == out["label"]


def test_per_replica_batching_with_input_context(data, mesh_and_labels):
    _, per_shard = mesh_and_labels
    config = InputConfig(training=True, deterministic=True, image_size=16, global_batch_size=4)
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2
        )
        for images, label in make_dataset(data, "m1_train", per_shard, config, input_context=context):
            assert images.shape == (2, 16, 16, 3)  # 4 global / 2 replicas
            seen.extend(label.numpy().tolist())
    assert len(seen) > 0
    strategy = tf.distribute.get_strategy()  # default strategy: one replica
    dist = strategy.distribute_datasets_from_function(
        lambda ctx: make_dataset(data, "m1_train", per_shard, config, input_context=ctx)
    )
    images, _ = next(iter(dist))
    assert images.shape == (4, 16, 16, 3)


def test_augment_on_device_packs_the_host_augmentations_crops(data, mesh_and_labels):
    """The host half of ``augment_on_device``: the same crops and flips as the host mode, packed.
    (The accelerator half, which resizes and jitters them: tests/geoloc_tf/
    test_device_augment_backends.py.)"""
    from data_pipelines.device_augment import packed_length_step

    _, per_shard = mesh_and_labels
    host = InputConfig(
        training=True, deterministic=True, image_size=24, global_batch_size=6, seed=5, color_jitter=False
    )
    device = dataclasses.replace(host, augment_on_device=True)
    images, labels_a = next(iter(make_dataset(data, "m1_train", per_shard, host)))
    batch, labels_b = next(iter(make_dataset(data, "m1_train", per_shard, device)))
    # The host only decodes the crops and packs them back to back: uint8, crop i at byte
    # 3 * sum(h * w of the crops before it), zeros after the last up to a multiple of the step.
    side = data.max_side
    sizes = batch["size"].numpy()
    assert sizes.shape == (6, 2) and (sizes >= 1).all() and (sizes <= side).all()
    pixels = batch["pixels"].numpy()
    used = 3 * int((sizes[:, 0] * sizes[:, 1]).sum())
    step = packed_length_step(device, 6, side)
    assert step == 3 * -(-6 * side * side // 16)
    assert batch["pixels"].dtype == tf.uint8 and pixels.shape == (used + (-used) % step,)
    assert pixels.size % step == 0 and not pixels[used:].any()
    flips = batch["flip"].numpy()
    assert set(flips) == {0.0, 1.0}  # both paths are compared
    np.testing.assert_array_equal(labels_a, labels_b)
    # Each crop unpacked by hand, flipped where its draw says, resized and scaled to [-1, 1] is the
    # host mode's image (no colour jitter here): the same crops and flip draws.
    starts = np.concatenate([[0], np.cumsum(3 * sizes[:, 0] * sizes[:, 1])])
    for i, (h, w) in enumerate(sizes):
        crop = pixels[starts[i] : starts[i + 1]].reshape(h, w, 3)
        assert crop.std() > 0  # a decoded window of its JPEG: its pixels vary
        crop = crop[:, ::-1] if flips[i] else crop
        resized = tf.image.resize(crop, [24, 24], method="bilinear").numpy()
        np.testing.assert_allclose(resized / 127.5 - 1.0, images[i].numpy(), atol=2e-5)


def test_packed_crops_unrounded_and_autotune_setting(data, mesh_and_labels):
    _, per_shard = mesh_and_labels
    config = InputConfig(
        training=True,
        deterministic=True,
        image_size=24,
        global_batch_size=5,
        augment_on_device=True,
        device_flat_buckets=0,
    )
    ds = make_dataset(data, "m1_train", per_shard, config)
    batch, _ = next(iter(ds))
    sizes = batch["size"].numpy()
    # No rounding: the buffer is exactly the crops' bytes.
    assert batch["pixels"].shape == (3 * int((sizes[:, 0] * sizes[:, 1]).sum()),)
    # tf.data's autotuner is off unless asked for (InputConfig.autotune).
    assert ds.options().autotune.enabled is False
    tuned = make_dataset(data, "m1_train", per_shard, InputConfig(training=False, autotune=True))
    assert tuned.options().autotune.enabled is True


def test_shards_reads_only_the_given_shards_in_order(data, mesh_and_labels):
    _, per_shard = mesh_and_labels
    table = data.table("m1_train")
    num_shards = len(data.shard_paths("m1_train"))
    assert num_shards >= 3
    config = InputConfig(
        training=False, deterministic=True, image_size=16, global_batch_size=5, with_metadata=True
    )
    copies = [np.ones(len(l), np.int32) for l in per_shard]  # full-length, all shards
    for shard in range(num_shards):
        out = collect(
            make_dataset(data, "m1_train", per_shard, config, copies_by_shard=copies, shards=[shard])
        )
        rows = table[table["shard"] == shard]
        # Records are written in table order within a shard (photo i of shard s = row i).
        assert out["photo_id"] == rows["photo_id"].tolist()
        assert out["label"] == per_shard[shard].tolist()
    # Several shards, unlabeled (None) and an index list: each photo of those shards once.
    out = collect(make_dataset(data, "m1_train", None, config, shards=[2, 0]))
    expected = table[table["shard"].isin([0, 2])]["photo_id"]
    assert sorted(out["photo_id"]) == sorted(expected) and set(out["label"]) == {-1}
    with pytest.raises(ValueError, match="shards"):
        make_dataset(data, "m1_train", per_shard, config, shards=[num_shards])


def test_xla_fused_colour_matches_plain_tensorflow(data, mesh_and_labels):
    import dataclasses

    _, per_shard = mesh_and_labels
    config = InputConfig(training=True, deterministic=True, image_size=24, global_batch_size=6, seed=3)
    fused, labels_a = next(iter(make_dataset(data, "m1_train", per_shard, config)))
    plain, labels_b = next(
        iter(make_dataset(data, "m1_train", per_shard, dataclasses.replace(config, jit_compile_color=False)))
    )
    np.testing.assert_array_equal(labels_a, labels_b)
    assert fused.dtype == tf.float32 and fused.shape == (6, 24, 24, 3)
    assert fused.numpy().min() >= -1.0 and fused.numpy().max() <= 1.0
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), atol=1e-5)


@pytest.mark.parametrize("on_device", [False, True])
def test_with_location_labels_carry_each_photos_true_location(data, mesh_and_labels, on_device):
    """``with_location`` (M1's haversine label smoothing): each training label is the photo's cell
    with its true lat/lon, on the host and the augment-on-device paths; dropped-cell photos still
    leave training, and the features are the usual ones."""
    mesh, per_shard = mesh_and_labels
    config = InputConfig(
        training=True,
        deterministic=True,
        image_size=16,
        global_batch_size=4,
        drop_remainder=False,
        augment_on_device=on_device,
        with_location=True,
    )
    cells, lats, lons = [], [], []
    for features, label in make_dataset(data, "m1_train", per_shard, config):
        assert set(label) == {"cell", "lat", "lon"}
        assert label["cell"].dtype == tf.int32 and label["lat"].dtype == tf.float32
        assert isinstance(features, dict) is on_device  # packed crops, or the images as ever
        cells.extend(label["cell"].numpy().tolist())
        lats.extend(label["lat"].numpy().tolist())
        lons.extend(label["lon"].numpy().tolist())
    table = data.table("m1_train")
    expected_cells = np.asarray(mesh.locate(table["lat"].to_numpy(), table["lon"].to_numpy()))
    kept = table[expected_cells >= 0]
    assert min(cells) >= 0 and len(cells) == len(kept)  # every labelled photo once, no -1
    # The ingested photos' coordinates (float32), each with the cell the mesh gives it.
    got = sorted(zip(lats, lons, cells))
    want = sorted(
        zip(
            kept["lat"].to_numpy(np.float32).tolist(),
            kept["lon"].to_numpy(np.float32).tolist(),
            expected_cells[expected_cells >= 0].tolist(),
        )
    )
    assert got == want
    # Without the option the label is the bare cell, in the same order.
    plain = dataclasses.replace(config, with_location=False)
    bare = [c for _, label in make_dataset(data, "m1_train", per_shard, plain) for c in label.numpy()]
    assert bare == cells


def one_error_line(error: BaseException, path) -> str:
    """What a `geoloc` command prints for it (user errors: one ``error:`` line, exit 2)."""
    from experiments.errors import one_line, user_errors

    assert isinstance(error, user_errors())
    line = one_line(error)
    assert "\n" not in str(error) and line.startswith(f"error: {path}: "), line
    return line


def test_a_truncated_shard_is_one_error_naming_it(ingested, tmp_path):
    import shutil

    from mesh.integrity import WrittenFileError

    root = shutil.copytree(ingested, tmp_path / "data")
    data = dataset.load(str(root))
    shard = data.shard_paths("m1_train")[1]
    with open(shard, "r+b") as f:
        f.truncate(10)
    with pytest.raises(WrittenFileError, match=f"{shard}: 10 bytes, the manifest says .*truncated"):
        data.shard_paths("m1_train")


def test_a_split_table_truncated_or_swapped_for_another_is_one_error_naming_it(ingested, tmp_path):
    import shutil

    from mesh.integrity import WrittenFileError, file_entry

    root = shutil.copytree(ingested, tmp_path / "data")
    data = dataset.load(str(root))
    splits = data.manifest["splits"]
    table, other = root / splits["m23_val"]["table"], root / splits["m23_train"]["table"]
    assert splits["m23_val"]["table_file"] == file_entry(table)  # recorded by the ingestion
    written = table.read_bytes()
    shutil.copy(other, table)  # a readable table, of the other split's photos
    with pytest.raises(WrittenFileError) as raised:
        data.table("m23_val")
    assert "changed since it was written" in one_error_line(raised.value, table)
    table.write_bytes(written[:50])
    with pytest.raises(WrittenFileError) as raised:
        data.table("m1_val")  # the join m23_train+m23_val reads it too
    line = one_error_line(raised.value, table)
    assert f"50 bytes, the manifest says {len(written)} (truncated since it was written)" in line
    assert "rerun `geoloc ingest`" in line
    table.write_bytes(written)
    assert len(data.table("m23_val")) == splits["m23_val"]["num_examples"]


def test_a_swapped_shard_is_refused_by_training_by_size_and_by_ingest_by_sha256(ingested, tmp_path):
    """Training checks a shard's size (every start); `geoloc ingest` rerun on the data set checks
    its SHA-256 too (module docstring of data_pipelines.dataset)."""
    import shutil

    from data_pipelines import ingest
    from mesh.integrity import WrittenFileError
    from tests.data_pipelines.conftest import ingested_config

    root = shutil.copytree(ingested, tmp_path / "data")
    data = dataset.load(str(root))
    first, second = (Path(p) for p in data.shard_paths("m1_train")[:2])
    mine, theirs = first.read_bytes(), second.read_bytes()
    assert len(mine) != len(theirs)
    first.write_bytes(theirs)  # another shard's records in its place
    with pytest.raises(WrittenFileError) as raised:
        data.shard_paths("m1_train")
    assert f"{len(theirs)} bytes, the manifest says {len(mine)}" in one_error_line(raised.value, first)
    with pytest.raises(WrittenFileError) as raised:
        ingest.run_ingestion(ingested_config(ingested), str(root))
    one_error_line(raised.value, first)
    # Of the same size (another data set's shard of as many bytes): only the SHA-256 tells.
    first.write_bytes(mine[: len(mine) // 2] + bytes(len(mine) - len(mine) // 2))
    assert data.shard_paths("m1_train")[0] == str(first)  # training: the size only
    with pytest.raises(WrittenFileError) as raised:
        ingest.run_ingestion(ingested_config(ingested), str(root))
    line = one_error_line(raised.value, first)
    assert "sha256" in line and "then rerun to write that shard again" in line
    first.write_bytes(mine)
    summary = ingest.run_ingestion(ingested_config(ingested), str(root))
    assert summary["examples_written"] == sum(s["num_examples"] for s in data.manifest["splits"].values())
