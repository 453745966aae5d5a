"""Trains M1 with the procedure of the paper's appendix A.1, on tf.distribute, resumable after a kill.

Appendix A.1, as configuration (`M1TrainConfig`, every number a flag of the runner):

1. start from ImageNet weights (`init_checkpoint`: slim's inception_v4.ckpt or a Keras file);
2. Adagrad training cycles with class-balanced sampling (`data_pipelines.sampler`): class c is drawn
   with probability proportional to count_c ** alpha, alpha = 0 (all classes equal) in the first
   cycle and raised cycle by cycle (`sampler.alpha_schedule`); an epoch starts at num_cells * 200
   examples and grows 6 % per epoch;
3. each cycle starts from the previous cycle's weights with a fresh Adagrad ("previous weights
   loaded and the model re-trained with a reduced bias": we read "re-trained" as a new optimizer
   run, so Adagrad's accumulators, which only shrink the step, start again);
4. a final SGD phase without class bias, the full data set per epoch, and a learning rate that falls
   linearly by `sgd_decay_per_epoch` (4 %) of its initial value every epoch.

Resumability: the model, the optimizer of the current phase, the epoch and the number of steps done
in it are saved in a `tf.train.Checkpoint` every `checkpoint_every_steps` steps and at the end of
every epoch. A rerun after kill -9 restores them and skips the batches already trained in the
interrupted epoch, so it ends at the same step count as an uninterrupted run. (Keras 3's
`BackupAndRestore` restores the epoch but replays an interrupted epoch from its first batch, which
adds steps; hence our own small callback.) The steps of an epoch are known in advance: the sampler's
plan of copies is a function of (seed, epoch), and batches are full (`drop_remainder`).

TensorBoard (`tensorboard_dir`): per epoch loss, cell accuracy, learning rate, sampler alpha and
epoch size, and accuracy at 1/25/200/750/2500 km on a fixed random validation subset (predicted
cell's imagery centroid vs. the true location, §3.1.3); per `log_every_steps` the training loss.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from data_pipelines import input_pipeline, labels
from data_pipelines.config import InputConfig, SamplerConfig
from data_pipelines.dataset import WrittenDataset
from data_pipelines.sampler import CurriculumSampler, EpochPlan
from geoloc_tf import distribute, errors
from geoloc_tf.saving import save_keras
from geoloc_tf.m1 import backbones, inception_v4, slim_checkpoint
from mesh.atomic import write_text_atomic
from mesh.geodesy import ACCURACY_THRESHOLDS_KM, accuracy_at_thresholds, great_circle_km

log = logging.getLogger(__name__)

TRAIN_SPLIT = "m1_train"
VALIDATION_SPLIT = "m1_val"
MODEL_FILE = "m1.keras"
HISTORY_FILE = "history.json"
AUGMENT_ON = ("auto", "device", "host")


@dataclasses.dataclass(frozen=True)
class M1TrainConfig:
    """M1's network and appendix A.1's training procedure."""

    backbone: str = "inception_v4"
    image_size: int = inception_v4.DEFAULT_IMAGE_SIZE  # §3.1.2: 299 px
    width_multiplier: float = 1.0  # 1.0: the published network
    blocks: tuple[int, int, int] = (4, 7, 3)  # Inception-A, -B, -C blocks (Szegedy et al. 2016)
    dropout_keep: float = 0.8  # Inception-v4's keep probability before the logits
    # Moving-average decay of batch normalization (slim: 0.9997, for ~10^6 steps). The moving
    # statistics are what inference uses; they forget their initial mean 0 / variance 1 only after
    # ~1 / (1 - decay) steps (3,333 at 0.9997), so a run of a few hundred steps needs ~0.99.
    batch_norm_decay: float = 0.9997
    global_batch_size: int = 256  # summed over replicas; each replica gets global / replicas
    adagrad_learning_rate: float = 0.01  # A.1 uses Adagrad; the rate is not given
    sampler: SamplerConfig = SamplerConfig()  # A.1: cells x 200, +6 %/epoch, alpha per cycle
    sgd_learning_rate: float = 0.01  # A.1: "between 0.004 and 0.02"
    sgd_decay_per_epoch: float = 0.04  # A.1: "reduced at 4% with each epoch", of the initial rate
    sgd_epochs: int = 24
    sgd_momentum: float = 0.0  # A.1 says SGD; plain SGD unless set
    crop_area_min: float = 0.08  # Inception preprocessing: crops cover [0.08, 1] of the photo
    color_jitter: bool = True  # Inception preprocessing's brightness/saturation/hue/contrast
    init_checkpoint: str | None = None  # A.1: "pre-trained on ImageNet"
    strategy: str = "auto"
    # Where the training augmentation runs: "device" (the host only decodes the random crop; a
    # DeviceAugment layer in the training model resizes, flips, jitters and scales on the
    # accelerator: input_pipeline.device_augment), "host" (all on the host, float32 batches),
    # or "auto": "device" when the strategy trains on GPUs or TPUs, "host" on CPUs, where the
    # resize costs the same CPU either way and the host form needs no unpacking step.
    augment_on: str = "auto"
    mixed_precision: bool = False
    jit_compile: bool = False
    input_autotune: bool = False  # tf.data's autotuner for the training input (InputConfig.autotune)
    checkpoint_every_steps: int = 100
    log_every_steps: int = 20
    validation_photos: int = 2048  # fixed random subset of M1 validation, scored every epoch
    thresholds_km: tuple[float, ...] = ACCURACY_THRESHOLDS_KM
    deterministic_input: bool = False  # same batches on a rerun (slower input pipeline)
    shuffle_buffer: int = 10_000
    seed: int = 0

    @property
    def biased_epochs(self) -> int:
        return len(self.sampler.alpha_schedule) * self.sampler.epochs_per_cycle

    @property
    def total_epochs(self) -> int:
        return self.biased_epochs + self.sgd_epochs

    def model_config(self, num_cells: int) -> inception_v4.InceptionV4Config:
        a, b, c = self.blocks
        return inception_v4.InceptionV4Config(
            num_cells=num_cells, image_size=self.image_size, width_multiplier=self.width_multiplier,
            num_blocks_a=a, num_blocks_b=b, num_blocks_c=c, dropout_keep_prob=self.dropout_keep,
            batch_norm_decay=self.batch_norm_decay)

    def learning_rate(self, epoch: int) -> float:
        """Adagrad's rate during the cycles; the linearly falling SGD rate afterwards."""
        if epoch < self.biased_epochs:
            return self.adagrad_learning_rate
        k = epoch - self.biased_epochs
        return self.sgd_learning_rate * max(0.0, 1.0 - self.sgd_decay_per_epoch * k)


