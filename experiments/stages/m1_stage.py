"""Stage `m1`: Inception-v4 over the mesh cells, trained with appendix A.1's procedure.

Resumable: the trainer checkpoints every --m1_checkpoint_every_steps steps under run_dir/m1/; a
rerun of the same command continues from there (geoloc_tf.m1.checkpoints).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from experiments.config import RunConfig


def train_config(config: RunConfig):
    """(M1Config, RuntimeConfig) from the m1 and runtime sections.

    The sections hold the same fields under the same names (the sampler's nested), so this copies
    them by name; it goes when the runner's sections are these classes.
    """
    from data_pipelines.config import SamplerConfig
    from geoloc_tf.m1.config import M1Config
    from geoloc_tf.runtime_config import RuntimeConfig

    m1 = dataclasses.asdict(config.m1)
    sampler = SamplerConfig(**{f.name: m1.pop(f.name) for f in dataclasses.fields(SamplerConfig)
                               if f.name in m1})
    return (M1Config(**m1, sampler=sampler),
            RuntimeConfig(**dataclasses.asdict(config.runtime)))


def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
    import mesh
    from data_pipelines.dataset import load
    from geoloc_tf.m1.training import train_m1

    m1, runtime = train_config(config)
    train_m1(load(str(run_dir / "data")), mesh.Mesh.load(run_dir / "mesh" / "mesh.npz"),
             run_dir / "m1", run_dir / "tensorboard" / "m1", m1, runtime, seed=config.data.seed)
    return {"model": "m1/m1.keras", "history": "m1/history.json"}
