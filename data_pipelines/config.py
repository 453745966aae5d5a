"""Frozen config dataclasses of ``data_pipelines``.

Library functions take these (or plain arguments) and never read absl ``FLAGS``. ``IngestConfig``
(with its nested ``SplitConfig``) is the declaration of the runner's data section: each of its
settings (``mesh.settings``) is the flag ``--data_<name>`` of ``python -m experiments.run`` and the
option ``--<name>`` of ``geoloc ingest``. Each number says where it comes from: a paper section, or
"not in the paper" with the reason for the choice. This module never imports TensorFlow, so
parsing flags stays fast.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

from data_pipelines import errors
from mesh.settings import SettingError, check_settings, nested, setting

#: The values of ``IngestConfig.format`` (``data_pipelines.readers.formats`` has the readers; this
#: module must import without them).
FORMAT_NAMES = ("auto", "yfcc100m", "csv", "osv5m", "mp16pro", "msgpack", "webdataset", "exif")
#: The formats the demo collection can be written in (``data_pipelines.demo.formats``).
DEMO_FORMATS = ("auto", "yfcc100m", "osv5m", "mp16pro", "webdataset")

#: Pixel limits of the image decoder (``data_pipelines.images``), one per entry point. Not in the
#: paper. A server that strangers reach gets the lowest: 50 M pixels holds a 50-megapixel phone
#: photo, and a refused image costs nothing (the limit is checked on the header); commands reading
#: a person's own files (`geoloc predict`, `search`, `evaluate`) and ingestion of a collection get
#: 100 M pixels (a 108-megapixel phone photo; its RGB pixels are 300 MB once decoded).
SERVE_MAX_PIXELS = 50_000_000
FILES_MAX_PIXELS = 100_000_000


def max_pixels_setting(default: int):
    """``max_pixels`` of an entry point that reads images: one declaration, several config classes."""
    return setting(
        default,
        "Images with more pixels are refused from their header, before any decoding "
        "(a decompression bomb costs nothing).",
        minimum=1,
    )


@dataclasses.dataclass(frozen=True)
class DecodeBudget:
    """What decoding one photo may cost, known from its header before it is paid
    (``data_pipelines.images``, whose docstring has the measurements behind each default). Not in
    the paper: the limits of an entry point that reads photos strangers or collections bring.

    ``max_pixels`` is no setting of the budget: every entry point declares its own
    (``max_pixels_setting``: a server's is lower than a command's) and fills it in with
    ``within``. It limits every format; ``max_other_pixels`` lowers it for formats decoded in full
    (all but JPEG, which is decoded at the scale the model needs)."""

    max_jpeg_scans: int = setting(
        64,
        "JPEGs with more scans are refused unread: each scan of a progressive JPEG is decoded over "
        "the whole image (libjpeg's standard progressive script writes 10, 18 for CMYK).",
        minimum=1,
    )
    max_jpeg_segments: int = setting(
        1000,
        "JPEGs with more marker segments (APPn, COM, tables...) are refused unread: a camera "
        "writes a few dozen (Exif, XMP, ICC chunks, tables).",
        minimum=1,
    )
    max_other_pixels: int = setting(
        10_000_000,
        "PNG, GIF, BMP and WebP images with more pixels are refused from their header: they are "
        "decoded in full, while M1 needs about 342 x 342 (a 4K screen, 8.3 M pixels, fits).",
        minimum=1,
    )
    max_pixels: int = FILES_MAX_PIXELS

    def __post_init__(self):
        check_settings(self)

    def within(self, max_pixels: int) -> "DecodeBudget":
        """This budget with an entry point's ``max_pixels``."""
        return dataclasses.replace(self, max_pixels=max_pixels)


