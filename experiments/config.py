"""The run's configuration: one section per stage's settings, each declared once.

A section is the config dataclass of the library code that uses its settings (`mesh.config.MeshConfig`,
...): its fields, declared with `mesh.settings.setting`, carry their default, help text, bounds and
choices. `experiments.flags` derives the runner's `--<section>_<field>` flags from them, `config.json`
and the stages' fingerprints are their values, and the `geoloc` subcommands derive their options from
the same classes (`experiments.commands`). Nothing maps a flag onto a field by hand.

Every rule runs when the flags are parsed, before any stage starts: a section checks its own fields
and their combinations in `__post_init__`, and `RunConfig.__post_init__` checks the rules that span
sections (`--evaluate_knn_k` needs `--predict_store_features`, ...). This module and every section
class import without TensorFlow, so parsing flags stays fast.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Optional

from data_pipelines.config import IngestConfig
from mesh.config import MeshConfig
from mesh.settings import SettingError, check_settings, from_dict, setting, to_dict

FORMAT_VERSION = 2

#: Choices of --m2_early_stopping_metric / --m3_early_stopping_metric.
EARLY_STOPPING_METRICS: tuple[str, ...] = ("accuracy", "loss")


def _increasing(values: tuple[float, ...]) -> str | None:
    if list(values) != sorted(values) or len(set(values)) != len(values):
        return "values must be strictly increasing"
    return None


def _non_empty(values: tuple) -> str | None:
    return None if len(values) else "at least one value is needed"


@dataclass(frozen=True)
class M1Section:
    """M1: Inception-v4 over mesh cells, trained with the procedure of appendix A.1."""

    backbone: str = setting(
        "inception_v4", "Image network: the paper's Inception-v4, or a keras.applications network for "
        "users who have its weights.", choices=("inception_v4", "inception_v3", "inception_resnet_v2",
                                                 "resnet50", "efficientnet_v2_s"))
    image_size: int = setting(299, "Input side in pixels (Inception-v4: 299; >= 75).", minimum=75)
    blocks: tuple[int, ...] = setting(
        (4, 7, 3), "Inception-A, -B and -C blocks (Inception-v4: 4,7,3; fewer for CPU-sized runs).",
        minimum=0, check=lambda v: None if len(v) == 3 else "three counts are needed (A,B,C)")
    width_multiplier: float = setting(
        1.0, "Scales every convolution's filter count (1.0: the published network).", minimum=0.0,
        min_exclusive=True)
    global_batch_size: int = setting(
        256, "Global batch size: summed over all replicas of the tf.distribute strategy; each replica "
        "gets global / num_replicas.", minimum=1)
    init_checkpoint: Optional[str] = setting(
        None, "ImageNet initialization (appendix A.1 starts from ImageNet): a TF-slim inception_v4.ckpt "
        "or a Keras weights file. Unset: random initialization.")
    adagrad_learning_rate: float = setting(
        0.01, "Learning rate of the Adagrad cycles (appendix A.1 uses Adagrad, rate not given).",
        minimum=0.0, min_exclusive=True)
    examples_per_cell: int = setting(
        200, "First epoch size is number of cells times this (appendix A.1: 200).", minimum=1)
    epoch_growth: float = setting(
        0.06, "Epoch size grows by this fraction every epoch (appendix A.1: 6 %).", minimum=0.0)
    alpha_schedule: tuple[float, ...] = setting(
        (0.0, 0.25, 0.5, 0.75), "Class-balance exponent of each Adagrad cycle: class c is drawn with "
        "probability proportional to count_c**alpha (0: all classes equal, as A.1 starts; raised each "
        "cycle to reduce the bias).", minimum=0.0, maximum=1.0, check=_non_empty)
    cycle_epochs: int = setting(10, "Epochs per Adagrad cycle (not given in the paper).", minimum=1)
    sgd_learning_rate: float = setting(
        0.01, "Initial learning rate of the final SGD phase (appendix A.1: between 0.004 and 0.02).",
        minimum=0.0, min_exclusive=True)
    sgd_decay_per_epoch: float = setting(
        0.04, "The SGD learning rate falls linearly by this fraction of its initial value per epoch "
        "(appendix A.1: 4 %).", minimum=0.0, maximum=1.0)
    sgd_momentum: float = setting(
        0.0, "Momentum of the final SGD phase (appendix A.1 says SGD: plain, 0). Not in the paper.",
        minimum=0.0, maximum=0.999)
    crop_area_min: float = setting(
        0.08, "Smallest share of the photo a training crop covers (Inception preprocessing, Szegedy "
        "et al. 2016: 0.08; crops cover [this, 1] of the area).", minimum=0.01, maximum=1.0)
    color_jitter: bool = setting(
        True, "Random brightness, saturation, hue and contrast in training (Inception "
        "preprocessing). Off where colour is the location signal (the demo's Earth imagery).")
    augment_on: str = setting(
        "auto", "Where training augmentation runs: device (the host only decodes the random crop; "
        "resize, flip, colour and scaling run in the train step on the accelerator), host (all on "
        "the CPU, float32 batches), auto (device when training on GPUs/TPUs, else host).",
        choices=("auto", "device", "host"))
    sgd_epochs: int = setting(
        24, "Epochs of the final SGD phase, natural class frequencies, full data set per epoch "
        "(24 epochs at 4 % leave 4 % of the initial rate).", minimum=0)
    validation_photos: int = setting(
        2048, "Photos of a fixed random M1-validation subset scored in km every epoch (TensorBoard).",
        minimum=0)
    checkpoint_every_steps: int = setting(
        500, "Training state saved every this many steps (and every epoch); a killed run resumes "
        "there.", minimum=1)
    dropout_keep: float = setting(
        0.8, "Keep probability of the dropout before the softmax (Inception-v4: 0.8).", minimum=0.0,
        maximum=1.0, min_exclusive=True)
    batch_norm_decay: float = setting(
        0.9997, "Decay of batch normalization's moving mean and variance, which inference uses "
        "(TF-slim's Inception-v4: 0.9997, made for ~10^6 steps). They forget their start (mean 0, "
        "variance 1) only after ~1/(1-decay) steps, so a run of a few hundred steps needs ~0.99 or "
        "its predictions are near uniform. Inception-v4 only.", minimum=0.0, maximum=0.99999,
        min_exclusive=True)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class PredictSection:
    """Stored M1 predictions for every photo, read by M2, M3, averaging, evaluation and retrieval."""

    top_k: int = setting(10, "Cells kept per photo, with their probabilities (Figure 3 operator (1): 10).",
                       minimum=1)
    store_features: bool = setting(False, "Also store M1's 1536-d penultimate features (for retrieval).")

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class M2Section:
    """M2: the time-adjusting model (paper §3.2, Table 2, appendix A.2)."""

    top_k: int = setting(10, "Entries kept by the sparsify-normalize layer (§3.2: top 10).", minimum=1)
    hidden_units: int = setting(1626, "Units of each hidden block (Table 2: 542*3).", minimum=1)
    dropout: float = setting(0.5, "Dropout rate of every hidden block (Table 2: 50 %).", minimum=0.0,
                           maximum=1.0)
    learning_rates: tuple[float, ...] = setting(
        (0.005, 0.001), "Adam learning rates, one phase each (appendix A.2: 0.005 then 0.001).",
        minimum=0.0, min_exclusive=True, check=_non_empty)
    boosting_rounds: int = setting(
        2, "Rounds of AdaBoost-style re-weighting of misclassified photos before the Adam phases "
        "(appendix A.2 'initial iterations of Adaboost'; 0 turns it off).", minimum=0)
    batch_size: int = setting(512, "Global batch size.", minimum=1)
    max_epochs: int = setting(100, "Upper bound on epochs per phase; early stopping usually ends sooner.",
                            minimum=1)
    early_stopping_patience: int = setting(
        5, "Epochs of falling validation accuracy that stop a phase, restoring the best weights "
        "(appendix A.2).", minimum=1)
    early_stopping_metric: str = setting(
        "accuracy", "What early stopping watches on validation: 'accuracy' (appendix A.2) or 'loss' "
        "(the cross-entropy: far less noisy where cell accuracy is a few percent on a few thousand "
        "photos).", choices=EARLY_STOPPING_METRICS)
    m1_prior: bool = setting(
        False, "Beyond the paper: M2's softmax adds the log of M1's renormalized top-k probabilities "
        "to its (zero-initialized) output logits, so M2 starts as M1 and learns a correction from the "
        "time. For M2 training sets too small to relearn the map onto the cells (the demo: ~9 photos "
        "per cell); the paper's M2 had millions.")
    extra_inputs: tuple[str, ...] = setting(
        (), "Inputs beyond the paper, appended to M2's input: 'outdoor' (the photo's outdoor "
        "probability; the paper's suggested future work).", choices=("outdoor",))

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class M3Section:
    """M3: M2's blocks inside a masked bidirectional LSTM over user albums (paper §3.3, Figure 3)."""

    album_size: int = setting(24, "Photos per album (§3.3: 24), zero-padded and masked.", minimum=1)
    lstm_units: int = setting(256, "Units of each LSTM direction (not given in the paper).", minimum=1)
    init_from_m2: bool = setting(True, "Initialize the per-photo blocks from the trained M2.")
    freeze_m2: bool = setting(
        False, "Beyond the paper: keep the per-photo part started from M2 fixed and train only the "
        "LSTM and its correction (for small M2/M3 training sets; needs --m3_init_from_m2).")
    residual_output: bool = setting(
        True, "M3's softmax takes M2's output logits plus a small correction from the LSTM, "
        "so M3 starts near the trained M2 (our reading of Figure 3); False: a fresh softmax on the LSTM.")
    album_evidence: bool = setting(
        False, "Beyond the paper: with --m3_residual_output, every photo's logits also get the log "
        "of the mean softmax over its album, times a learned weight starting at 1 (the LSTM alone "
        "did not learn to pool an album's evidence on the demo).")
    learning_rate: float = setting(
        0.001, "Adam learning rate (not given for M3; appendix A.2's final M2 rate).", minimum=0.0,
        min_exclusive=True)
    batch_size: int = setting(64, "Albums per global batch.", minimum=1)
    max_epochs: int = setting(100, "Upper bound on epochs; early stopping usually ends sooner.", minimum=1)
    early_stopping_patience: int = setting(5, "Epochs of falling validation accuracy that stop training.",
                                         minimum=1)
    early_stopping_metric: str = setting(
        "accuracy", "What early stopping watches on validation: 'accuracy' or 'loss', as for M2.",
        choices=EARLY_STOPPING_METRICS)

    def __post_init__(self) -> None:
        check_settings(self)
        if self.album_evidence and not self.residual_output:
            raise SettingError(
                "M3Section", "{album_evidence} needs {residual_output}: the album's evidence is added "
                "to M2's output logits, which only the residual output keeps",
                ("album_evidence", "residual_output"))
        if self.freeze_m2 and not self.init_from_m2:
            raise SettingError(
                "M3Section", "{freeze_m2} needs {init_from_m2}: there is no trained M2 part to keep "
                "fixed", ("freeze_m2", "init_from_m2"))


