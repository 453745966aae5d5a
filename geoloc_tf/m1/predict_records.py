"""M1's predictions for every photo, stored as Parquet tables that need no image work to read.

M2, M3, user averaging and the evaluation start from these tables (paper Figure 3: M2 takes M1's
top-10 cells). One table per split, `predictions/m1/<split>.parquet`, one row per photo in record
order:

| column | meaning |
|---|---|
| photo_id, user_hash, posted_at, lat, lon, outdoor_prob | the photo's kept metadata |
| top_ids (list of int32), top_probs (list of float32) | the k most probable cells, best first |
| top10_mass | sum of the 10 largest probabilities: the L1 norm |p0| of Figure 3, operator (1) |

With ``PredictConfig.store_features``, M1's penultimate (1536-d at full width) features of each
split go to the split's feature index (``geoloc_tf.retrieval.feature_index``, appendix B), in the
same photo order: the one store that the kNN row and `geoloc search` read.

**Shards.** The unit of work and of resume is one record shard: its predictions (features
included) go to one atomic part, ``RunLayout.prediction_parts(split)/NNNNN.parquet``, kept after
the join. A part that exists is never redone, so a killed run loses at most the shard it was
predicting. The split's table is then joined from the parts (``join_parts``) and, with features,
the index (``feature_index.assemble_index``).

**Replicas.** On TensorFlow the forward pass runs under the run's tf.distribute strategy
(``--runtime_strategy``, the one training used): the model's variables are mirrored on every
replica (``Replicas.load``), each global batch of ``batch_size`` photos is padded and split evenly
across the replicas (below; ``distribute.replica_batches``) and ``strategy.run``, inside one
``tf.function``, computes each replica's top-k cells (and features) on its device; the replicas'
pieces are joined in replica order, which is the batch's own order. The photos' metadata stays on
the host (a string tensor cannot be copied to a GPU). Under MultiWorkerMirroredStrategy each worker
predicts its own record shards, every n-th from its position in the cluster
(``distribute.worker_share``, from TF_CONFIG through the strategy's cluster resolver) on its own
replicas (``distribute.local_strategy``): the workers never wait on each other step by step (a
distributed dataset over several workers agrees on "more data?" with a cross-worker reduction at
every step, which workers with unequal shares would hang on). The chief then waits until every part
exists and joins them; the other workers, once their shards of every split are done, wait until the
joined outputs exist (an output left by an earlier run counts: force the stage to rerun only after
removing it).

**On JAX** (``KERAS_BACKEND=jax``) the same shards, parts and tables come from a forward pass
compiled once by ``jax.jit`` (``Forward`` of ``jax_forward``: ``model.stateless_call`` and the top-k
on the devices): the run's ``--runtime_strategy`` names a ``keras.distribution`` there
(``distribute.jax_distribution``; None: one device), M1's variables are replicated by loading it
under its scope, and each global batch is laid out over the devices along its first axis
(``distribute.shard_batch``). The worker share is the process's (``distribute.jax_worker_share``);
with several processes each predicts its shards on its own devices.

**Padding.** On both backends every global batch reaches the devices padded with zeros to
``batch_size`` rounded up to a multiple of the devices (``distribute.pad_batch``), and the
padding's outputs are dropped: each device gets the same number of photos, never none (split as
it comes, a shard's short last batch would leave the last replicas an empty batch, which oneDNN's
CPU kernels reject), and the compiled step sees one shape.

**Memory.** Predicting holds one shard's outputs: per photo its metadata, 2 x max(k, 10) top-k
values and, with features, d float32 (1024 photos x 1536 x 4 B = 6.3 MB a shard at full width),
plus the input pipeline's prefetched batches. Joining holds one part's table columns (no features:
about 100 B + 8 k B a photo) and the Parquet writer's one row group, whatever the split's size;
the index joiner holds one part's features and the split's photo ids and locations.

**Progress.** ``mesh.progress`` over this worker's photos still to predict (parts already on disk
are not work left): a bar on a terminal, else a line every few seconds with the photos per second
(all replicas together), the ETA and the shards done, and a closing line.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import tensorflow as tf

from data_pipelines import input_pipeline, splits
from data_pipelines.config import InputConfig
from data_pipelines.dataset import WrittenDataset
from geoloc_tf import distribute, prediction_tables
from geoloc_tf.m1 import inception_v4
from geoloc_tf.run_configs import PredictConfig
from geoloc_tf.run_layout import RunLayout
from mesh.atomic import write_atomic
from mesh.progress import Progress

log = logging.getLogger(__name__)

MODEL = "m1"
MASS_K = prediction_tables.MASS_K
BATCH_SIZE = 128  # photos per forward pass: the global batch, split across the replicas
WAIT_SECONDS = 5.0  # how often a worker looks for the files another worker writes
WAIT_LOG_SECONDS = 60.0  # how often it says what it is waiting for
#: The photo metadata read beside the images: the prediction tables' metadata columns.
METADATA = prediction_tables.METADATA_COLUMNS


def on_jax() -> bool:
    """True on the Keras JAX backend (the forward of ``jax_forward``), False on TensorFlow's."""
    return keras.backend.backend() == "jax"


