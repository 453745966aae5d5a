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
from geoloc_tf.m2.config import M2Config
from geoloc_tf.m3.config import M3Config
from geoloc_tf.run_configs import EvaluateConfig, ExportConfig, PredictConfig
from mesh.config import MeshConfig
from mesh.settings import SettingError, check_settings, from_dict, setting, to_dict

FORMAT_VERSION = 2

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
    deterministic: bool = setting(
        True, "Same command, same --data_seed, same machine: the same tables, bit for bit. Seeds "
        "every random generator before each stage and turns on TensorFlow's op determinism "
        "(experiments.determinism). Off: faster kernels where TensorFlow has nondeterministic ones "
        "(GPUs mostly); two runs then differ by training noise.")

    def __post_init__(self) -> None:
        check_settings(self)


SECTIONS: dict[str, type] = {
    "mesh": MeshConfig,
    "data": IngestConfig,
    "m1": M1Section,
    "predict": PredictConfig,
    "m2": M2Config,
    "m3": M3Config,
    "evaluate": EvaluateConfig,
    "export": ExportConfig,
    "runtime": RuntimeSection,
}


@dataclass(frozen=True)
class RunConfig:
    """Every section of one run; written to `run_dir/config.json`."""

    mesh: MeshConfig = dataclasses.field(default_factory=MeshConfig)
    data: IngestConfig = dataclasses.field(default_factory=IngestConfig)
    m1: M1Section = dataclasses.field(default_factory=M1Section)
    predict: PredictConfig = dataclasses.field(default_factory=PredictConfig)
    m2: M2Config = dataclasses.field(default_factory=M2Config)
    m3: M3Config = dataclasses.field(default_factory=M3Config)
    evaluate: EvaluateConfig = dataclasses.field(default_factory=EvaluateConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
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

    @property
    def seed(self) -> int:
        """The run's one seed (--data_seed): splits, demo, mesh sample, M1's curriculum, M2, M3."""
        return self.data.splits.seed

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