@dataclasses.dataclass(frozen=True)
class M1TrainResult:
    model_path: str
    global_steps: int
    epochs: int
    history: list[dict[str, Any]]


class _Progress(keras.callbacks.Callback):
    """Saves the training state every N steps and logs the loss to TensorBoard."""

    def __init__(self, manager: tf.train.CheckpointManager, state: dict[str, tf.Variable],
                 first_step: int, config: M1TrainConfig, writer, chief: bool):
        super().__init__()
        self.manager, self.state, self.first_step = manager, state, first_step
        self.config, self.writer, self.chief = config, writer, chief

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self.state["global_step"].assign_add(1)
        done = self.first_step + batch + 1
        self.state["step_in_epoch"].assign(done)
        step = int(self.state["global_step"].numpy())
        if self.writer is not None and logs and step % self.config.log_every_steps == 0:
            with self.writer.as_default(step=step):
                tf.summary.scalar("train/loss_step", float(logs["loss"]))
        if done % self.config.checkpoint_every_steps == 0:
            self.manager.save(checkpoint_number=step)


def train_m1(data: WrittenDataset, mesh: Any, out_dir: Path | str, tensorboard_dir: Path | str,
             config: M1TrainConfig) -> M1TrainResult:
    """Trains M1 on `data`'s M1 training split, labelled by `mesh`; resumes from `out_dir`.

    `mesh` needs `num_cells`, `locate(lat, lon)` and `imagery_centroids`. Writes `out_dir/m1.keras`
    (atomically, at the end), `out_dir/history.json`, checkpoints under `out_dir/checkpoints/`.
    """
    out_dir = Path(out_dir)
    distribute.set_precision(config.mixed_precision)
    strategy = distribute.make_strategy(config.strategy)
    chief = distribute.is_chief(strategy)
    if config.global_batch_size % strategy.num_replicas_in_sync:
        raise errors.ModelConfigError(
            f"global batch size {config.global_batch_size} is not divisible by the "
            f"{strategy.num_replicas_in_sync} replicas")
    train_labels = labels.shard_labels(data, TRAIN_SPLIT, mesh)
    counts = labels.class_counts(np.concatenate(train_labels), mesh.num_cells)
    if counts.sum() == 0:
        raise errors.ModelConfigError("no M1 training photo falls in a kept mesh cell")
    sampler = CurriculumSampler(counts, config.sampler)
    validation = _validation_subset(data, mesh, config)

    on_device = augments_on_device(config, strategy)
    input_config = _train_input_config(config, on_device)
    with strategy.scope():
        model = backbones.build_m1_model(config.backbone, config.model_config(mesh.num_cells))
        # The model fit trains: M1 itself, or M1 behind the accelerator's half of augmentation
        # (same weights; m1.keras and the exports hold M1 alone).
        fit_model = _with_device_augment(model, input_config) if on_device else model
    state = {name: tf.Variable(0, dtype=tf.int64, trainable=False, name=name)
             for name in ("epoch", "step_in_epoch", "global_step")}
    checkpoint_dir = out_dir / "checkpoints" if chief else Path(tempfile.mkdtemp(prefix="m1_worker"))
    latest = tf.train.latest_checkpoint(str(checkpoint_dir))
    start_epoch = _read_state(latest, "epoch") if latest else 0
    if latest is None and config.init_checkpoint:
        report = slim_checkpoint.initialize_from(model, config.init_checkpoint)
        log.info("M1 initialized from %s (%d variables not loaded)", config.init_checkpoint,
                 len(report.not_loaded))

    writer = tf.summary.create_file_writer(str(tensorboard_dir)) if chief else None
    # A kill between writing history.json and the epoch's last checkpoint leaves a record of an
    # epoch that is trained again: keep only the epochs the checkpoint holds.
    history = [r for r in _read_history(out_dir) if r["epoch"] < start_epoch] if latest else []
    optimizer_phase = None
    manager = None
    checkpoint = None
    for epoch in range(start_epoch, config.total_epochs):
        plan = sampler.plan(epoch)
        if plan.cycle != optimizer_phase:
            with strategy.scope():
                optimizer = _optimizer(plan, config)
                fit_model.compile(optimizer=optimizer,
                                  loss=keras.losses.SparseCategoricalCrossentropy(),
                                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                                  jit_compile=config.jit_compile)
                fit_model.optimizer.build(model.trainable_variables)
            checkpoint = tf.train.Checkpoint(model=model, **state,
                                             **{f"optimizer_phase{plan.cycle}": fit_model.optimizer})
            manager = tf.train.CheckpointManager(checkpoint, str(checkpoint_dir), max_to_keep=2)
            if latest and optimizer_phase is None:
                checkpoint.restore(latest).expect_partial()
                log.info("M1 resumed from %s: epoch %d, step %d of it, %d steps in all", latest,
                         int(state["epoch"].numpy()), int(state["step_in_epoch"].numpy()),
                         int(state["global_step"].numpy()))
            optimizer_phase = plan.cycle
        first_step = int(state["step_in_epoch"].numpy()) if epoch == start_epoch else 0
        record = _train_epoch(fit_model, strategy, data, train_labels, sampler, plan, epoch,
                              first_step, manager, state, config, input_config, writer, chief)
        record["augment_on"] = "device" if on_device else "host"
        record.update(_evaluate(model, validation, mesh, config))
        state["epoch"].assign(epoch + 1)
        state["step_in_epoch"].assign(0)
        history.append(record)
        _log_epoch(record, config)
        if writer is not None:
            _write_epoch_summaries(writer, record, int(state["global_step"].numpy()))
        if chief:
            write_text_atomic(out_dir / HISTORY_FILE, json.dumps(history, indent=2))
        manager.save(checkpoint_number=int(state["global_step"].numpy()))

    model_path = out_dir / MODEL_FILE
    if chief:
        save_keras(model, str(model_path))
    return M1TrainResult(str(model_path), int(state["global_step"].numpy()), config.total_epochs,
                         history)


