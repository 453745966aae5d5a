"""The A.1 sampler's plan as a stream of records: which records an epoch reads, and how often.

The sampler (``sampler.CurriculumSampler.copies``) gives every record of every shard a number of
copies for the epoch. Here the shards are streamed in order (TFRecords read fast only so), each
zipped with its label array and its copy counts; records of dropped cells (label -1, training)
and records with 0 copies leave the stream before anything is parsed or decoded, and records with
several copies are repeated (``input_pipeline.make_dataset`` then shuffles, decodes and batches;
``input_pipeline.curriculum_epoch`` is one epoch of the sampler's plan as batches).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def _shard_datasets(paths, labels, copies):
    """(path, labels, copies) per shard -> a dataset of shards, each element a tuple of tensors."""
    lengths = np.asarray([len(shard) for shard in labels], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    all_labels = tf.constant(
        np.concatenate(labels).astype(np.int32) if len(labels) else np.zeros([0], np.int32)
    )
    all_copies = tf.constant(
        np.concatenate(copies).astype(np.int32) if len(copies) else np.zeros([0], np.int32)
    )
    index = tf.data.Dataset.from_tensor_slices((tf.constant(paths, tf.string), offsets[:-1], lengths))

    def open_shard(path, offset, length):
        records_ds = tf.data.TFRecordDataset(path)
        side = tf.data.Dataset.from_tensor_slices(
            (all_labels[offset : offset + length], all_copies[offset : offset + length])
        )
        return tf.data.Dataset.zip((records_ds, side))

    return index, open_shard


def records_with_copies(
    paths: list[str],
    labels_by_shard: list[np.ndarray],
    copies_by_shard: list[np.ndarray],
    *,
    shuffle_shards: bool,
    drop_unlabeled: bool,
    deterministic: bool,
    seed: int | None,
    num_parallel_reads: int,
) -> tf.data.Dataset:
    """(serialized record, label) for every copy of every record the epoch draws.

    ``shuffle_shards``: a new shard order each pass (training); ``deterministic``: the shards
    interleave in a fixed order; ``seed``: the shard shuffle's (None: random).
    """
    index, open_shard = _shard_datasets(paths, labels_by_shard, copies_by_shard)
    if shuffle_shards and len(paths) > 1:
        index = index.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = index.interleave(
        open_shard,
        cycle_length=max(1, min(num_parallel_reads, len(paths))),
        block_length=1,
        num_parallel_calls=AUTOTUNE,
        deterministic=True if deterministic else None,
    )
    if drop_unlabeled:
        ds = ds.filter(lambda record, side: side[0] >= 0)
    ds = ds.filter(lambda record, side: side[1] > 0)
    if any(int(np.max(c, initial=0)) > 1 for c in copies_by_shard):  # A.1 oversampling
        ds = ds.map(
            lambda record, side: (
                tf.repeat(record[None], side[1]),
                tf.repeat(side[0][None], side[1]),
            )
        )
        return ds.unbatch()
    return ds.map(lambda record, side: (record, side[0]))
