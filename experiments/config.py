"""The run's configuration: one frozen dataclass per section, one source of truth.

Every experiment setting is a field of a section dataclass below, and the field's metadata carries its
help text, its allowed values and where in the paper its default comes from. `experiments.flags`
turns each field into an absl flag named `<section>_<field>` (e.g. `--m2_hidden_units`) with a
validator built from that metadata, so a setting is declared once and documented in `--helpfull`.

After parsing, the flags become a `RunConfig` of frozen sections; stages hand sections (or plain
values from them) to library code, which never reads absl `FLAGS` (STYLE.md).

A section is also the unit of resumability: a stage records a fingerprint of the sections it reads,
and a rerun with the same values skips it (`experiments.stages`).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any, Callable, Optional

FORMAT_VERSION = 1


def param(
    default: Any,
    help: str,  # noqa: A002 - mirrors absl's argument name
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_exclusive: bool = False,
    choices: tuple[str, ...] | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """Declares one setting: its default, help text and what values are allowed.

    `minimum`/`maximum` bound numbers (and every element of a tuple); `choices` restricts strings (and
    every element of a tuple of strings); `check` returns an error sentence or None for anything the
    bounds cannot say.
    """
    meta = {
        "help": help,
        "minimum": minimum,
        "maximum": maximum,
        "min_exclusive": min_exclusive,
        "choices": choices,
        "check": check,
    }
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default_factory=lambda d=tuple(default): d, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


#: Choices of --m2_early_stopping_metric / --m3_early_stopping_metric (geoloc_tf.m2.config's
#: EARLY_STOPPING_METRICS; not imported, so that reading flags never imports TensorFlow).
EARLY_STOPPING_METRICS: tuple[str, ...] = ("accuracy", "loss")


def _increasing(values: tuple[float, ...]) -> str | None:
    if list(values) != sorted(values) or len(set(values)) != len(values):
        return "values must be strictly increasing"
    return None


def _non_empty(values: tuple) -> str | None:
    return None if len(values) else "at least one value is needed"


@dataclass(frozen=True)
class MeshSection:
    """Mesh of the globe (paper §3.1.1, Table 1). Presets: coarse 8000/1000, fine 5000/500, fineP 10000/50."""

    refinement_limit: int = param(
        8000, "A cell holding more training photos than this is split (Table 1, coarse: 8000).", minimum=1)
    min_examples: int = param(
        1000, "A cell holding fewer training photos than this is dropped: not a class, its photos leave "
        "training (Table 1, coarse: 1000).", minimum=0)
    init_grid: int = param(
        31, "Side of the structured equal-area start grid (§3.1.1: 31 x 31).", minimum=2)
    coords: Optional[str] = param(
        None, "CSV of training photo coordinates (latitude/longitude columns) to build the mesh from. "
        "Unset: the coordinates of the data set's M1 training split, or the demo's coordinates when "
        "--data_source=demo.")
    build_sample: int = param(
        0, "Build the mesh on a random sample of this many photos, then populate it with all of them "
        "without refining (the paper built the coarse mesh on 2M photos, Figure 2). 0: use all.",
        minimum=0)


@dataclass(frozen=True)
class DataSection:
    """Photos and their metadata (paper §2, appendix A)."""

    source: str = param(
        "metadata", "Where photos come from: 'metadata' (YFCC100M or CSV files given by --data_metadata "
        "and --data_images) or 'demo' (the embedded demo data set, built on first use).",
        choices=("metadata", "demo"))
    metadata: tuple[str, ...] = param(
        (), "Comma-separated metadata files (YFCC100M dataset files, Multimedia Commons, or CSV) for "
        "--data_source=metadata.")
    images: Optional[str] = param(None, "Folder holding the photos named by the metadata.")
    autotags: tuple[str, ...] = param(
        (), "Comma-separated YFCC100M autotags files: their indoor/outdoor confidences give each "
        "photo's outdoor probability (Table 4).")
    image_path_template: Optional[str] = param(
        None, "Path of a photo under --data_images, from metadata fields {id} {hash} {ext} {secret} "
        "{server} {farm}, slices allowed (Multimedia Commons: {hash[0:3]}/{hash[3:6]}/{hash}.jpg). "
        "Unset: a CSV path column, else {id}.jpg.")
    demo_size: str = param(
        "default", "Size of the demo data set: 'small' (a few thousand photos, for CI) or 'default' "
        "(tens of thousands). Its users, posting times and indoor photos are simulated.",
        choices=("small", "default"))
    seed: int = param(0, "Seed of the stable hash splits (and of the demo generator).", minimum=0)
    m1_val_fraction: float = param(
        2.7 / 14.9, "Share of photos held out from M1 training (appendix A: 12.2M train / 2.7M "
        "validation).", minimum=0.0, maximum=1.0, min_exclusive=True)
    m23_val_fraction: float = param(
        0.2, "Share of the M1 validation photos held out from M2/M3 training (appendix A splits M1's "
        "validation again at random; the paper does not give the ratio, 80/20 is our choice).",
        minimum=0.0, maximum=1.0, min_exclusive=True)
    split_by: str = param(
        "photo", "Unit of the random splits: 'photo' (the paper) or 'user' (no user on both sides).",
        choices=("photo", "user"))
    max_image_side: int = param(
        512, "Photos are re-encoded as JPEG with at most this many pixels on the longest side, to keep "
        "shards small.", minimum=32)


@dataclass(frozen=True)
class M1Section:
    """M1: Inception-v4 over mesh cells, trained with the procedure of appendix A.1."""

    backbone: str = param(
        "inception_v4", "Image network: the paper's Inception-v4, or a keras.applications network for "
        "users who have its weights.", choices=("inception_v4", "inception_v3", "inception_resnet_v2",
                                                 "resnet50", "efficientnet_v2_s"))
    image_size: int = param(299, "Input side in pixels (Inception-v4: 299; >= 75).", minimum=75)
    blocks: tuple[int, ...] = param(
        (4, 7, 3), "Inception-A, -B and -C blocks (Inception-v4: 4,7,3; fewer for CPU-sized runs).",
        minimum=0, check=lambda v: None if len(v) == 3 else "three counts are needed (A,B,C)")
    width_multiplier: float = param(
        1.0, "Scales every convolution's filter count (1.0: the published network).", minimum=0.0,
        min_exclusive=True)
    global_batch_size: int = param(
        256, "Global batch size: summed over all replicas of the tf.distribute strategy; each replica "
        "gets global / num_replicas.", minimum=1)
    init_checkpoint: Optional[str] = param(
        None, "ImageNet initialization (appendix A.1 starts from ImageNet): a TF-slim inception_v4.ckpt "
        "or a Keras weights file. Unset: random initialization.")
    adagrad_learning_rate: float = param(
        0.01, "Learning rate of the Adagrad cycles (appendix A.1 uses Adagrad, rate not given).",
        minimum=0.0, min_exclusive=True)
    examples_per_cell: int = param(
        200, "First epoch size is number of cells times this (appendix A.1: 200).", minimum=1)
    epoch_growth: float = param(
        0.06, "Epoch size grows by this fraction every epoch (appendix A.1: 6 %).", minimum=0.0)
    alpha_schedule: tuple[float, ...] = param(
        (0.0, 0.25, 0.5, 0.75), "Class-balance exponent of each Adagrad cycle: class c is drawn with "
        "probability proportional to count_c**alpha (0: all classes equal, as A.1 starts; raised each "
        "cycle to reduce the bias).", minimum=0.0, maximum=1.0, check=_non_empty)
    cycle_epochs: int = param(10, "Epochs per Adagrad cycle (not given in the paper).", minimum=1)
    sgd_learning_rate: float = param(
        0.01, "Initial learning rate of the final SGD phase (appendix A.1: between 0.004 and 0.02).",
        minimum=0.0, min_exclusive=True)
    sgd_decay_per_epoch: float = param(
        0.04, "The SGD learning rate falls linearly by this fraction of its initial value per epoch "
        "(appendix A.1: 4 %).", minimum=0.0, maximum=1.0)
    sgd_momentum: float = param(
        0.0, "Momentum of the final SGD phase (appendix A.1 says SGD: plain, 0). Not in the paper.",
        minimum=0.0, maximum=0.999)
    crop_area_min: float = param(
        0.08, "Smallest share of the photo a training crop covers (Inception preprocessing, Szegedy "
        "et al. 2016: 0.08; crops cover [this, 1] of the area).", minimum=0.01, maximum=1.0)
    color_jitter: bool = param(
        True, "Random brightness, saturation, hue and contrast in training (Inception "
        "preprocessing). Off where colour is the location signal (the demo's Earth imagery).")
    augment_on: str = param(
        "auto", "Where training augmentation runs: device (the host only decodes the random crop; "
        "resize, flip, colour and scaling run in the train step on the accelerator), host (all on "
        "the CPU, float32 batches), auto (device when training on GPUs/TPUs, else host).",
        choices=("auto", "device", "host"))
    sgd_epochs: int = param(
        24, "Epochs of the final SGD phase, natural class frequencies, full data set per epoch "
        "(24 epochs at 4 % leave 4 % of the initial rate).", minimum=0)
    validation_photos: int = param(
        2048, "Photos of a fixed random M1-validation subset scored in km every epoch (TensorBoard).",
        minimum=0)
    checkpoint_every_steps: int = param(
        500, "Training state saved every this many steps (and every epoch); a killed run resumes "
        "there.", minimum=1)
    dropout_keep: float = param(
        0.8, "Keep probability of the dropout before the softmax (Inception-v4: 0.8).", minimum=0.0,
        maximum=1.0, min_exclusive=True)
    batch_norm_decay: float = param(
        0.9997, "Decay of batch normalization's moving mean and variance, which inference uses "
        "(TF-slim's Inception-v4: 0.9997, made for ~10^6 steps). They forget their start (mean 0, "
        "variance 1) only after ~1/(1-decay) steps, so a run of a few hundred steps needs ~0.99 or "
        "its predictions are near uniform. Inception-v4 only.", minimum=0.0, maximum=0.99999,
        min_exclusive=True)


@dataclass(frozen=True)
class PredictSection:
    """Stored M1 predictions for every photo, read by M2, M3, averaging, evaluation and retrieval."""

    top_k: int = param(10, "Cells kept per photo, with their probabilities (Figure 3 operator (1): 10).",
                       minimum=1)
    store_features: bool = param(False, "Also store M1's 1536-d penultimate features (for retrieval).")


@dataclass(frozen=True)
class M2Section:
    """M2: the time-adjusting model (paper §3.2, Table 2, appendix A.2)."""

    top_k: int = param(10, "Entries kept by the sparsify-normalize layer (§3.2: top 10).", minimum=1)
    hidden_units: int = param(1626, "Units of each hidden block (Table 2: 542*3).", minimum=1)
    dropout: float = param(0.5, "Dropout rate of every hidden block (Table 2: 50 %).", minimum=0.0,
                           maximum=1.0)
    learning_rates: tuple[float, ...] = param(
        (0.005, 0.001), "Adam learning rates, one phase each (appendix A.2: 0.005 then 0.001).",
        minimum=0.0, min_exclusive=True, check=_non_empty)
    boosting_rounds: int = param(
        2, "Rounds of AdaBoost-style re-weighting of misclassified photos before the Adam phases "
        "(appendix A.2 'initial iterations of Adaboost'; 0 turns it off).", minimum=0)
    batch_size: int = param(512, "Global batch size.", minimum=1)
    max_epochs: int = param(100, "Upper bound on epochs per phase; early stopping usually ends sooner.",
                            minimum=1)
    early_stopping_patience: int = param(
        5, "Epochs of falling validation accuracy that stop a phase, restoring the best weights "
        "(appendix A.2).", minimum=1)
    early_stopping_metric: str = param(
        "accuracy", "What early stopping watches on validation: 'accuracy' (appendix A.2) or 'loss' "
        "(the cross-entropy: far less noisy where cell accuracy is a few percent on a few thousand "
        "photos).", choices=EARLY_STOPPING_METRICS)
    m1_prior: bool = param(
        False, "Beyond the paper: M2's softmax adds the log of M1's renormalized top-k probabilities "
        "to its (zero-initialized) output logits, so M2 starts as M1 and learns a correction from the "
        "time. For M2 training sets too small to relearn the map onto the cells (the demo: ~9 photos "
        "per cell); the paper's M2 had millions.")
    extra_inputs: tuple[str, ...] = param(
        (), "Inputs beyond the paper, appended to M2's input: 'outdoor' (the photo's outdoor "
        "probability; the paper's suggested future work).", choices=("outdoor",))


@dataclass(frozen=True)
class M3Section:
    """M3: M2's blocks inside a masked bidirectional LSTM over user albums (paper §3.3, Figure 3)."""

    album_size: int = param(24, "Photos per album (§3.3: 24), zero-padded and masked.", minimum=1)
    lstm_units: int = param(256, "Units of each LSTM direction (not given in the paper).", minimum=1)
    init_from_m2: bool = param(True, "Initialize the per-photo blocks from the trained M2.")
    freeze_m2: bool = param(
        False, "Beyond the paper: keep the per-photo part started from M2 fixed and train only the "
        "LSTM and its correction (for small M2/M3 training sets; needs --m3_init_from_m2).")
    residual_output: bool = param(
        True, "M3's softmax takes M2's output logits plus a small correction from the LSTM, "
        "so M3 starts near the trained M2 (our reading of Figure 3); False: a fresh softmax on the LSTM.")
    album_evidence: bool = param(
        False, "Beyond the paper: with --m3_residual_output, every photo's logits also get the log "
        "of the mean softmax over its album, times a learned weight starting at 1 (the LSTM alone "
        "did not learn to pool an album's evidence on the demo).")
    learning_rate: float = param(
        0.001, "Adam learning rate (not given for M3; appendix A.2's final M2 rate).", minimum=0.0,
        min_exclusive=True)
    batch_size: int = param(64, "Albums per global batch.", minimum=1)
    max_epochs: int = param(100, "Upper bound on epochs; early stopping usually ends sooner.", minimum=1)
    early_stopping_patience: int = param(5, "Epochs of falling validation accuracy that stop training.",
                                         minimum=1)
    early_stopping_metric: str = param(
        "accuracy", "What early stopping watches on validation: 'accuracy' or 'loss', as for M2.",
        choices=EARLY_STOPPING_METRICS)