def _optimizer(plan: EpochPlan, config: M1TrainConfig) -> keras.optimizers.Optimizer:
    if plan.natural:
        return keras.optimizers.SGD(learning_rate=config.sgd_learning_rate,
                                    momentum=config.sgd_momentum)
    return keras.optimizers.Adagrad(learning_rate=config.adagrad_learning_rate)


def _read_state(checkpoint_path: str, name: str) -> int:
    reader = tf.train.load_checkpoint(checkpoint_path)
    return int(reader.get_tensor(f"{name}/.ATTRIBUTES/VARIABLE_VALUE"))


def augments_on_device(config: M1TrainConfig, strategy: tf.distribute.Strategy) -> bool:
    """``config.augment_on`` resolved for ``strategy`` (see ``M1TrainConfig``)."""
    if config.augment_on not in AUGMENT_ON:
        raise errors.ModelConfigError(
            f"augment_on={config.augment_on!r}; expected one of {', '.join(AUGMENT_ON)}")
    if config.augment_on != "auto":
        return config.augment_on == "device"
    try:
        devices = strategy.extended.worker_devices
    except (RuntimeError, NotImplementedError):  # the default strategy: TensorFlow's placement
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    return any(tf.DeviceSpec.from_string(d).device_type in ("GPU", "TPU") for d in devices)