def decode_budget():
    """The ``decode`` field of an entry point that reads photos: one declaration, several configs."""
    return nested(DecodeBudget, "What decoding one photo may cost (data_pipelines.images).")


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """Stable random splits of appendix A.

    A photo goes to M1 train or M1 validation by a hash of its key (photo id, or hashed user id when
    ``split_by="user"``) and ``seed``; M1 validation is split again, by an independent hash, into
    M2/M3 train and M2/M3 validation so that no photo that trained M1 trains M2 or M3 (appendix A,
    Fig. 3).
    """

    seed: int = setting(0, "Seed of the stable hash splits (and of the demo generator).", minimum=0)
    m1_val_fraction: float = setting(
        2.7 / 14.9,
        "Share of photos held out from M1 training (appendix A: 12.2M train / 2.7M validation).",
        minimum=0.0,
        maximum=1.0,
        min_exclusive=True,
    )
    m23_val_fraction: float = setting(
        0.2,
        "Share of the M1 validation photos held out from M2/M3 training (appendix A splits "
        "M1's validation again at random; the paper does not give the ratio, 80/20 is our choice).",
        minimum=0.0,
        maximum=1.0,
        min_exclusive=True,
    )
    split_by: str = setting(
        "photo",
        "Unit of the random splits: 'photo' (the paper) or 'user' (no user on both sides).",
        choices=("photo", "user"),
    )

    def __post_init__(self):
        check_settings(self)

    @property
    def m1_train_fraction(self) -> float:
        return 1.0 - self.m1_val_fraction


