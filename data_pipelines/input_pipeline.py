"""tf.data input for M1: shards -> (image, label) batches (§3.1.2, appendix A.1).

    ds = make_dataset(data, "m1_train", labels_by_shard, InputConfig(), copies_by_shard=copies)

Order of work, cheapest first, so that nothing is decoded that is not used:
  1. shard files (shuffled per epoch in training), each zipped with its label array and, with the
     A.1 sampler, its per-record copy counts; drop records of dropped cells (label -1, training)
     and records with 0 copies; repeat records with several copies (``curriculum``); shuffle
     buffer;
  2. parse (``parsing``), then decode: in training Inception-style augmentation (random crop via
     ``decode_and_crop_jpeg`` so only the crop is decoded, flip, colour), in evaluation a central
     crop; resize to ``image_size`` (299, Inception v4) and scale to ``value_range``
     (``augmentation``);
  3. batch per replica (``input_context`` from ``tf.distribute``), prefetch.

With ``augment_on_device`` (the M1 trainer's choice when it trains on GPUs/TPUs) step 2 stops
after decoding the crop, and steps 2-3 swap: records are batched first, then one map call per batch
decodes its crops and packs them into one flat uint8 buffer, which the train step unpacks,
resizes, flips, jitters and scales (``device_augment``).

tf.data's autotuner is off unless ``InputConfig.autotune`` says otherwise: on a 2-core host it now
and then left a core idle for a whole pass, in every pipeline (see ``InputConfig.autotune``).

Deterministic mode (tests, evaluation): fixed seeds, ordered interleave and map, stateless random
ops seeded per element; the same (config, epoch) gives the same batches. Augmentation always uses
stateless ops with a per-element seed, so parallel map does not change the result.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from data_pipelines.augmentation import augment_image, eval_image
from data_pipelines.config import InputConfig
from data_pipelines.curriculum import records_with_copies
from data_pipelines.dataset import WrittenDataset
from data_pipelines.device_augment import device_crop_side, pack_crops
from data_pipelines.parsing import LOCATION_FEATURES, model_features, model_label, parse

AUTOTUNE = tf.data.AUTOTUNE


def make_dataset(
    data: WrittenDataset,
    split: str,
    labels_by_shard: list[np.ndarray] | None,
    config: InputConfig = InputConfig(),
    *,
    copies_by_shard: list[np.ndarray] | None = None,
    epoch: int = 0,
    input_context: tf.distribute.InputContext | None = None,
    shards: list[int] | None = None,
) -> tf.data.Dataset:
    """One epoch of ``split`` as batches of ``(image, label)`` (or ``(features, label)``; the label
    a dict of the cell and the photo's lat/lon with ``config.with_location``).

    ``labels_by_shard``: from ``labels.shard_labels`` (None: label -1 everywhere, e.g. prediction
    without a mesh). ``copies_by_shard``: from the A.1 sampler (None: every record once).
    ``input_context``: pass the one ``strategy.distribute_datasets_from_function`` gives; the
    batch is then per replica and each input pipeline reads its own subset of the shards.
    ``shards``: indices into ``data.shard_paths(split)`` to read (None: all), e.g. one shard at a
    time for prediction; ``labels_by_shard``/``copies_by_shard`` still cover all shards of the
    split. Applied before the ``input_context`` sharding.
    """
    paths = data.shard_paths(split)
    lengths = data.shard_lengths(split)
    if labels_by_shard is None:
        labels_by_shard = [np.full(n, -1, np.int64) for n in lengths]
    if copies_by_shard is None:
        copies_by_shard = [np.ones(n, np.int32) for n in lengths]
    if [len(s) for s in labels_by_shard] != lengths or [len(s) for s in copies_by_shard] != lengths:
        raise ValueError(
            f"labels/copies per shard do not match the {len(paths)} shards of {split}: "
            f"expected lengths {lengths}"
        )
    training = config.training
    deterministic = (not training) if config.deterministic is None else config.deterministic
    drop_unlabeled = training if config.drop_unlabeled is None else config.drop_unlabeled
    drop_remainder = training if config.drop_remainder is None else config.drop_remainder
    batch = config.global_batch_size
    shard_ids = np.arange(len(paths))
    if shards is not None:
        shard_ids = np.asarray(shards, np.int64).reshape([-1])
        if shard_ids.size and (shard_ids.min() < 0 or shard_ids.max() >= len(paths)):
            raise ValueError(f"shards={list(shards)} of {split}: expected indices in [0, {len(paths)})")
    if input_context is not None:
        batch = input_context.get_per_replica_batch_size(config.global_batch_size)
        shard_ids = shard_ids[input_context.input_pipeline_id :: input_context.num_input_pipelines]
    paths = [paths[i] for i in shard_ids]
    labels_by_shard = [labels_by_shard[i] for i in shard_ids]
    copies_by_shard = [copies_by_shard[i] for i in shard_ids]
    seed = int(np.random.default_rng([config.seed, epoch]).integers(2**31)) if deterministic else None

    ds = records_with_copies(
        paths,
        labels_by_shard,
        copies_by_shard,
        shuffle_shards=training,
        drop_unlabeled=drop_unlabeled,
        deterministic=deterministic,
        seed=seed,
        num_parallel_reads=config.num_parallel_reads,
    )
    if training and config.shuffle_buffer > 1:
        ds = ds.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    element_seeds = tf.data.Dataset.random(seed=seed if seed is not None else None).batch(2)
    ds = tf.data.Dataset.zip((ds, element_seeds))
    features = None  # parse only what is used
    if not config.with_metadata:
        features = ("image",) + (LOCATION_FEATURES if config.with_location else ())
    map_order = True if deterministic else None

    if training and config.augment_on_device:  # batch first, then decode and pack each batch
        crop_side = device_crop_side(config, data)

        def preprocess_batch(records_labels, seeds):
            records_, label = records_labels
            example = parse(records_, features, batched=True)
            image = pack_crops(example["image"], seeds, config, crop_side, batch)
            return model_features(image, example, config), model_label(label, example, config)

        ds = ds.batch(batch, drop_remainder=drop_remainder)
        ds = ds.map(preprocess_batch, num_parallel_calls=AUTOTUNE, deterministic=map_order)
    else:

        def preprocess(record_label, element_seed):
            record, label = record_label
            example = parse(record, features)
            if training:
                image = augment_image(example["image"], element_seed, config)
            else:
                image = eval_image(example["image"], config)
            return model_features(image, example, config), model_label(label, example, config)

        ds = ds.map(preprocess, num_parallel_calls=AUTOTUNE, deterministic=map_order)
        ds = ds.batch(batch, drop_remainder=drop_remainder)
    options = tf_data_options(config.autotune)
    options.deterministic = bool(deterministic)
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(AUTOTUNE)


def tf_data_options(autotune: bool) -> tf.data.Options:
    """Options every pipeline here (and input_bench's) starts from: tf.data's autotuner on or off
    (``InputConfig.autotune`` says why it is off by default)."""
    options = tf.data.Options()
    options.autotune.enabled = autotune
    return options


def raw_decode_dataset(
    paths: list[str], batch_size: int = 64, autotune: bool = InputConfig.autotune
) -> tf.data.Dataset:
    """The read+decode ceiling: read every record, parse, full JPEG decode; nothing else.

    ``experiments/benchmarks/input_bench.py`` compares ``make_dataset`` against this, with the
    same ``autotune`` setting (``InputConfig.autotune``).
    """
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string)).interleave(
        tf.data.TFRecordDataset,
        cycle_length=max(1, min(8, len(paths))),
        num_parallel_calls=AUTOTUNE,
    )
    ds = ds.map(
        lambda r: tf.io.decode_jpeg(parse(r, ("image",))["image"], channels=3)[0, 0, 0],
        num_parallel_calls=AUTOTUNE,
    )
    return ds.batch(batch_size).prefetch(AUTOTUNE).with_options(tf_data_options(autotune))


def curriculum_epoch(
    data: WrittenDataset,
    split: str,
    labels_by_shard: list[np.ndarray],
    sampler,
    epoch: int,
    config: InputConfig = InputConfig(),
    *,
    input_context: tf.distribute.InputContext | None = None,
):
    """Epoch ``epoch`` of the A.1 curriculum: ``(dataset, plan, num_examples)``.

    ``sampler`` is a ``sampler.CurriculumSampler``; ``plan`` says the cycle, alpha and target size;
    ``num_examples`` is the number of examples this epoch actually draws (all input pipelines
    together; steps per epoch = num_examples // global batch). The copies are a pure function of
    (sampler seed, epoch), so every input pipeline of a distributed run agrees on them.
    """
    plan = sampler.plan(epoch)
    copies = sampler.copies(labels_by_shard, epoch)
    num_examples = int(sum(int(c[np.asarray(s) >= 0].sum()) for c, s in zip(copies, labels_by_shard)))
    dataset = make_dataset(
        data,
        split,
        labels_by_shard,
        config,
        copies_by_shard=copies,
        epoch=epoch,
        input_context=input_context,
    )
    return dataset, plan, num_examples