@dataclass(frozen=True)
class EvaluateSection:
    """Evaluation and report (paper §3.1.3, Tables 3-7, appendix C)."""

    thresholds_km: tuple[float, ...] = setting(
        (1.0, 25.0, 200.0, 750.0, 2500.0), "Accuracy thresholds in km: street, city, region, country, "
        "continent (§3.1.3).", minimum=0.0, min_exclusive=True, check=_increasing)
    outdoor_threshold: float = setting(
        0.5, "Photos with outdoor probability >= this count as outdoor (Table 4).", minimum=0.0,
        maximum=1.0)
    knn_k: int = setting(
        0, "Beyond the paper: add an 'M1 kNN' row, each photo located from its k nearest M1 "
        "training photos in M1's feature space (Vo et al. 2017); needs --predict_store_features. "
        "0: off (at YFCC100M scale the features take ~6 GB per million photos).", minimum=0)
    knn_bandwidth_km: float = setting(
        100.0, "Bandwidth of the Gaussian kernel over great-circle distance that picks the densest "
        "of the k neighbours' locations (our choice; Vo et al. 2017 tune it).", minimum=0.0,
        min_exclusive=True)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class ExportSection:
    """SavedModel export of the trained models."""

    top_k: int = setting(5, "Cells returned per photo by the serving signatures.", minimum=1)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class RuntimeSection:
    """How the run executes; changing these never invalidates finished stages."""

    strategy: str = setting(
        "auto", "tf.distribute strategy: 'auto' (mirrored over all GPUs, else the default), "
        "'mirrored', 'multi_worker' (TF_CONFIG), 'one_device'.",
        choices=("auto", "mirrored", "multi_worker", "one_device"))
    mixed_precision: bool = setting(False, "Train with mixed_float16 (GPUs with tensor cores).")
    jit_compile: bool = setting(False, "Compile training steps with XLA.")
    input_autotune: bool = setting(
        False, "tf.data's autotuner for M1's training input. Off: one map call per core (on a "
        "2-core host the autotuner now and then left a core idle for a whole pass; input_bench).")

    def __post_init__(self) -> None:
        check_settings(self)