def placement(strategy_name: str) -> Any:
    """Where ``--runtime_strategy=strategy_name`` runs M1 on this process's Keras backend: a
    tf.distribute strategy on TensorFlow (``distribute.make_strategy``), a keras distribution or
    None (one device) on JAX (``distribute.jax_distribution``); what ``Replicas.of`` takes."""
    if on_jax():
        return distribute.jax_distribution(strategy_name)
    return distribute.make_strategy(strategy_name)


@dataclasses.dataclass(frozen=True)
class Replicas:
    """Where prediction runs: this machine's replicas (``strategy``: a tf.distribute strategy on
    TensorFlow; on JAX a keras distribution, or None for one device) and this worker's share of the
    record shards (position ``worker`` of ``workers``; 0 is the chief, which joins the parts)."""

    strategy: Any
    worker: int = 0
    workers: int = 1

    @classmethod
    def of(cls, strategy: Any = None) -> "Replicas":
        """The replicas of ``strategy`` (the run's, from ``placement``). On TensorFlow None is the
        default strategy (one device); on JAX None is one device and the worker share is the JAX
        process's."""
        if on_jax():
            worker, workers = distribute.jax_worker_share()
            if strategy is not None and workers > 1:
                strategy = distribute.jax_local_distribution()
            return cls(strategy, worker, workers)
        strategy = strategy or tf.distribute.get_strategy()
        worker, workers = distribute.worker_share(strategy)
        return cls(distribute.local_strategy(strategy), worker, workers)

    @property
    def chief(self) -> bool:
        return self.worker == 0

    @property
    def devices(self) -> int:
        """How many devices share a global batch."""
        if not on_jax():
            return self.strategy.num_replicas_in_sync
        return 1 if self.strategy is None else int(np.size(self.strategy.device_mesh.devices))

    def shards(self, count: int) -> list[int]:
        """This worker's record shards of a split of ``count`` shards: every ``workers``-th."""
        return list(range(self.worker, count, self.workers))

    def load(self, path: str | Path) -> keras.Model:
        """The Keras model at ``path`` with its variables mirrored on every replica."""
        from geoloc_tf.saving import load_keras

        if self.strategy is None:  # JAX on one device
            return load_keras(path)
        with self.strategy.scope():
            return load_keras(path)


@dataclasses.dataclass(frozen=True)
class Forward:
    """M1's forward pass on every replica, ``k = min(max(top_k, 10), cells)`` cells a photo:
    ``step(images)``, a global batch of images (numpy) whose rows are a multiple of the devices
    (``distribute.pad_batch``), split evenly over the replicas, gives (top-k probabilities, their
    cell ids[, features]) of the whole batch, as arrays in the batch's order."""

    replicas: Replicas
    step: Callable
    k: int


@dataclasses.dataclass(frozen=True)
class _Pass:
    """One prediction pass: the settings plus M1's input side (from M1's config) and batch."""

    config: PredictConfig
    image_size: int
    batch_size: int


def prediction_model(model: keras.Model, store_features: bool) -> keras.Model:
    """M1 returning (probabilities, features) when features are wanted, else probabilities."""
    if not store_features:
        return model
    features = model.get_layer(inception_v4.FEATURES_LAYER).output
    return keras.Model(model.inputs, [model.output, features], name=f"{model.name}_with_features")


def replicated_forward(
    model: keras.Model, config: PredictConfig, replicas: Replicas | None = None
) -> Forward:
    """The forward pass of ``model`` (loaded by ``replicas.load``) for ``config``: the top-k cells
    are picked on each replica's device, so only k values per photo come back to the host."""
    replicas = replicas or Replicas.of()
    net = prediction_model(model, config.store_features)
    k = min(max(config.top_k, MASS_K), int(model.output_shape[-1]))
    if on_jax():
        return jax_forward(net, config.store_features, replicas, k)

    strategy = replicas.strategy

    def replica_step(images):
        return _top_k(net(images, training=False), config.store_features, k)

    # strategy.run inside one tf.function: one graph runs every replica (called eagerly,
    # MirroredStrategy would run each replica's function in a Python thread of its own)
    @tf.function
    def run(images):
        return strategy.run(replica_step, args=(images,))

    def step(images: np.ndarray) -> tuple[np.ndarray, ...]:
        outputs = run(distribute.replica_batches(strategy, images))
        return tuple(_joined(strategy, output) for output in outputs)

    return Forward(replicas, step, k)