@dataclass(frozen=True)
class EvaluateSection:
    """Evaluation and report (paper §3.1.3, Tables 3-7, appendix C)."""

    thresholds_km: tuple[float, ...] = param(
        (1.0, 25.0, 200.0, 750.0, 2500.0), "Accuracy thresholds in km: street, city, region, country, "
        "continent (§3.1.3).", minimum=0.0, min_exclusive=True, check=_increasing)
    outdoor_threshold: float = param(
        0.5, "Photos with outdoor probability >= this count as outdoor (Table 4).", minimum=0.0,
        maximum=1.0)
    knn_k: int = param(
        0, "Beyond the paper: add an 'M1 kNN' row, each photo located from its k nearest M1 "
        "training photos in M1's feature space (Vo et al. 2017); needs --predict_store_features. "
        "0: off (at YFCC100M scale the features take ~6 GB per million photos).", minimum=0)
    knn_bandwidth_km: float = param(
        100.0, "Bandwidth of the Gaussian kernel over great-circle distance that picks the densest "
        "of the k neighbours' locations (our choice; Vo et al. 2017 tune it).", minimum=0.0,
        min_exclusive=True)


@dataclass(frozen=True)
class ExportSection:
    """SavedModel export of the trained models."""

    top_k: int = param(5, "Cells returned per photo by the serving signatures.", minimum=1)


