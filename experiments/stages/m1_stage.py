"""Stage `m1`: Inception-v4 over the mesh cells, trained with appendix A.1's procedure.

Resumable: the trainer checkpoints every --m1_checkpoint_every_steps steps under run_dir/m1/; a
rerun of the same command continues from there (geoloc_tf.m1.trainer).
"""

from __future__ import annotations

from pathlib import Path

from experiments.config import RunConfig


def train_config(config: RunConfig):
    """M1's trainer configuration from the m1, data and runtime sections."""
    from data_pipelines.config import SamplerConfig
    from geoloc_tf.m1.trainer import M1TrainConfig

    m1 = config.m1
    return M1TrainConfig(
        backbone=m1.backbone, image_size=m1.image_size, width_multiplier=m1.width_multiplier,
        blocks=tuple(m1.blocks), dropout_keep=m1.dropout_keep, batch_norm_decay=m1.batch_norm_decay,
        global_batch_size=m1.global_batch_size, adagrad_learning_rate=m1.adagrad_learning_rate,
        sampler=SamplerConfig(examples_per_cell=m1.examples_per_cell, growth_per_epoch=m1.epoch_growth,
                              alpha_schedule=tuple(m1.alpha_schedule),
                              epochs_per_cycle=m1.cycle_epochs, seed=config.data.seed),
        sgd_learning_rate=m1.sgd_learning_rate, sgd_decay_per_epoch=m1.sgd_decay_per_epoch,
        sgd_epochs=m1.sgd_epochs, sgd_momentum=m1.sgd_momentum,
        crop_area_min=m1.crop_area_min, color_jitter=m1.color_jitter, augment_on=m1.augment_on,
        init_checkpoint=m1.init_checkpoint,
        strategy=config.runtime.strategy, mixed_precision=config.runtime.mixed_precision,
        jit_compile=config.runtime.jit_compile, input_autotune=config.runtime.input_autotune,
        checkpoint_every_steps=m1.checkpoint_every_steps,
        validation_photos=m1.validation_photos, seed=config.data.seed,
        deterministic_input=config.runtime.deterministic)


def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
    import mesh
    from data_pipelines.dataset import load
    from geoloc_tf.m1.trainer import train_m1
    from geoloc_tf.run_layout import RunLayout

    layout = RunLayout(run_dir)
    train_m1(load(str(layout.data_dir)), mesh.Mesh.load(layout.mesh),
                      layout.m1_dir, layout.tensorboard("m1"), train_config(config))
    return {"model": layout.relative(layout.m1_model), "history": layout.relative(layout.m1_history)}