def jax_forward(net: keras.Model, store_features: bool, replicas: Replicas, k: int) -> Forward:
    """The JAX form of ``replicated_forward``: ``net``'s stateless call and the top-k in one
    ``jax.jit``-compiled function of (variables, images); the variables keep the layout they were
    loaded with (replicated under the distribution's scope), the images are laid out over the
    devices along their first axis (``distribute.shard_batch``)."""
    import jax

    def forward(trainable, non_trainable, images):
        output, _ = net.stateless_call(trainable, non_trainable, images, training=False)
        return _top_k(output, store_features, k)

    compiled = jax.jit(forward)
    trainable = [variable.value for variable in net.trainable_variables]
    non_trainable = [variable.value for variable in net.non_trainable_variables]

    def step(images: np.ndarray) -> tuple[np.ndarray, ...]:
        outputs = compiled(trainable, non_trainable, distribute.shard_batch(replicas.strategy, images))
        return tuple(np.asarray(output) for output in outputs)

    return Forward(replicas, step, k)


def _top_k(output, store_features: bool, k: int) -> tuple:
    """(top-k probabilities, their cell ids[, features]) of M1's output (``prediction_model``)."""
    probabilities = output[0] if store_features else output
    values, ids = keras.ops.top_k(probabilities, k=k)
    return (values, ids, output[1]) if store_features else (values, ids)


def predict_splits(
    model: keras.Model,
    data: WrittenDataset,
    layout: RunLayout,
    config: PredictConfig,
    image_size: int,
    split_names: tuple[str, ...] = splits.SPLITS,
    batch_size: int = BATCH_SIZE,
    replicas: Replicas | None = None,
) -> dict[str, str]:
    """Writes M1's prediction table of every split and, with ``config.store_features``, its feature
    index (``layout.index_dir(split)``, the run's one store of M1 features); returns split ->
    table path and ``<split>_features`` -> index folder. ``image_size``: M1's input side
    (``--m1_image_size``); ``model`` is the run's ``layout.m1_model``, loaded by
    ``replicas.load`` (``replicas``: the run's strategy, ``Replicas.of``; None: one device)."""
    from geoloc_tf.retrieval.feature_index import META_FILE, assemble_index, index_meta

    forward = replicated_forward(model, config, replicas)
    paths, joined = {}, []
    for split in split_names:
        parts = predict_parts(
            forward, data, split, layout.prediction_parts(MODEL, split), config, image_size, batch_size
        )
        table, index = layout.prediction_table(MODEL, split), layout.index_dir(split)
        if forward.replicas.chief:
            rows = join_parts(parts, table, config.top_k)
            log.info("predict %s: %d photos -> %s", split, rows, table)
            if config.store_features:
                assemble_index(parts, index, index_meta(layout.m1_model, data, split, image_size))
        else:  # on to the next split's shards; the chief joins this one meanwhile
            joined += [table, index / META_FILE] if config.store_features else [table]
        paths[split] = str(table)
        if config.store_features:
            paths[f"{split}_features"] = str(index)
    wait_for(joined, "predict: the chief's joins")
    return paths


def predict_parts(
    forward: Forward,
    data: WrittenDataset,
    split: str,
    parts_dir: Path | str,
    config: PredictConfig,
    image_size: int,
    batch_size: int = BATCH_SIZE,
) -> list[Path]:
    """One prediction table per record shard of ``split``, ``parts_dir/NNNNN.parquet`` (atomic),
    for this worker's shards (``forward.replicas``); parts that exist are kept, so a killed run
    redoes only unfinished shards. Returns every part of the split, in shard order: on the chief
    once they all exist (the other workers write theirs), on another worker once its own do."""
    parts_dir = Path(parts_dir)
    parts_dir.mkdir(parents=True, exist_ok=True)
    lengths = data.shard_lengths(split)
    parts = [parts_dir / f"{shard:05d}.parquet" for shard in range(len(lengths))]
    replicas = forward.replicas
    mine = replicas.shards(len(lengths))
    todo = [shard for shard in mine if not parts[shard].exists()]
    run = _Pass(config, image_size, batch_size)
    desc = f"predict {split}" + (f" (worker {replicas.worker})" if replicas.workers > 1 else "")
    total = sum(lengths[shard] for shard in todo)
    with Progress(total, "photos", desc, enabled=bool(todo), log=log) as progress:
        for count, shard in enumerate(todo, start=len(mine) - len(todo) + 1):
            frame = _predict_shard(forward, data, split, shard, run, progress)
            prediction_tables.write_table(frame, parts[shard])
            progress.update(0, note=f"{count}/{len(mine)} shards")
    if replicas.chief and replicas.workers > 1:
        wait_for(parts, f"predict {split}: the other workers' parts")
    return parts