SECTIONS: dict[str, type] = {
    "mesh": MeshConfig,
    "data": IngestConfig,
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

    mesh: MeshConfig = dataclasses.field(default_factory=MeshConfig)
    data: IngestConfig = dataclasses.field(default_factory=IngestConfig)
    m1: M1Section = dataclasses.field(default_factory=M1Section)
    predict: PredictSection = dataclasses.field(default_factory=PredictSection)
    m2: M2Section = dataclasses.field(default_factory=M2Section)
    m3: M3Section = dataclasses.field(default_factory=M3Section)
    evaluate: EvaluateSection = dataclasses.field(default_factory=EvaluateSection)
    export: ExportSection = dataclasses.field(default_factory=ExportSection)
    runtime: RuntimeSection = dataclasses.field(default_factory=RuntimeSection)

    def __post_init__(self) -> None:
        """Rules that span sections; their fields are named `<section>_<field>`, as the flags."""
        if self.evaluate.knn_k and not self.predict.store_features:
            raise SettingError(
                "RunConfig", "{evaluate_knn_k}=%d needs M1's features of every photo: add "
                "{predict_store_features} (or set {evaluate_knn_k}=0)" % self.evaluate.knn_k,
                ("evaluate_knn_k", "predict_store_features"))
        if self.m2.top_k > self.predict.top_k:
            raise SettingError(
                "RunConfig", "{m2_top_k}=%d exceeds {predict_top_k}=%d: M2 keeps the top cells of "
                "the ones M1's predictions store" % (self.m2.top_k, self.predict.top_k),
                ("m2_top_k", "predict_top_k"))

    def section(self, name: str) -> Any:
        return getattr(self, name)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: to_dict(self.section(name)) for name in SECTIONS}

    def to_json(self) -> str:
        return json.dumps({"format_version": FORMAT_VERSION, "sections": self.to_dict()}, indent=2,
                          sort_keys=True)

    @classmethod
    def from_dict(cls, sections: dict[str, dict[str, Any]]) -> "RunConfig":
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            raise ValueError(f"unknown config sections {sorted(unknown)}; known: {sorted(SECTIONS)}")
        return cls(**{name: from_dict(SECTIONS[name], values) for name, values in sections.items()})

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        payload = json.loads(text)
        version = payload.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"config.json has format_version {version!r}; this geoloc reads "
                             f"{FORMAT_VERSION}")
        return cls.from_dict(payload["sections"])
