"""M1's settings: the network and appendix A.1's training procedure, each declared once.

Every field is a setting (``mesh.settings``): the runner derives its ``--m1_<field>`` flags from
these declarations, and the sampler's settings (``data_pipelines.config.SamplerConfig``, nested)
join them under their own names (``--m1_epoch_growth``). This module imports neither TensorFlow nor
Keras, so parsing flags stays fast; how the run executes (strategy, precision, XLA) is
``geoloc_tf.runtime_config.RuntimeConfig``, and the seed is the run's one seed, an argument of
``geoloc_tf.m1.training.train_m1``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from data_pipelines.config import SamplerConfig
from mesh.settings import check_settings, nested, setting

#: Every ``backbone`` M1 builds, the one list of their names: the paper's Inception-v4 and the
#: ``keras.applications`` networks of ``geoloc_tf.m1.backbones`` (which holds their builders and
#: imports this; a test keeps the names and the builders equal).
BACKBONES: tuple[str, ...] = (
    "inception_v4",
    "inception_v3",
    "inception_resnet_v2",
    "resnet50",
    "efficientnet_v2_s",
)
#: Where training augmentation runs (``augment_on``).
AUGMENT_ON: tuple[str, ...] = ("auto", "device", "host")


def _three_counts(blocks: tuple[int, ...]) -> str | None:
    return None if len(blocks) == 3 else "three counts are needed (A,B,C)"


@dataclasses.dataclass(frozen=True)
class M1Config:
    """M1: Inception-v4 over mesh cells, trained with the procedure of appendix A.1.

    A.1 as configuration: start from ImageNet weights (``init_checkpoint``); Adagrad cycles with
    class-balanced sampling (``sampler``: alpha per cycle, epochs of cells x 200 examples growing
    6 %); a final SGD phase on the natural distribution whose rate falls linearly by
    ``sgd_decay_per_epoch`` of its initial value per epoch.
    """

    backbone: str = setting(
        "inception_v4",
        "Image network: the paper's Inception-v4, or a keras.applications network "
        "for users who have its weights.",
        choices=BACKBONES,
    )
    image_size: int = setting(299, "Input side in pixels (Inception-v4: 299; >= 75).", minimum=75)
    blocks: tuple[int, ...] = setting(
        (4, 7, 3),
        "Inception-A, -B and -C blocks (Inception-v4: 4,7,3; fewer for CPU-sized runs).",
        minimum=0,
        check=_three_counts,
    )
    width_multiplier: float = setting(
        1.0,
        "Scales every convolution's filter count (1.0: the published network).",
        minimum=0.0,
        min_exclusive=True,
    )
    global_batch_size: int = setting(
        256,
        "Global batch size: summed over all replicas (--runtime_strategy's devices); each "
        "replica gets global / num_replicas.",
        minimum=1,
    )
    init_checkpoint: Optional[str] = setting(
        None,
        "ImageNet initialization (appendix A.1 starts from ImageNet): a TF-slim "
        "inception_v4.ckpt or a Keras weights file. Unset: random initialization.",
    )
    adagrad_learning_rate: float = setting(
        0.01,
        "Learning rate of the Adagrad cycles (appendix A.1 uses Adagrad, rate not given).",
        minimum=0.0,
        min_exclusive=True,
    )
    sampler: SamplerConfig = nested(
        SamplerConfig, "Appendix A.1's class-balanced sampling of the Adagrad cycles."
    )
    sgd_learning_rate: float = setting(
        0.01,
        "Initial learning rate of the final SGD phase (appendix A.1: between 0.004 and 0.02).",
        minimum=0.0,
        min_exclusive=True,
    )
    sgd_decay_per_epoch: float = setting(
        0.04,
        "The SGD learning rate falls linearly by this fraction of its initial value per "
        "epoch (appendix A.1: 4 %).",
        minimum=0.0,
        maximum=1.0,
    )
    sgd_momentum: float = setting(
        0.0,
        "Momentum of the final SGD phase (appendix A.1 says SGD: plain, 0). Not in the paper.",
        minimum=0.0,
        maximum=0.999,
    )
    label_smoothing_km: float = setting(
        0.0,
        "Haversine label smoothing (PIGEON, Haas et al. 2024): the training target spreads over "
        "the cells as exp(-(d - d_min) / tau), d the km from each cell's label point to the "
        "photo, tau this value in km; larger spreads wider, towards neighbouring cells. "
        "0: the paper's one-hot target on the photo's cell.",
        minimum=0.0,
    )
    crop_area_min: float = setting(
        0.08,
        "Smallest share of the photo a training crop covers (Inception preprocessing, "
        "Szegedy et al. 2016: 0.08; crops cover [this, 1] of the area).",
        minimum=0.01,
        maximum=1.0,
    )
    color_jitter: bool = setting(
        True,
        "Random brightness, saturation, hue and contrast in training (Inception "
        "preprocessing). Off where colour is the location signal (the demo's Earth imagery).",
    )
    augment_on: str = setting(
        "auto",
        "Where training augmentation runs: device (the host only decodes the random crop; "
        "resize, flip, colour and scaling run in the train step on the accelerator), host (all on "
        "the CPU, float32 batches), auto (device when training on GPUs/TPUs, else host).",
        choices=AUGMENT_ON,
    )
    sgd_epochs: int = setting(
        24,
        "Epochs of the final SGD phase, natural class frequencies, full data set per epoch "
        "(24 epochs at 4 % leave 4 % of the initial rate).",
        minimum=0,
    )
    validation_photos: int = setting(
        2048,
        "Photos of a fixed random M1-validation subset scored in km every epoch (TensorBoard).",
        minimum=0,
    )
    precise_bn_photos: int = setting(
        0,
        "Before each epoch's validation and before m1.keras is saved, batch normalization's "
        "inference statistics are recomputed with the current weights over this many M1 training "
        'photos ("precise BN", Wu & Johnson 2021; geoloc_tf.m1.batch_norm). 0: the moving '
        "averages of training, as the paper.",
        minimum=0,
    )
    checkpoint_every_steps: int = setting(
        500,
        "Training state saved every this many steps (and every epoch); a killed run resumes there.",
        minimum=1,
    )
    dropout_keep: float = setting(
        0.8,
        "Keep probability of the dropout before the softmax (Inception-v4: 0.8).",
        minimum=0.0,
        maximum=1.0,
        min_exclusive=True,
    )
    batch_norm_decay: float = setting(
        0.9997,
        "Decay of batch normalization's moving mean and variance, which inference uses "
        "(TF-slim's Inception-v4: 0.9997, made for ~10^6 steps). They forget their start (mean 0, "
        "variance 1) only after ~1/(1-decay) steps, so a run of a few hundred steps needs ~0.99 or "
        "its predictions are near uniform. Inception-v4 only.",
        minimum=0.0,
        maximum=0.99999,
        min_exclusive=True,
    )
    shuffle_buffer: int = setting(
        10_000,
        "Training examples tf.data's shuffle buffer holds; it spreads the sampler's copies "
        "of a photo apart (not in the paper).",
        minimum=0,
    )
    log_every_steps: int = setting(
        20, "The training loss goes to TensorBoard every this many steps.", minimum=1, affects_outputs=False
    )

    def __post_init__(self):
        check_settings(self)

    @property
    def biased_epochs(self) -> int:
        """Epochs of the Adagrad cycles: one cycle per alpha of the sampler's schedule."""
        return len(self.sampler.alpha_schedule) * self.sampler.cycle_epochs

    @property
    def total_epochs(self) -> int:
        return self.biased_epochs + self.sgd_epochs

    def learning_rate(self, epoch: int) -> float:
        """Adagrad's rate during the cycles; the linearly falling SGD rate afterwards."""
        if epoch < self.biased_epochs:
            return self.adagrad_learning_rate
        k = epoch - self.biased_epochs
        return self.sgd_learning_rate * max(0.0, 1.0 - self.sgd_decay_per_epoch * k)

    def model_config(self, num_cells: int):
        """The network's ``inception_v4.InceptionV4Config`` (imported here: it needs Keras)."""
        from geoloc_tf.m1 import inception_v4

        a, b, c = self.blocks
        return inception_v4.InceptionV4Config(
            num_cells=num_cells,
            image_size=self.image_size,
            width_multiplier=self.width_multiplier,
            num_blocks_a=a,
            num_blocks_b=b,
            num_blocks_c=c,
            dropout_keep_prob=self.dropout_keep,
            batch_norm_decay=self.batch_norm_decay,
        )
