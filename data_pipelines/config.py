"""Frozen config dataclasses of ``data_pipelines``.

Library functions take these (or plain arguments) and never read absl ``FLAGS``; ``experiments/``
and the ``python -m data_pipelines.ingest`` CLI turn their flags into these objects. Each number
says where it comes from: a paper section, or "not in the paper" with the reason for the choice.
"""

from __future__ import annotations

import dataclasses
import os

from data_pipelines import errors
from mesh.settings import check_settings, setting


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """Stable random splits of appendix A.

    A photo goes to M1 train or M1 validation by a hash of its key (photo id, or hashed user id when
    ``by_user``) and ``seed``; M1 validation is split again, by an independent hash, into M2/M3 train
    and M2/M3 validation so that no photo that trained M1 trains M2 or M3 (appendix A, Fig. 3).
    """

    # Appendix A / §2: 14.9 M photos divided 12.2 M training / 2.7 M validation.
    m1_train_weight: float = 12.2
    m1_val_weight: float = 2.7
    # Fraction of M1 validation that becomes M2/M3 validation. Not in the paper (it says only "a new
    # random split"); 0.2 keeps most of the 2.7 M photos for training the small M2/M3 models.
    m23_val_fraction: float = 0.2
    seed: int = 0
    # Split by hashed user instead of photo id, so no user has photos on both sides.
    by_user: bool = False

    def __post_init__(self):
        if (
            self.m1_train_weight < 0
            or self.m1_val_weight < 0
            or (self.m1_train_weight + self.m1_val_weight <= 0)
        ):
            raise errors.ConfigError(
                f"SplitConfig: m1_train_weight={self.m1_train_weight}, "
                f"m1_val_weight={self.m1_val_weight}; expected non-negative weights with a positive sum"
            )
        if not 0.0 <= self.m23_val_fraction <= 1.0:
            raise errors.ConfigError(
                f"SplitConfig.m23_val_fraction={self.m23_val_fraction}; expected a value in [0, 1]"
            )

    @property
    def m1_train_fraction(self) -> float:
        return self.m1_train_weight / (self.m1_train_weight + self.m1_val_weight)


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    """Everything ``run_ingestion`` needs: metadata files, image folder, output folder."""

    metadata_paths: tuple[str, ...]
    images_dir: str
    out_dir: str
    # YFCC100M autotags files (photo id, tag:confidence list): their indoor/outdoor confidences give
    # the outdoor probability of photos whose metadata has none (§4.1.2). Empty: none.
    autotags_paths: tuple[str, ...] = ()
    # Python format string over {id}, {hash}, {ext}, {secret}, {server}, {farm}; slicing works,
    # e.g. Multimedia Commons: "{hash[0:3]}/{hash[3:6]}/{hash}.jpg". None: the CSV path column if
    # the file has one, else "{id}.jpg".
    image_path_template: str | None = None
    # Longest image side kept in the shards. Not in the paper: 512 px leaves room for the random
    # crops of the 299 px Inception v4 input (§3.1.2) while keeping a 14 M-photo set near 0.5 TB.
    max_side: int = 512
    jpeg_quality: int = 90
    # ~1000 photos of <= 512 px is ~50-100 MB a shard, the size tf.data and tfds read well.
    examples_per_shard: int = 1024
    # Worker processes for image work; 0 = os.cpu_count().
    workers: int = 0
    # Per-data-set salt for user-id hashing; None = random on first run, then read back from
    # metadata.json so a resumed run hashes identically.
    salt: str | None = None
    splits: SplitConfig = SplitConfig()
    # How many skipped lines per reason are logged with file:line.
    log_first_skips: int = 5
    dataset_name: str = "geoloc_photos"
    # Several machines: each runs the same command with its own task_index (and the same --salt,
    # paths and settings) on a shared output folder and writes shards position % num_tasks ==
    # task_index; a final run with num_tasks=1 then only writes tables, manifest and summary.
    task_index: int = 0
    num_tasks: int = 1

    def __post_init__(self):
        if not 0 <= self.task_index < self.num_tasks:
            raise errors.ConfigError(
                f"IngestConfig: task_index={self.task_index}, num_tasks={self.num_tasks}; expected "
                "0 <= task_index < num_tasks"
            )
        if self.num_tasks > 1 and self.salt is None:
            raise errors.ConfigError(
                "IngestConfig: num_tasks > 1 needs an explicit salt (--salt), so that every machine "
                "hashes user ids the same way"
            )
        if not self.metadata_paths:
            raise errors.ConfigError(
                "IngestConfig.metadata_paths is empty; expected at least one file"
            )
        if self.max_side < 32:
            raise errors.ConfigError(
                f"IngestConfig.max_side={self.max_side}; expected >= 32 pixels"
            )
        if not 1 <= self.jpeg_quality <= 100:
            raise errors.ConfigError(
                f"IngestConfig.jpeg_quality={self.jpeg_quality}; expected a value in [1, 100]"
            )
        if self.examples_per_shard < 1:
            raise errors.ConfigError(
                f"IngestConfig.examples_per_shard={self.examples_per_shard}; expected >= 1"
            )
        if self.workers < 0:
            raise errors.ConfigError(f"IngestConfig.workers={self.workers}; expected >= 0")

    @property
    def num_workers(self) -> int:
        return self.workers or os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """tf.data input for M1 (§3.1.2: Inception v4 on 299 x 299 images)."""

    image_size: int = 299  # §3.1.2, Inception v4 input size.
    global_batch_size: int = 64  # Not in the paper; the per-replica batch is this / replicas.
    training: bool = True
    # Fixed seeds and element order (augmentation is always stateless per element): for tests and
    # evaluation. None: deterministic when not training.
    deterministic: bool | None = None
    seed: int = 0
    shuffle_buffer: int = 10_000
    num_parallel_reads: int = 8
    # Inception-style augmentation (Szegedy et al. 2016 preprocessing), training only.
    min_object_covered: float = 0.1
    area_range: tuple[float, float] = (0.08, 1.0)
    aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    color_jitter: bool = True
    brightness_delta: float = 32.0 / 255.0
    saturation_range: tuple[float, float] = (0.5, 1.5)
    hue_delta: float = 0.2
    contrast_range: tuple[float, float] = (0.5, 1.5)
    # Evaluation: central crop of this fraction of the image, then resize (Inception eval).
    central_fraction: float = 0.875
    # Inception convention: pixels scaled to [-1, 1].
    value_range: tuple[float, float] = (-1.0, 1.0)
    # Photos in cells the mesh dropped (label -1) leave training (§3.1.1); evaluation keeps them.
    drop_unlabeled: bool | None = None  # None: same as `training`.
    with_metadata: bool = False  # Add photo_id, user_hash, posted_at, lat, lon to the features.
    drop_remainder: bool | None = None  # None: same as `training`.
    # Training only: the host only decodes the random crops and packs them back to back into one
    # flat uint8 buffer per batch (crops larger than `device_crop_side`, 0: the data set's
    # max_side, are shrunk first), with their sizes, flip and colour draws;
    # `input_pipeline.device_augment` (on the accelerator, first thing in the train step:
    # `geoloc_tf.m1` wraps the model in a `DeviceAugment` layer) unpacks, resizes, flips, jitters
    # and scales. On a CPU host, resizing costs about as much as decoding
    # (experiments/benchmarks/input_bench.py); an accelerator does it in microseconds.
    augment_on_device: bool = False
    device_crop_side: int = 0
    # The packed buffer's length is rounded up (zeros) to a multiple of 1/`device_flat_buckets`
    # of the most a batch can hold: at most this many distinct input shapes, so an XLA-compiled
    # train step compiles a bounded number of times; 0: no rounding (a new length every batch).
    device_flat_buckets: int = 16
    # tf.data's autotuner. Off by default: on a 2-core host, with it on, tf.data now and then ran a
    # whole pass with a core idle, in every pipeline, the read+decode ceiling too (about 1,200-1,300
    # instead of 1,900 img/s, in a third to a half of the passes; experiments/benchmarks/
    # input_bench.py), and no autotune algorithm or parallelism setting avoided it. Off, each
    # AUTOTUNE map runs one call per core, each interleave `cycle_length` reads at once, and
    # prefetch buffers grow while the consumer waits (tf.data's legacy autotuning).
    autotune: bool = False
    # Training on the host: compile the colour jitter + scaling + clipping of each image with XLA
    # (one fused pass instead of one pass and one buffer per op; input_bench.py measures it). Not
    # in the paper; False where XLA's CPU backend is unavailable (same result up to float rounding).
    jit_compile_color: bool = True

    def __post_init__(self):
        if self.image_size < 8:
            raise errors.ConfigError(f"InputConfig.image_size={self.image_size}; expected >= 8")
        if self.global_batch_size < 1:
            raise errors.ConfigError(
                f"InputConfig.global_batch_size={self.global_batch_size}; expected >= 1"
            )