@dataclass(frozen=True)
class RuntimeSection:
    """How the run executes; changing these never invalidates finished stages."""

    strategy: str = param(
        "auto", "tf.distribute strategy: 'auto' (mirrored over all GPUs, else the default), "
        "'mirrored', 'multi_worker' (TF_CONFIG), 'one_device'.",
        choices=("auto", "mirrored", "multi_worker", "one_device"))
    mixed_precision: bool = param(False, "Train with mixed_float16 (GPUs with tensor cores).")
    jit_compile: bool = param(False, "Compile training steps with XLA.")
    input_autotune: bool = param(
        False, "tf.data's autotuner for M1's training input. Off: one map call per core (on a "
        "2-core host the autotuner now and then left a core idle for a whole pass; input_bench).")
    deterministic: bool = param(
        True, "Same command, same --data_seed, same machine: the same tables, bit for bit. Seeds "
        "every random generator before each stage and turns on TensorFlow's op determinism "
        "(experiments.determinism). Off: faster kernels where TensorFlow has nondeterministic ones "
        "(GPUs mostly); two runs then differ by training noise.")


SECTIONS: dict[str, type] = {
    "mesh": MeshSection,
    "data": DataSection,
    "m1": M1Section,
    "predict": PredictSection,
    "m2": M2Section,
    "m3": M3Section,
    "evaluate": EvaluateSection,
    "export": ExportSection,
    "runtime": RuntimeSection,
}