def join_parts(parts: Sequence[Path], path: Path | str, top_k: int) -> int:
    """Writes the split's table (``prediction_tables.TABLE_COLUMNS``) from its parts, atomically,
    each part appended as one Parquet row group: memory holds one part's columns, never the
    split's. Returns the number of rows. ``top_k``: the width of an empty split's table."""
    parts = [part for part in parts if pq.ParquetFile(part).metadata.num_rows]  # empty: untyped
    if not parts:
        prediction_tables.write_table(_empty_frame(top_k), path)
        return 0
    columns = list(prediction_tables.TABLE_COLUMNS)
    rows = 0

    def write(f) -> None:
        nonlocal rows
        first = prediction_tables.read_arrow(parts[0], columns)
        with pq.ParquetWriter(f, first.schema) as writer:
            for part in parts:
                table = first if part is parts[0] else prediction_tables.read_arrow(part, columns)
                writer.write_table(table.cast(first.schema))
                rows += table.num_rows

    write_atomic(path, write)
    return rows


def wait_for(paths: Sequence[Path], what: str, poll_seconds: float = WAIT_SECONDS) -> None:
    """Returns once every path exists (files another worker writes); says which are missing about
    once a minute."""
    said = -math.inf
    while missing := [path for path in paths if not Path(path).exists()]:
        if time.monotonic() - said >= WAIT_LOG_SECONDS:
            log.info("%s: waiting for %d file(s), e.g. %s", what, len(missing), missing[0])
            said = time.monotonic()
        time.sleep(poll_seconds)


def _predict_shard(
    forward: Forward, data: WrittenDataset, split: str, shard: int, run: _Pass, progress: Progress
) -> pd.DataFrame:
    config = run.config
    input_config = InputConfig(
        image_size=run.image_size,
        global_batch_size=run.batch_size,
        training=False,
        deterministic=True,
        with_metadata=True,
        drop_unlabeled=False,
        drop_remainder=False,
    )
    dataset = input_pipeline.make_dataset(data, split, None, input_config, shards=[shard])
    metadata: dict[str, list[np.ndarray]] = {name: [] for name in METADATA}
    outputs: list[list[np.ndarray]] = [[], [], []]  # top values, top ids, features
    for batch_metadata, batch_outputs in _batches(forward, dataset, run.batch_size):
        for name in METADATA:
            metadata[name].append(batch_metadata[name])
        progress.update(len(batch_metadata[METADATA[0]]))
        for chunks, output in zip(outputs, batch_outputs):
            chunks.append(output)
    columns = {name: _concat(chunks) for name, chunks in metadata.items()}
    text = {name: [value.decode() for value in columns.pop(name)] for name in ("photo_id", "user_hash")}
    frame_metadata = pd.DataFrame({**text, **columns}).astype(
        {"posted_at": np.int64, "lat": np.float64, "lon": np.float64, "outdoor_prob": np.float32}
    )
    n = len(frame_metadata)
    values = _concat(outputs[0]).reshape(n, forward.k)
    frame = prediction_tables.table_from_top_k(
        frame_metadata,
        _concat(outputs[1]).reshape(n, forward.k)[:, : config.top_k],
        values[:, : config.top_k],
        values[:, :MASS_K].sum(axis=1),
    )
    if config.store_features:
        frame["features"] = list(_concat(outputs[2]).astype(np.float32))
    return frame


Batches = Iterator[tuple[dict[str, np.ndarray], tuple[np.ndarray, ...]]]


def _batches(forward: Forward, dataset: tf.data.Dataset, batch_size: int) -> Batches:
    """(metadata, outputs) of each global batch of ``dataset``: the images padded to ``batch_size``
    rounded up to a multiple of the devices (``distribute.pad_batch``), the padding's outputs
    dropped; the metadata as read, on the host."""
    for features, _ in dataset.as_numpy_iterator():
        images, real = distribute.pad_batch(features["image"], batch_size, forward.replicas.devices)
        outputs = forward.step(images)
        yield {name: features[name] for name in METADATA}, tuple(output[:real] for output in outputs)


def _joined(strategy: tf.distribute.Strategy, value) -> np.ndarray:
    """A per-replica value's pieces joined in replica order: the batch's order."""
    return np.concatenate([np.asarray(piece) for piece in strategy.experimental_local_results(value)])


def _concat(chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.empty(0)


def _empty_frame(top_k: int) -> pd.DataFrame:
    empty = np.zeros((0, top_k))
    return prediction_tables.table_from_top_k(pd.DataFrame({name: [] for name in METADATA}), empty, empty)