def _non_empty(values: tuple) -> str | None:
    return None if len(values) else "at least one value is needed"


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """The A.1 curriculum sampler for M1 (``sampler.CurriculumSampler``; its seed is the run's).

    Appendix A.1: "the number of training examples were increased each epoch by 6%, with the initial
    number of examples equal to the number of cells times 200"; classes oversampled "such that all
    classes were initially equally represented" (alpha = 0); "the class bias was reduced after each
    model had completed a training cycle"; the final model trained "without class biasing and with
    the full dataset per epoch" (alpha = 1, every photo once).
    """

    examples_per_cell: int = setting(
        200, "First epoch size is number of cells times this (appendix A.1: 200).", minimum=1)
    epoch_growth: float = setting(
        0.06, "Epoch size grows by this fraction every epoch (appendix A.1: 6 %).", minimum=0.0)
    alpha_schedule: tuple[float, ...] = setting(
        (0.0, 0.25, 0.5, 0.75), "Class-balance exponent of each Adagrad cycle: class c is drawn "
        "with probability proportional to count_c**alpha (0: all classes equal, as A.1 starts; "
        "raised each cycle to reduce the bias; the values are ours).", minimum=0.0, maximum=1.0,
        check=_non_empty)
    cycle_epochs: int = setting(10, "Epochs per Adagrad cycle (not given in the paper).", minimum=1)
    restart_growth_each_cycle: bool = setting(
        False, "Restart the epoch-size growth with every cycle (default: the epoch index is global "
        "across cycles, so the 6 % growth goes on).")
    shard_fraction: float = setting(
        1.0, "Share of a split's shards streamed per biased epoch (random each epoch; the class "
        "rates come from the photos in them): saves reading when an epoch is much smaller than "
        "the split. 1.0 reads all.", minimum=0.0, maximum=1.0, min_exclusive=True)

    def __post_init__(self):
        check_settings(self)