#: What --data_source=demo replaces: the demo collection brings its own files.
DEMO_PROVIDES = ("metadata", "images", "autotags", "image_path_template")


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    """Photos and their metadata (paper §2, appendix A): what ``run_ingestion`` reads and how.

    The output folder is not a setting: ``run_ingestion(config, out_dir)`` takes it.
    """

    source: str = setting(
        "metadata",
        "Where photos come from: 'metadata' (YFCC100M or CSV files given by the "
        "metadata and images settings) or 'demo' (the embedded demo data set, built on first use).",
        choices=("metadata", "demo"),
    )
    demo_size: str = setting(
        "default",
        "Size of the demo data set: 'small' (a few thousand photos, for CI) or "
        "'default' (tens of thousands). Its users, posting times and indoor photos are simulated.",
        choices=("small", "default"),
    )
    format: str = setting(
        "auto",
        "Collection format (data_pipelines.readers.formats): yfcc100m, csv, osv5m (train.csv/"
        "test.csv + images/*/NN.zip), mp16pro (MP16_Pro_places365.csv + mp-16-images tar parts), "
        "msgpack (GeoEstimation shard_*.msg + the MP-16 CSV), webdataset (tar shards of jpg+json), "
        "exif (a folder of one's own geotagged photos, no metadata files); auto: what the files "
        "say. With source=demo: the layout the demo collection is written in (auto: yfcc100m).",
        choices=FORMAT_NAMES,
    )
    album_key: str = setting(
        "creator",
        "OSV-5M: what groups photos into M3's albums, 'creator' (creator_id: one photographer) "
        "or 'sequence' (one Mapillary capture sequence); hashed like a user id.",
        choices=("creator", "sequence"),
    )
    metadata: tuple[str, ...] = setting(
        (),
        "Comma-separated metadata files in the chosen format (YFCC100M dataset files, CSV, "
        "OSV-5M train.csv/test.csv, MP16-Pro CSV, webdataset .tar shards...; .bz2/.gz read "
        "transparently) for source=metadata; none for format=exif.",
    )
    images: Optional[str] = setting(None, "Folder holding the photos named by the metadata.")
    autotags: tuple[str, ...] = setting(
        (),
        "Comma-separated YFCC100M autotags files: their indoor/outdoor confidences give each "
        "photo's outdoor probability where its metadata has none (§4.1.2, Table 4).",
    )
    image_path_template: Optional[str] = setting(
        None,
        "Path of a photo under the images folder, from metadata fields {id} {hash} {ext} "
        "{secret} {server} {farm}, slices allowed (Multimedia Commons: "
        "{hash[0:3]}/{hash[3:6]}/{hash}.jpg). Unset: a CSV path column, else {id}.jpg, or {id} "
        "when the id already ends in an image extension (GeoEstimation's IMG_ID).",
    )
    # Not in the paper: 512 px leaves room for the random crops of the 299 px Inception v4 input
    # (§3.1.2) while keeping a 14 M-photo set near 0.5 TB.
    max_image_side: int = setting(
        512,
        "Photos are re-encoded as JPEG with at most this many pixels on the longest side, to "
        "keep shards small.",
        minimum=32,
    )
    jpeg_quality: int = setting(90, "JPEG quality of the re-encoded photos.", minimum=1, maximum=100)
    max_pixels: int = max_pixels_setting(FILES_MAX_PIXELS)
    # ~1000 photos of <= 512 px is ~50-100 MB a shard, the size tf.data and tfds read well.
    examples_per_shard: int = setting(
        1024, "Photos per TFRecord shard (at most; a split's last shard holds the rest).", minimum=1
    )
    workers: int = setting(
        0, "Worker processes for parsing and image work; 0: one per core.", minimum=0, affects_outputs=False
    )
    salt: Optional[str] = setting(
        None,
        "Salt of the data set's user-id hashing. Unset: random on the first run, then read "
        "back from the output's metadata.json, so a resumed run hashes identically.",
    )
    log_first_skips: int = setting(
        5,
        "Skipped lines logged (with file:line) per skip reason; the rest are only counted.",
        minimum=0,
        affects_outputs=False,
    )
    # Not in the paper: limits that keep a hostile metadata file (a 2 MB .gz holding one 2 GB line)
    # from taking memory in proportion to it. Out of the settings record (affects_outputs=False), so
    # that data sets begun before they existed resume: at the defaults no real metadata line
    # reaches them, and a line over them is counted (too_long), not read.
    max_line_bytes: int = setting(
        1 << 20,
        "Longest metadata line, CSV record (quoted newlines included) or webdataset JSON, in bytes; "
        "a longer one is skipped as too_long without being held in memory, and a CSV header or "
        "first line over it stops the run. 1 MiB is far above any real metadata line.",
        minimum=1024,
        affects_outputs=False,
    )
    max_field_bytes: int = setting(
        128 << 10,
        "Longest CSV field (Python's csv.field_size_limit; 128 KiB is its default); a row with a "
        "longer one is skipped as too_long, a header with one stops the run.",
        minimum=1024,
        affects_outputs=False,
    )
    dataset_name: str = setting(
        "geoloc_photos",
        "Name of the data set in its shard files and tfds metadata.",
        check=lambda v: (
            None if v and "/" not in v and "-" not in v else "expected a non-empty name without '/' or '-'"
        ),
    )
    # Past one machine: the same steps as Beam transforms (data_pipelines.ingest.beam_pipeline).
    engine: str = setting(
        "local",
        "What runs the ingestion: 'local' (this machine's process pool, `workers` processes) or "
        "'beam' (an Apache Beam pipeline with the same readers and per-photo work, on the runner "
        "named in beam_pipeline_options: DirectRunner here, Dataflow, Flink or Spark on a cluster "
        "whose workers all see the output folder; needs the beam extra).",
        choices=("local", "beam"),
        affects_outputs=False,
    )
    beam_pipeline_options: str = setting(
        "--runner=DirectRunner --direct_running_mode=multi_processing --direct_num_workers=0",
        "Apache Beam pipeline options for engine=beam, as on a Beam command line (runner, project, "
        "workers...); the default runs on this machine, one process per core.",
        affects_outputs=False,
    )
    splits: SplitConfig = nested(SplitConfig, "Stable random splits (appendix A).")

    def __post_init__(self):
        check_settings(self)
        owner = type(self).__name__
        if self.source == "metadata" and self.format == "exif":
            if not self.images or self.metadata:
                raise SettingError(
                    owner,
                    "{format}=exif reads GPS and times from the photos in {images}=DIR: give "
                    "{images} and no {metadata}",
                    ("format", "images", "metadata"),
                )
        elif self.source == "metadata" and not (self.metadata and self.images):
            raise SettingError(
                owner,
                "{source}=metadata needs {metadata}=FILE[,FILE...] "
                "(YFCC100M, CSV, OSV-5M, MP16-Pro, webdataset...) and {images}=DIR "
                "(or {format}=exif with {images} alone)",
                ("source", "metadata", "images", "format"),
            )
        if self.source == "demo" and self.format not in DEMO_FORMATS:
            raise SettingError(
                owner,
                "{source}=demo is written as %s; got {format}=%s"
                % (", ".join(DEMO_FORMATS[1:]), self.format),
                ("source", "format"),
            )
        if self.source == "demo":
            given = [name for name in DEMO_PROVIDES if getattr(self, name) not in ((), None)]
            if given:
                raise SettingError(
                    owner,
                    "{source}=demo brings its own photos and metadata: drop "
                    + " and ".join("{%s}" % name for name in given),
                    ("source", *given),
                )

    @property
    def simulated(self) -> bool:
        """True for the demo collection, whose users, posting times and indoor photos are SIMULATED:
        every report made from it says so."""
        return self.source == "demo"

    @property
    def images_folder(self) -> str:
        """``images``, for code that reads photos: set for source=metadata (``__post_init__``) and
        by the demo collection for source=demo."""
        if self.images is None:
            raise SettingError(
                type(self).__name__, "{images} is unset; expected the folder holding the photos", ("images",)
            )
        return self.images

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
    # The label of each example is {"cell": int32, "lat": float32, "lon": float32 (degrees, the
    # photo's true location)} instead of the bare int32 cell: M1's haversine label smoothing
    # (PIGEON, Haas et al. 2024; `M1Config.label_smoothing_km`) builds its target from it.
    with_location: bool = False
    drop_remainder: bool | None = None  # None: same as `training`.
    # Training only: the host only decodes the random crops and packs them back to back into one
    # flat uint8 buffer per batch (crops larger than `device_crop_side`, 0: the data set's
    # max_side, are shrunk first), with their sizes, flip and colour draws;
    # `geoloc_tf.m1.device_augment` (on the accelerator, first thing in the train step, on any
    # Keras backend) unpacks, resizes, flips, jitters and scales. On a CPU host, resizing costs
    # about as much as decoding (experiments/benchmarks/input_bench.py); an accelerator does it in
    # microseconds.
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
            raise errors.ConfigError(f"InputConfig.global_batch_size={self.global_batch_size}; expected >= 1")


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
        200, "First epoch size is number of cells times this (appendix A.1: 200).", minimum=1
    )
    epoch_growth: float = setting(
        0.06, "Epoch size grows by this fraction every epoch (appendix A.1: 6 %).", minimum=0.0
    )
    alpha_schedule: tuple[float, ...] = setting(
        (0.0, 0.25, 0.5, 0.75),
        "Class-balance exponent of each Adagrad cycle: class c is drawn "
        "with probability proportional to count_c**alpha (0: all classes equal, as A.1 starts; "
        "raised each cycle to reduce the bias; the values are ours).",
        minimum=0.0,
        maximum=1.0,
        check=_non_empty,
    )
    cycle_epochs: int = setting(10, "Epochs per Adagrad cycle (not given in the paper).", minimum=1)
    restart_growth_each_cycle: bool = setting(
        False,
        "Restart the epoch-size growth with every cycle (default: the epoch index is global "
        "across cycles, so the 6 % growth goes on).",
    )
    shard_fraction: float = setting(
        1.0,
        "Share of a split's shards streamed per biased epoch (random each epoch; the class "
        "rates come from the photos in them): saves reading when an epoch is much smaller than "
        "the split. 1.0 reads all.",
        minimum=0.0,
        maximum=1.0,
        min_exclusive=True,
    )

    def __post_init__(self):
        check_settings(self)