def _train_input_config(config: M1TrainConfig, on_device: bool) -> InputConfig:
    return InputConfig(
        image_size=config.image_size, global_batch_size=config.global_batch_size, training=True,
        deterministic=config.deterministic_input, seed=config.seed,
        shuffle_buffer=config.shuffle_buffer, area_range=(config.crop_area_min, 1.0),
        color_jitter=config.color_jitter, augment_on_device=on_device,
        autotune=config.input_autotune)


def _with_device_augment(model: keras.Model, input_config: InputConfig) -> keras.Model:
    """``model`` fed by ``DeviceAugment``: takes the packed uint8 crops of the input pipeline's
    ``augment_on_device`` batches (a dict; ``pixels`` is one flat buffer, not per image), shares
    every weight with ``model``."""
    inputs = {
        "pixels": keras.Input((), dtype="uint8", name="pixels"),
        "size": keras.Input((2,), dtype="int32", name="size"),
        "flip": keras.Input((), dtype="float32", name="flip"),
        "color": keras.Input((4,), dtype="float32", name="color"),
    }
    images = DeviceAugment(input_config, name="device_augment")(inputs)
    return _PackedInputModel(inputs, model(images), name=f"{model.name}_with_device_augment")


class _PackedInputModel(keras.Model):
    """A functional model whose inputs differ in shape between replicas (packed crops).

    Under a strategy with several replicas, Keras 3's ``fit`` learns the input shapes by
    averaging the first batch across replicas (``_maybe_symbolic_build``), which needs equal
    shapes; each replica's packed crops have a length of their own. This model builds from its
    declared inputs instead (and so takes no batch from the iterator for it). Covered by
    tests/geoloc_tf/test_m1_trainer.py (MirroredStrategy over two CPUs with augment_on=device).
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), self.input)
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=(spec, tf.TensorSpec([None], tf.int32), None))


class DeviceAugment(keras.layers.Layer):
    """The accelerator's half of training augmentation (``input_pipeline.device_augment``):
    unpack, resize and flip the crops, colour jitter, scale to the model's value range."""

    def __init__(self, input_config: InputConfig, **kwargs):
        super().__init__(**kwargs)
        self.input_config = input_config

    def call(self, inputs):
        return input_pipeline.device_augment(inputs, self.input_config)

    def compute_output_shape(self, input_shape):
        size = self.input_config.image_size
        return (input_shape["size"][0], size, size, 3)