@dataclass(frozen=True)
class RunConfig:
    """Every section of one run; written to `run_dir/config.json`."""

    mesh: MeshSection = dataclasses.field(default_factory=MeshSection)
    data: DataSection = dataclasses.field(default_factory=DataSection)
    m1: M1Section = dataclasses.field(default_factory=M1Section)
    predict: PredictSection = dataclasses.field(default_factory=PredictSection)
    m2: M2Section = dataclasses.field(default_factory=M2Section)
    m3: M3Section = dataclasses.field(default_factory=M3Section)
    evaluate: EvaluateSection = dataclasses.field(default_factory=EvaluateSection)
    export: ExportSection = dataclasses.field(default_factory=ExportSection)
    runtime: RuntimeSection = dataclasses.field(default_factory=RuntimeSection)

    def section(self, name: str) -> Any:
        return getattr(self, name)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: section_to_dict(self.section(name)) for name in SECTIONS}

    def to_json(self) -> str:
        return json.dumps({"format_version": FORMAT_VERSION, "sections": self.to_dict()}, indent=2,
                          sort_keys=True)

    @classmethod
    def from_dict(cls, sections: dict[str, dict[str, Any]]) -> "RunConfig":
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            raise ValueError(f"unknown config sections {sorted(unknown)}; known: {sorted(SECTIONS)}")
        return cls(**{name: section_from_dict(SECTIONS[name], values)
                      for name, values in sections.items()})

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        payload = json.loads(text)
        version = payload.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"config.json has format_version {version!r}; this geoloc reads "
                             f"{FORMAT_VERSION}")
        return cls.from_dict(payload["sections"])


