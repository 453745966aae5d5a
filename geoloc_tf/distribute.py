"""Devices and precision, chosen by name (`--runtime_strategy`), on either Keras backend.

The distributed engine is the backend's own, never a home-made one: tf.distribute on TensorFlow,
``keras.distribution`` on JAX (the second half of this module: the same names, data parallel).
On TensorFlow:

- `auto`: MirroredStrategy over every visible GPU when there is more than one, else the default
  strategy (one device);
- `mirrored`: MirroredStrategy over all local GPUs (or all logical CPUs when there is no GPU, which
  is how tests exercise it);
- `multi_worker`: MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG (BUILD.md);
- `one_device`: OneDeviceStrategy on the first GPU, else the CPU.

Work whose replicas never exchange values (prediction) splits by worker instead of stepping in
lockstep: ``worker_share`` says which part of the work is this worker's, ``local_strategy`` gives
the replicas of this machine alone (under MultiWorkerMirroredStrategy every step of a distributed
dataset ends with a cross-worker reduction of "has data", so workers with unequal work would wait
on each other, or hang). Such work pads a short last batch (``pad_batch``) and splits it evenly
(``replica_batches`` here, ``shard_batch`` on JAX), so that no replica is ever handed an empty batch.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

from geoloc_tf import errors
from geoloc_tf.runtime_config import STRATEGIES

log = logging.getLogger(__name__)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy named `name` (see the module docstring). `multi_worker` must come before
    anything starts TensorFlow's runtime in the process (listing devices does): it configures the
    collective ops, which TensorFlow accepts only at program start."""
    if name == "multi_worker":
        return _logged(tf.distribute.MultiWorkerMirroredStrategy())
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    elif name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
    elif name == "one_device":
        strategy = tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    else:
        raise errors.ModelConfigError(f"strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    return _logged(strategy)


def replica_count(name: str) -> int | None:
    """How many replicas strategy ``name`` will have in this process, without building one: what
    ``make_strategy(name).num_replicas_in_sync`` (or ``jax_distribution``'s device count) gives,
    from the device list alone; None for ``multi_worker``, whose count is known only once the
    cluster's runtime has started (and which must start before anything lists devices). Lets the
    runner refuse a global batch that does not split over the replicas before any stage runs."""
    if name not in STRATEGIES:
        raise errors.ModelConfigError(f"strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    if name == "multi_worker":
        return None
    if name == "one_device":
        return 1
    if keras.backend.backend() == "jax":
        devices = len(keras.distribution.list_devices())
    else:
        gpus = len(tf.config.list_logical_devices("GPU"))
        # auto: every GPU when more than one, else one device; mirrored: every GPU, else every CPU
        devices = gpus if name == "auto" else gpus or len(tf.config.list_logical_devices("CPU"))
    return max(devices, 1)


def _logged(strategy: tf.distribute.Strategy) -> tf.distribute.Strategy:
    log.info(
        "tf.distribute strategy %s with %d replica(s)", type(strategy).__name__, strategy.num_replicas_in_sync
    )
    return strategy


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, logs and outputs (worker 0, or the only one)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in (None, "chief") or (resolver.task_type == "worker" and resolver.task_id == 0)


def worker_share(strategy: tf.distribute.Strategy) -> tuple[int, int]:
    """(this worker's position, number of workers) in the strategy's cluster, the chief first and
    then the workers by index (TF_CONFIG); (0, 1) on one machine. Position 0 is ``is_chief``'s."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 0, 1
    cluster = resolver.cluster_spec().as_dict()
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if chiefs + workers <= 1 or resolver.task_type not in ("chief", "worker"):
        return 0, 1
    position = int(resolver.task_id or 0) + (chiefs if resolver.task_type == "worker" else 0)
    return position, chiefs + workers


def local_strategy(strategy: tf.distribute.Strategy) -> tf.distribute.Strategy:
    """The replicas of this machine alone: ``strategy`` itself unless it spans several workers,
    then a MirroredStrategy over this worker's devices (``extended.worker_devices``)."""
    if worker_share(strategy)[1] == 1:
        return strategy
    local = tf.distribute.MirroredStrategy(list(strategy.extended.worker_devices))
    log.info("this worker's own %d replica(s), for work split by worker", local.num_replicas_in_sync)
    return local


def pad_batch(batch: np.ndarray, batch_size: int, devices: int) -> tuple[np.ndarray, int]:
    """(``batch`` with rows of zeros appended up to ``batch_size`` rounded up to a multiple of
    ``devices``, how many of its rows are real): the caller drops the padding's outputs (``[:real]``).

    Why: every device then gets the same number of rows, never none. Split as it comes, a short last
    batch leaves the last replicas empty (tf.distribute gives each replica ceil(batch_size /
    replicas) rows in order, so a last batch of 1 photo on 2 replicas is 1 + 0), and some kernels
    reject an empty batch (oneDNN's batch normalization on x86 CPUs: "Incompatible shapes: [C] vs.
    [0,H,W,C]"); a compiled step (TensorFlow's tf.function, JAX's jit) also sees one shape, so it is
    traced or compiled once."""
    size = -(-batch_size // devices) * devices
    real = len(batch)
    if real > size:
        raise ValueError(f"a batch of {real} rows; expected at most {size}")
    if real == size:
        return batch, real
    return np.concatenate([batch, np.zeros((size - real, *batch.shape[1:]), batch.dtype)]), real


def replica_batches(strategy: tf.distribute.Strategy, batch: np.ndarray):
    """``batch`` (its rows a multiple of the replicas: ``pad_batch``) split over ``strategy``'s
    replicas in equal consecutive slices, replica r the r-th: the per-replica values that
    ``strategy.run`` takes, in the batch's order (``strategy.experimental_local_results`` of the
    outputs, concatenated, is the batch's order again). The TensorFlow form of ``shard_batch``."""
    replicas = strategy.num_replicas_in_sync
    if len(batch) % replicas:
        raise ValueError(f"a batch of {len(batch)} rows does not split evenly over {replicas} replicas")
    rows = len(batch) // replicas

    def piece(context: tf.distribute.experimental.ValueContext) -> tf.Tensor:
        start = context.replica_id_in_sync_group * rows
        return tf.convert_to_tensor(batch[start : start + rows])

    return strategy.experimental_distribute_values_from_function(piece)


def set_precision(mixed_precision: bool) -> None:
    """mixed_float16 for tensor-core GPUs, float32 otherwise. Softmax outputs stay float32."""
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")


# ---------------------------------------------------------------------- the JAX backend
# On JAX the same ``--runtime_strategy`` names choose a ``keras.distribution`` (the engine Keras
# ships for JAX): data parallel over the visible devices, variables replicated, each global batch
# split along its first axis; XLA (GSPMD) sums the gradients across devices inside the compiled
# step. ``multi_worker`` starts ``jax.distributed`` first (``keras.distribution.initialize``: the
# processes come from KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES and
# KERAS_DISTRIBUTION_PROCESS_ID, or from a TPU pod's own environment).


def jax_distribution(name: str):
    """The ``keras.distribution.DataParallel`` that strategy ``name`` means on JAX; None where it
    means one device: ``one_device``, or ``auto`` with one device. ``mirrored`` spans every local
    device, CPUs included (how tests exercise it, with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``). Nothing is set globally: build the
    model's variables under ``distribution.scope()`` (they are then replicated) and lay each batch
    out with ``shard_batch``; code outside that scope (M2's and M3's ``fit``, small models) runs on
    one device as it does on TensorFlow."""
    if name not in STRATEGIES:
        raise errors.ModelConfigError(f"strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    if name == "multi_worker":
        keras.distribution.initialize()
    devices = keras.distribution.list_devices()
    if name == "one_device" or (name == "auto" and len(devices) <= 1):
        log.info("keras.distribution: none (one device, %s)", devices[0] if devices else "cpu")
        return None
    log.info("keras.distribution DataParallel over %d device(s): %s", len(devices), ", ".join(devices))
    return keras.distribution.DataParallel(devices=devices)


def jax_worker_share() -> tuple[int, int]:
    """(this process's index, number of processes) under ``jax.distributed``; (0, 1) alone.
    Process 0 is the chief (checkpoints, logs, outputs)."""
    import jax

    return jax.process_index(), jax.process_count()


def jax_local_distribution():
    """Data parallel over this JAX process's own devices: the JAX form of ``local_strategy``, for
    work split by process (prediction: a step over every process's devices would make the
    processes wait on each other, step by step)."""
    import jax

    devices = [f"{device.platform}:{device.id}" for device in jax.local_devices()]
    log.info("this process's own %d device(s), for work split by process", len(devices))
    return keras.distribution.DataParallel(devices=devices)


def shard_batch(distribution, batch):
    """``batch`` (a nest of arrays whose first axis is this process's part of the global batch)
    laid out over ``distribution``'s devices along that axis (``get_data_layout``); as it is
    without a distribution. Under several processes (``multi_worker``) each gives its own part
    and the parts form the global batch, in process order (``jax.make_array_from_process_local_data``:
    one process alone gives the whole batch)."""
    if distribution is None:
        return batch
    import jax

    def lay_out(x):
        layout = distribution.get_data_layout(x.shape)
        return jax.make_array_from_process_local_data(layout.backend_layout, x)

    return keras.tree.map_structure(lay_out, batch)