def _train_epoch(model, strategy, data, train_labels, sampler, plan: EpochPlan, epoch: int,
                 first_step: int, manager, state, config: M1TrainConfig,
                 input_config: InputConfig, writer, chief) -> dict:
    copies = sampler.copies(train_labels, epoch)
    examples = int(sum(int(c.sum()) for c in copies))
    steps = _steps_per_epoch(copies, config.global_batch_size, _num_input_pipelines(strategy))
    if steps == 0:
        raise errors.ModelConfigError(
            f"epoch {epoch} holds {examples} examples, fewer than one global batch of "
            f"{config.global_batch_size}; lower --m1_global_batch_size")
    learning_rate = config.learning_rate(epoch)
    model.optimizer.learning_rate.assign(learning_rate)
    per_pipeline_skip = first_step

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        ds = input_pipeline.make_dataset(data, TRAIN_SPLIT, train_labels, input_config,
                                         copies_by_shard=copies, epoch=epoch, input_context=context)
        replicas_per_pipeline = context.num_replicas_in_sync // context.num_input_pipelines
        return ds.skip(per_pipeline_skip * replicas_per_pipeline)

    dataset = strategy.distribute_datasets_from_function(dataset_fn)
    started = time.monotonic()
    progress = _Progress(manager, state, first_step, config, writer, chief)
    fit = model.fit(dataset, initial_epoch=epoch, epochs=epoch + 1, steps_per_epoch=steps - first_step,
                    callbacks=[progress], verbose=0, shuffle=False)
    seconds = time.monotonic() - started
    trained = (steps - first_step) * config.global_batch_size
    return {
        "epoch": epoch, "phase": "sgd" if plan.natural else f"adagrad_cycle_{plan.cycle}",
        "alpha": plan.alpha, "epoch_size": plan.size, "examples": examples, "steps": steps,
        "resumed_at_step": first_step, "learning_rate": learning_rate,
        "loss": float(fit.history["loss"][-1]), "accuracy": float(fit.history["accuracy"][-1]),
        "seconds": round(seconds, 2), "images_per_second": round(trained / max(seconds, 1e-9), 1),
        "global_step": int(state["global_step"].numpy()),
    }


