"""Trains M1 by the procedure of appendix A.1, on TensorFlow or JAX; resumable after a kill.

Appendix A.1, as configuration (``geoloc_tf.m1.config.M1Config``):

1. start from ImageNet weights (``init_checkpoint``: slim's inception_v4.ckpt or a Keras file);
2. Adagrad training cycles with class-balanced sampling (``data_pipelines.sampler``): class c is
   drawn with probability proportional to count_c ** alpha, alpha = 0 (all classes equal) in the
   first cycle and raised cycle by cycle (``alpha_schedule``); an epoch starts at num_cells * 200
   examples and grows 6 % per epoch;
3. each cycle starts from the previous cycle's weights with a fresh Adagrad ("previous weights
   loaded and the model re-trained with a reduced bias": we read "re-trained" as a new optimizer
   run, so Adagrad's accumulators, which only shrink the step, start again);
4. a final SGD phase without class bias, the full data set per epoch, and a learning rate that falls
   linearly by ``sgd_decay_per_epoch`` (4 %) of its initial value every epoch.

One loop serves both Keras backends: the sampler, the tf.data input, progress, history,
validation, checkpoints and TensorBoard are shared; the train step is the backend's (``_engine``).
On TensorFlow it is tf.distribute's custom training loop (``_TfEngine``); on JAX a ``jax.jit``
step through Keras' stateless API, data parallel through ``keras.distribution`` (``_JaxEngine``).
With ``augment_on="device"`` the step first turns a batch's packed crops into images
(``geoloc_tf.m1.device_augment``). Resumability: ``geoloc_tf.m1.checkpoints``.

Several partitions at once (``--mesh_partition_factors``; PlaNet, CPlaNet): the loop trains
``geoloc_tf.m1.partitions``' multi-head model (one cross-entropy per partition, summed) and saves its
one-output inference model as ``m1.keras``; checkpoints hold the multi-head model's variables.

TensorBoard (``tensorboard_dir``): per epoch loss, cell accuracy, learning rate, sampler alpha and
epoch size, and accuracy at 1/25/200/750/2500 km on a fixed random validation subset
(``geoloc_tf.m1.validation``); per ``log_every_steps`` the training loss.

With ``label_smoothing_km`` the target is PIGEON's haversine-smoothed one (``geoloc_tf.m1.targets``),
made in the step from the photos' true locations, which the batches then carry in their label.

With ``precise_bn_photos`` batch normalization's statistics are recomputed with the current weights
(``geoloc_tf.m1.batch_norm``) after each epoch, before its validation and its checkpoint, so both
the validation figures and ``m1.keras`` use statistics of the final weights, not moving averages
that trail them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from data_pipelines import input_pipeline, labels
from data_pipelines.config import InputConfig
from data_pipelines.dataset import WrittenDataset
from data_pipelines.sampler import CurriculumSampler, EpochPlan
from geoloc_tf import distribute, errors
from geoloc_tf.m1 import backbones, batch_norm, slim_checkpoint, targets
from geoloc_tf.m1.checkpoints import Position, TrainingCheckpoints, read_history, write_history
from geoloc_tf.m1.config import M1Config
from geoloc_tf.m1.device_augment import augments_on_device, images_for_model
from geoloc_tf.m1.partitions import M1Models, with_partition_heads
from geoloc_tf.m1.validation import evaluate, photo_subset, validation_subset
from geoloc_tf.run_layout import model_file_name
from geoloc_tf.runtime_config import RuntimeConfig
from geoloc_tf.saving import save_keras
from mesh.partitions import parent_cells
from mesh.progress import Progress

log = logging.getLogger(__name__)

TRAIN_SPLIT = "m1_train"


@dataclasses.dataclass(frozen=True)
class M1TrainResult:
    model_path: str
    global_steps: int
    epochs: int
    history: list[dict[str, Any]]


def train_m1(
    data: WrittenDataset,
    mesh: Any,
    out_dir: Path | str,
    tensorboard_dir: Path | str,
    config: M1Config,
    runtime: RuntimeConfig = RuntimeConfig(),
    *,
    seed: int,
    partitions: Sequence[Any] = (),
) -> M1TrainResult:
    """Trains M1 on ``data``'s M1 training split, labelled by ``mesh``; resumes from ``out_dir``.

    ``mesh`` needs ``num_cells``, ``locate(lat, lon)`` and ``imagery_centroids``. ``seed`` (the
    run's one seed) draws the sampler's copies, the validation subset and, with
    ``runtime.deterministic``, the input order. Writes ``out_dir/m1.keras`` (atomically, at the end),
    ``out_dir/history.json``, checkpoints under ``out_dir/checkpoints/``.

    ``partitions``: extra, coarser meshes (``mesh.partitions``), one more softmax head each; the
    saved model still gives one distribution over ``mesh``'s cells (``geoloc_tf.m1.partitions``).
    """
    out_dir = Path(out_dir)
    distribute.set_precision(runtime.mixed_precision)
    engine = _engine(runtime, config)
    if config.global_batch_size % engine.replicas:
        raise errors.ModelConfigError(
            f"global batch size {config.global_batch_size} is not divisible by the {engine.replicas} replicas"
        )
    train_labels = labels.shard_labels(data, TRAIN_SPLIT, mesh)
    counts = labels.class_counts(np.concatenate(train_labels), mesh.num_cells)
    if counts.sum() == 0:
        raise errors.ModelConfigError("no M1 training photo falls in a kept mesh cell")
    sampler = CurriculumSampler(counts, config.sampler, seed=seed)
    validation = validation_subset(
        data, mesh, config.validation_photos, config.image_size, config.global_batch_size, seed
    )
    calibration = photo_subset(
        data,
        mesh,
        TRAIN_SPLIT,
        config.precise_bn_photos,
        config.image_size,
        config.global_batch_size,
        seed,
        stream=11,
        split_labels=train_labels,
    )
    input_config = training_input_config(config, runtime, seed, engine.on_device)
    parent_maps = [parent_cells(mesh, extra) for extra in partitions]
    with engine.scope():
        model = backbones.build_m1_model(config.backbone, config.model_config(mesh.num_cells))
        models = with_partition_heads(model, parent_maps, [extra.num_cells for extra in partitions])
    engine.set_model(models, input_config, _smoothing(config, mesh))
    checkpoints = TrainingCheckpoints(
        out_dir / "checkpoints" if engine.chief else Path(tempfile.mkdtemp(prefix="m1_worker")),
        models.training,
        engine.scope,
    )
    start_epoch = checkpoints.start_epoch()
    if not checkpoints.resuming and config.init_checkpoint:
        report = slim_checkpoint.initialize_from(model, config.init_checkpoint)
        log.info(
            "M1 initialized from %s (%d variables not loaded)", config.init_checkpoint, len(report.not_loaded)
        )

    writer = tf.summary.create_file_writer(str(tensorboard_dir)) if engine.chief else None
    history = read_history(out_dir, start_epoch) if checkpoints.resuming else []
    finished = checkpoints.resuming and start_epoch >= config.total_epochs
    position = checkpoints.restore_finished() if finished else Position(epoch=start_epoch)
    phase = None
    for epoch in range(start_epoch, config.total_epochs):
        plan = sampler.plan(epoch)
        if plan.cycle != phase:
            with engine.scope():
                optimizer = _optimizer(plan, config, runtime)
                optimizer.build(models.training.trainable_variables)
            position = checkpoints.begin_phase(plan.cycle, optimizer) or position
            engine.begin_phase(optimizer)
            phase = plan.cycle
        optimizer.learning_rate.assign(config.learning_rate(epoch))
        record = _train_epoch(
            engine, data, train_labels, sampler, plan, position, checkpoints, config, input_config, writer
        )
        record["augment_on"] = "device" if engine.on_device else "host"
        record["precise_bn_photos"] = _recalibrate(model, calibration)
        record.update(evaluate(engine.predict, validation, mesh))
        position = Position(epoch=epoch + 1, global_step=position.global_step)
        history.append(record)
        _log_epoch(record, config)
        if writer is not None:
            _write_epoch_summaries(writer, record, position.global_step)
        if engine.chief:
            write_history(out_dir, history)
        checkpoints.save(position)

    model_path = out_dir / model_file_name("m1")
    if engine.chief:
        save_keras(models.inference, str(model_path))
    return M1TrainResult(str(model_path), position.global_step, config.total_epochs, history)


def _recalibrate(model: keras.Model, calibration) -> int:
    """Precise BN (``geoloc_tf.m1.batch_norm``) over the calibration photos; 0 without them. The
    statistics go into the checkpoint saved after validation and into m1.keras."""
    if calibration is None:
        return 0
    started = time.monotonic()
    images = (features["image"] for features, _ in calibration.dataset.as_numpy_iterator())
    seen = batch_norm.recalibrate(model, images)
    log.info(
        "M1 batch-norm statistics recomputed on %d training photos in %.1f s",
        seen,
        time.monotonic() - started,
    )
    return seen


def training_input_config(
    config: M1Config, runtime: RuntimeConfig, seed: int, on_device: bool
) -> InputConfig:
    """The input pipeline of M1's training batches (packed crops when ``on_device``)."""
    return InputConfig(
        image_size=config.image_size,
        global_batch_size=config.global_batch_size,
        training=True,
        deterministic=runtime.deterministic,
        seed=seed,
        shuffle_buffer=config.shuffle_buffer,
        area_range=(config.crop_area_min, 1.0),
        color_jitter=config.color_jitter,
        augment_on_device=on_device,
        autotune=runtime.input_autotune,
        with_location=config.label_smoothing_km > 0,
    )


def _smoothing(config: M1Config, mesh: Any):
    """None (one-hot targets), or with ``label_smoothing_km`` the function from a batch's true
    lat/lon to its haversine-smoothed targets over ``mesh``'s label points (its
    ``imagery_centroids``, where the evaluation scores a cell), held as constants of the step."""
    if config.label_smoothing_km <= 0:
        return None
    points = np.asarray(mesh.imagery_centroids, np.float32)
    return functools.partial(
        targets.haversine_targets,
        cell_lat=points[:, 0],
        cell_lon=points[:, 1],
        tau_km=config.label_smoothing_km,
    )


def _cell(label):
    """A batch's cells: the label itself, or its "cell" (``InputConfig.with_location``)."""
    return label["cell"] if isinstance(label, dict) else label


def _cell_and_target(label, smoothing):
    """A batch's cells, and its smoothed targets (None without smoothing)."""
    if smoothing is None:
        return _cell(label), None
    return _cell(label), smoothing(label["lat"], label["lon"])


def _optimizer(plan: EpochPlan, config: M1Config, runtime: RuntimeConfig) -> keras.optimizers.Optimizer:
    """The phase's optimizer: Adagrad in the cycles, SGD in the natural phase; under mixed
    precision behind dynamic loss scaling (what ``Model.compile`` would add)."""
    if plan.natural:
        optimizer = keras.optimizers.SGD(learning_rate=config.sgd_learning_rate, momentum=config.sgd_momentum)
    else:
        optimizer = keras.optimizers.Adagrad(learning_rate=config.adagrad_learning_rate)
    if runtime.mixed_precision:
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _engine(runtime: RuntimeConfig, config: M1Config) -> "_TfEngine | _JaxEngine":
    """The train step of this process' Keras backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        return _JaxEngine(runtime, config)
    if backend != "tensorflow":
        raise errors.ModelConfigError(
            f"M1 training on the Keras backend {backend!r}; expected tensorflow or jax"
        )
    return _TfEngine(runtime, config)


class _TfEngine:
    """M1's train step on the TensorFlow backend: tf.distribute's custom training loop.

    ``strategy.run`` of one step per batch, the gradients summed across replicas by the optimizer.
    It takes the batches of every replica as they come, so a replica's packed crops
    (``augment_on="device"``) may have a length of their own. The variables always hold the
    training state (``sync`` has nothing to do).
    """

    def __init__(self, runtime: RuntimeConfig, config: M1Config):
        self.strategy = distribute.make_strategy(runtime.strategy)
        self.chief = distribute.is_chief(self.strategy)
        self.replicas = self.strategy.num_replicas_in_sync
        self.pipelines = _num_input_pipelines(self.strategy)
        self.on_device = augments_on_device(config.augment_on, self.strategy)
        self.jit_compile = runtime.jit_compile

    def scope(self):
        return self.strategy.scope()

    def set_model(self, models: M1Models, input_config: InputConfig, smoothing=None) -> None:
        """Trains ``models.training``; validation predicts with ``models.inference``."""
        self.model, self.parent_maps, self.input_config = models.training, models.parent_maps, input_config
        self.smoothing = smoothing
        with self.strategy.scope():
            self.loss = keras.metrics.Mean(name="loss")
            self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        inference = models.inference
        self.predict = tf.function(lambda images: inference(images, training=False))

    def begin_phase(self, optimizer: keras.optimizers.Optimizer) -> None:
        """Compiles the step of a phase's optimizer: each replica augments its batch
        (``images_for_model``), runs forward and backward, and the optimizer sums the replicas'
        gradients. The replica's loss is divided by the number of replicas so that the sum is the
        gradient of the global batch's mean loss (plus the weight decay), as ``Model.fit`` does."""
        model, replicas = self.model, self.replicas

        def replica_step(features, label):
            images = images_for_model(features, self.input_config)
            cell, target = _cell_and_target(label, self.smoothing)
            with tf.GradientTape() as tape:
                outputs = model(images, training=True)
                loss = _loss(cell, outputs, model.losses, self.parent_maps, target)
                scaled = optimizer.scale_loss(loss / replicas)
            gradients = tape.gradient(scaled, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            self.loss.update_state(loss, sample_weight=tf.shape(cell)[0])
            self.accuracy.update_state(cell, _main_output(outputs))

        replica_step = tf.function(replica_step, jit_compile=self.jit_compile, reduce_retracing=True)

        @tf.function
        def step(iterator):
            features, label = next(iterator)
            self.strategy.run(replica_step, args=(features, label))

        self._step = step

    def epoch(self, dataset_fn) -> None:
        """Starts an epoch on the batches of ``dataset_fn(input_context)``."""
        self._iterator = iter(self.strategy.distribute_datasets_from_function(dataset_fn))
        self.loss.reset_state()
        self.accuracy.reset_state()

    def step(self) -> None:
        self._step(self._iterator)

    def metrics(self) -> tuple[float, float]:
        """The epoch's mean training loss and cell accuracy so far, over every replica."""
        return float(self.loss.result()), float(self.accuracy.result())

    def sync(self) -> None:
        pass


class _JaxEngine:
    """M1's train step on the JAX backend, through Keras' stateless API.

    The step is a pure function of (trainable, non-trainable, optimizer variables, running
    metrics, batch), ``jax.jit``-compiled once per phase (and once per shape of packed crops):
    ``model.stateless_call`` in the loss, ``jax.value_and_grad``, ``optimizer.stateless_apply``.
    The state lives outside the Keras variables during an epoch and is written back into them by
    ``sync`` (checkpoints, validation, the end of the epoch). Data parallel through the run's
    ``keras.distribution`` (``distribute.jax_distribution``): variables are replicated, each batch
    is split along its first axis and XLA sums the gradients across devices.
    """

    def __init__(self, runtime: RuntimeConfig, config: M1Config):
        import jax

        self.jax = jax
        self.distribution = distribute.jax_distribution(runtime.strategy)
        process, self.pipelines = distribute.jax_worker_share()
        self.process = process
        self.chief = process == 0
        self.replicas = 1 if self.distribution is None else int(self.distribution.device_mesh.devices.size)
        self.on_device = augments_on_device(config.augment_on, self.distribution)

    def scope(self):
        return contextlib.nullcontext() if self.distribution is None else self.distribution.scope()

    def set_model(self, models: M1Models, input_config: InputConfig, smoothing=None) -> None:
        """Trains ``models.training``; validation predicts with ``models.inference``."""
        self.model, self.parent_maps, self.input_config = models.training, models.parent_maps, input_config
        self.smoothing = smoothing
        self.predict = models.inference.predict_on_batch

    def begin_phase(self, optimizer: keras.optimizers.Optimizer) -> None:
        jax, model = self.jax, self.model
        self.optimizer = optimizer

        def loss_and_updates(trainable, non_trainable, optimizer_variables, features, label):
            images = images_for_model(features, self.input_config)
            cell, target = _cell_and_target(label, self.smoothing)
            outputs, non_trainable, losses = model.stateless_call(
                trainable, non_trainable, images, training=True, return_losses=True
            )
            loss = _loss(cell, outputs, losses, self.parent_maps, target)
            probabilities = _main_output(outputs)
            with keras.StatelessScope(state_mapping=list(zip(optimizer.variables, optimizer_variables))):
                scaled = optimizer.scale_loss(loss)
            return scaled, (loss, probabilities, non_trainable)

        gradient = jax.value_and_grad(loss_and_updates, has_aux=True)

        def step(state, metrics, features, label):
            trainable, non_trainable, optimizer_variables = state
            (_, (loss, probabilities, non_trainable)), gradients = gradient(
                trainable, non_trainable, optimizer_variables, features, label
            )
            trainable, optimizer_variables = optimizer.stateless_apply(
                optimizer_variables, gradients, trainable
            )
            cell = _cell(label)
            count = cell.shape[0]
            correct = keras.ops.sum(keras.ops.argmax(probabilities, axis=-1) == cell)
            loss_sum, correct_sum, seen = metrics
            metrics = (loss_sum + loss * count, correct_sum + correct.astype("int32"), seen + count)
            return (trainable, non_trainable, optimizer_variables), metrics

        self._step = jax.jit(step, donate_argnums=(0, 1))

    def epoch(self, dataset_fn) -> None:
        """Starts an epoch on the batches of ``dataset_fn(input_context)``: one input pipeline
        per process, each giving its share of the global batch."""
        context = tf.distribute.InputContext(
            num_input_pipelines=self.pipelines,
            input_pipeline_id=self.process,
            num_replicas_in_sync=self.pipelines,
        )
        self._iterator = dataset_fn(context).as_numpy_iterator()
        self._state = tuple([variable.value for variable in group] for group in self._variables())
        zero = self.jax.numpy.zeros
        self._metrics = (zero((), "float32"), zero((), "int32"), zero((), "int32"))

    def step(self) -> None:
        features, label = next(self._iterator)
        features, label = _lay_out(self.distribution, features, label)
        self._state, self._metrics = self._step(self._state, self._metrics, features, label)

    def metrics(self) -> tuple[float, float]:
        loss_sum, correct, seen = (float(value) for value in self._metrics)
        return loss_sum / max(seen, 1), correct / max(seen, 1)

    def sync(self) -> None:
        """Writes the step's state into the model's and the optimizer's variables (until then
        they hold the epoch's start, whose buffers the step took over: ``donate_argnums``)."""
        for group, values in zip(self._variables(), self._state):
            for variable, value in zip(group, values):
                variable.assign(value)

    def _variables(self) -> tuple[list, list, list]:
        """The variables of the step's state, in its order."""
        return (
            self.model.trainable_variables,
            self.model.non_trainable_variables,
            self.optimizer.variables,
        )


def _lay_out(distribution, features, label):
    """The batch split over ``distribution``'s devices along its first axis: the label and the
    images, or the packed crops' per-crop arrays (``augment_on="device"``); their flat pixel buffer
    (one array for the whole batch) stays whole and the step unpacks it on every device."""
    if distribution is None:
        return features, label
    if not isinstance(features, dict):
        return distribute.shard_batch(distribution, (features, label))
    rows = len(_cell(label))
    per_crop = {key: value for key, value in features.items() if value.ndim and len(value) == rows}
    per_crop, label = distribute.shard_batch(distribution, (per_crop, label))
    return {**features, **per_crop}, label


def _main_output(outputs):
    """The main mesh's probabilities among a model's outputs (the first, with partition heads)."""
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def _loss(label, probabilities, model_losses, parent_maps=(), target=None):
    """The mean cross-entropy of a batch plus the model's own losses (the weight decay).

    The main mesh's term is against the one-hot of the cell ``label``, or with ``target``
    ([batch, cells], rows summing to 1: the haversine-smoothed targets) ``-sum_i target_i * log p_i``.
    With extra partitions, ``probabilities`` is ``[main, head_1, ...]`` and each head adds, with
    weight 1 (PlaNet and CPlaNet train every partition's classifier alike), the mean cross-entropy
    of its cell ``parent_maps[k][label]``: the partition cell holding the label cell's label point,
    exact for nested meshes, an approximation for a main cell straddling two partition cells. The
    smoothing applies to the main mesh only (the partition heads keep their one-hot cells).
    """
    probabilities, *heads = probabilities if parent_maps else (probabilities,)
    if target is None:
        crossentropy = keras.losses.sparse_categorical_crossentropy(label, probabilities)
    else:
        crossentropy = keras.losses.categorical_crossentropy(target, probabilities)
    loss = keras.ops.mean(crossentropy)
    for head, parents in zip(heads, parent_maps):
        head_label = keras.ops.take(keras.ops.convert_to_tensor(parents.astype(np.int32)), label, axis=0)
        loss = loss + keras.ops.mean(keras.losses.sparse_categorical_crossentropy(head_label, head))
    for term in model_losses:
        loss = loss + keras.ops.cast(term, loss.dtype)
    return loss


def _train_epoch(
    engine: "_TfEngine | _JaxEngine",
    data: WrittenDataset,
    train_labels,
    sampler: CurriculumSampler,
    plan: EpochPlan,
    position: Position,
    checkpoints: TrainingCheckpoints,
    config: M1Config,
    input_config: InputConfig,
    writer,
) -> dict:
    """Trains epoch ``plan.epoch`` from step ``position.step_in_epoch`` on (a resumed run skips
    the batches already trained); advances ``position`` and checkpoints it every
    ``checkpoint_every_steps`` steps."""
    epoch, first_step = plan.epoch, position.step_in_epoch
    copies = sampler.copies(train_labels, epoch)
    examples = int(sum(int(c.sum()) for c in copies))
    steps = _steps_per_epoch(copies, config.global_batch_size, engine.pipelines)
    if steps == 0:
        raise errors.ModelConfigError(
            f"epoch {epoch} holds {examples} examples, fewer than one global batch of "
            f"{config.global_batch_size}; lower M1Config.global_batch_size"
        )

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        ds = input_pipeline.make_dataset(
            data,
            TRAIN_SPLIT,
            train_labels,
            input_config,
            copies_by_shard=copies,
            epoch=epoch,
            input_context=context,
        )
        replicas_per_pipeline = context.num_replicas_in_sync // context.num_input_pipelines
        return ds.skip(first_step * replicas_per_pipeline)

    engine.epoch(dataset_fn)
    started = time.monotonic()
    batch = config.global_batch_size
    desc = f"M1 epoch {epoch + 1}/{config.total_epochs}"
    # A bar on a terminal, a line every few seconds elsewhere; the epoch's own line closes it.
    with Progress((steps - first_step) * batch, "images", desc, log=log, final_line=False) as progress:
        for done in range(first_step + 1, steps + 1):
            engine.step()
            progress.update(batch)
            position.step_in_epoch, position.global_step = done, position.global_step + 1
            if writer is not None and position.global_step % config.log_every_steps == 0:
                with writer.as_default(step=position.global_step):
                    tf.summary.scalar("train/loss_step", engine.metrics()[0])
            if done % config.checkpoint_every_steps == 0:
                engine.sync()
                checkpoints.save(position)
    loss, accuracy = engine.metrics()  # waits for the last step
    engine.sync()
    seconds = time.monotonic() - started
    trained = (steps - first_step) * config.global_batch_size
    return {
        "epoch": epoch,
        "phase": "sgd" if plan.natural else f"adagrad_cycle_{plan.cycle}",
        "alpha": plan.alpha,
        "epoch_size": plan.size,
        "examples": examples,
        "steps": steps,
        "resumed_at_step": first_step,
        "learning_rate": config.learning_rate(epoch),
        "loss": loss,
        "accuracy": accuracy,
        "seconds": round(seconds, 2),
        "images_per_second": round(trained / max(seconds, 1e-9), 1),
        "global_step": position.global_step,
    }


def _num_input_pipelines(strategy: tf.distribute.Strategy) -> int:
    """One input pipeline per worker (distribute_datasets_from_function)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec() if resolver is not None else None
    workers = (spec.num_tasks("worker") if spec and "worker" in spec.jobs else 0) + (
        spec.num_tasks("chief") if spec and "chief" in spec.jobs else 0
    )
    return max(1, workers)


def _steps_per_epoch(copies: list[np.ndarray], global_batch: int, pipelines: int) -> int:
    """Full global batches every pipeline can deliver: pipeline p reads shards p, p + n, ... (the
    input pipeline's sharding), each contributing global / n examples per step."""
    per_pipeline_batch = global_batch // pipelines
    held = [sum(int(c.sum()) for c in copies[p::pipelines]) for p in range(pipelines)]
    return min(h // per_pipeline_batch for h in held)


def _log_epoch(record: dict, config: M1Config) -> None:
    km = " ".join(f"{k[13:-2]}km {record[k]:.1f}%" for k in record if k.startswith("val_accuracy_"))
    log.info(
        "M1 epoch %d/%d [%s, alpha %.2f, lr %.4g] %d examples, %d steps, loss %.3f, acc %.3f, "
        "%.0f img/s | val %s",
        record["epoch"] + 1,
        config.total_epochs,
        record["phase"],
        record["alpha"],
        record["learning_rate"],
        record["examples"],
        record["steps"],
        record["loss"],
        record["accuracy"],
        record["images_per_second"],
        km or "-",
    )


def _write_epoch_summaries(writer, record: dict, step: int) -> None:
    with writer.as_default(step=step):
        tf.summary.scalar("train/loss", record["loss"])
        tf.summary.scalar("train/cell_accuracy", record["accuracy"])
        tf.summary.scalar("train/learning_rate", record["learning_rate"])
        tf.summary.scalar("train/images_per_second", record["images_per_second"])
        tf.summary.scalar("sampler/alpha", record["alpha"])
        tf.summary.scalar("sampler/epoch_size", record["epoch_size"])
        for key, value in record.items():
            if key.startswith("val_") and isinstance(value, float) and math.isfinite(value):
                tf.summary.scalar(f"validation/{key[4:]}", value)
    writer.flush()