def section_to_dict(section: Any) -> dict[str, Any]:
    """JSON-ready values of one section (tuples become lists)."""
    return {f.name: (list(v) if isinstance(v := getattr(section, f.name), tuple) else v)
            for f in dataclasses.fields(section)}


def section_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuilds a section from `section_to_dict` output; unknown keys are an error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)} for section {cls.__name__}")
    return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items()})


def field_kind(cls: type, field: dataclasses.Field) -> tuple[type, bool]:
    """(element type, is_tuple) of a section field, from its annotation."""
    hint = typing.get_type_hints(cls)[field.name]
    origin = typing.get_origin(hint)
    if origin is tuple:
        return typing.get_args(hint)[0], True
    if origin is typing.Union:  # Optional[X]
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return inner, False
    return hint, False


def validate_value(field: dataclasses.Field, value: Any) -> str | None:
    """The error sentence for a value the field does not allow, or None when it is allowed."""
    meta = field.metadata
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if v is None or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            lo, hi = meta.get("minimum"), meta.get("maximum")
            if lo is not None and (v < lo or (meta.get("min_exclusive") and v == lo)):
                return f"must be {'>' if meta.get('min_exclusive') else '>='} {lo}"
            if hi is not None and v > hi:
                return f"must be <= {hi}"
        if isinstance(v, str) and meta.get("choices") and v not in meta["choices"]:
            return f"must be one of {', '.join(meta['choices'])}"
    check = meta.get("check")
    return check(value) if check else None