def _num_input_pipelines(strategy: tf.distribute.Strategy) -> int:
    """One input pipeline per worker (distribute_datasets_from_function)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec() if resolver is not None else None
    workers = (spec.num_tasks("worker") if spec and "worker" in spec.jobs else 0) + (
        spec.num_tasks("chief") if spec and "chief" in spec.jobs else 0)
    return max(1, workers)


def _steps_per_epoch(copies: list[np.ndarray], global_batch: int, pipelines: int) -> int:
    """Full global batches every pipeline can deliver: pipeline p reads shards p, p + n, ... (the
    input pipeline's sharding), each contributing global / n examples per step."""
    per_pipeline_batch = global_batch // pipelines
    held = [sum(int(c.sum()) for c in copies[p::pipelines]) for p in range(pipelines)]
    return min(h // per_pipeline_batch for h in held)


@dataclasses.dataclass(frozen=True)
class _Validation:
    dataset: tf.data.Dataset
    photos: int


def _validation_subset(data: WrittenDataset, mesh, config: M1TrainConfig) -> _Validation | None:
    """A fixed random subset of M1 validation: whole random shards, then random photos in them.

    Reading only a few shards keeps the per-epoch cost bounded on a 2.7 M-photo split.
    """
    if config.validation_photos <= 0:
        return None
    lengths = data.shard_lengths(VALIDATION_SPLIT)
    if not sum(lengths):
        log.warning("M1 validation split is empty: no km accuracy during training")
        return None
    rng = np.random.default_rng([config.seed, 7])
    order = rng.permutation(len(lengths))
    chosen, held = [], 0
    for shard in order:
        chosen.append(shard)
        held += lengths[shard]
        if held >= 2 * config.validation_photos:
            break
    candidates = np.concatenate([np.stack([np.full(lengths[s], s), np.arange(lengths[s])], 1)
                                 for s in chosen])
    pick = candidates[rng.choice(len(candidates), size=min(config.validation_photos,
                                                           len(candidates)), replace=False)]
    copies = [np.zeros(n, np.int32) for n in lengths]
    for shard, index in pick:
        copies[shard][index] = 1
    val_labels = labels.shard_labels(data, VALIDATION_SPLIT, mesh)
    input_config = InputConfig(image_size=config.image_size, global_batch_size=min(
        config.global_batch_size, 256), training=False, deterministic=True, seed=config.seed,
        with_metadata=True)
    dataset = input_pipeline.make_dataset(data, VALIDATION_SPLIT, val_labels, input_config,
                                          copies_by_shard=copies)
    return _Validation(dataset, len(pick))


def _evaluate(model: keras.Model, validation: _Validation | None, mesh, config: M1TrainConfig
              ) -> dict:
    """Accuracy at the km thresholds and cell accuracy on the fixed validation subset."""
    if validation is None:
        return {}
    predict = tf.function(lambda images: model(images, training=False))
    top1, lat, lon, truth = [], [], [], []
    for features, label in validation.dataset:
        top1.append(tf.argmax(predict(features["image"]), axis=-1).numpy())
        lat.append(features["lat"].numpy())
        lon.append(features["lon"].numpy())
        truth.append(label.numpy())
    top1, truth = np.concatenate(top1), np.concatenate(truth)
    points = np.asarray(mesh.imagery_centroids)[top1]
    errors_km = great_circle_km(np.concatenate(lat), np.concatenate(lon), points[:, 0], points[:, 1])
    accuracy = accuracy_at_thresholds(errors_km, config.thresholds_km)
    labelled = truth >= 0
    return {"val_photos": int(len(top1)),
            "val_cell_accuracy": float(np.mean(top1[labelled] == truth[labelled])) if labelled.any()
            else math.nan,
            "val_median_km": float(np.median(errors_km)),
            **{f"val_accuracy_{key}km": value for key, value in accuracy.items()}}


def _log_epoch(record: dict, config: M1TrainConfig) -> None:
    km = " ".join(f"{k[13:-2]}km {record[k]:.1f}%" for k in record if k.startswith("val_accuracy_"))
    log.info("M1 epoch %d/%d [%s, alpha %.2f, lr %.4g] %d examples, %d steps, loss %.3f, acc %.3f, "
             "%.0f img/s | val %s", record["epoch"] + 1, config.total_epochs, record["phase"],
             record["alpha"], record["learning_rate"], record["examples"], record["steps"],
             record["loss"], record["accuracy"], record["images_per_second"], km or "-")


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


def _read_history(out_dir: Path) -> list[dict]:
    path = out_dir / HISTORY_FILE
    return json.loads(path.read_text()) if path.exists() else []
