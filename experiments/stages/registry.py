"""The stages of a run, in order, with the config sections each reads and the stages it needs.

A stage is a function `(config, run_dir) -> artifacts`: it writes under
its folder of the run directory (`RunLayout.stage_dir`) and returns a dict of artifact name -> path relative to run_dir. Stages whose
modules are imported only when the stage runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from experiments.config import RunConfig

StageFn = Callable[[RunConfig, Path], dict[str, str]]


@dataclass(frozen=True)
class Stage:
    """One step of a run.

    `reads`: config sections whose values decide its outputs (its fingerprint). `needs`: upstream
    stages whose outputs it reads; when one of them is redone, this stage is redone too.
    `backend`: the Keras backend the stage needs, if any (`why_backend` says why); on a run of
    another backend the runner runs it in a child process on that one (`experiments.stages.child`).
    """

    name: str
    reads: tuple[str, ...]
    needs: tuple[str, ...]
    run: StageFn
    backend: str | None = None
    why_backend: str = ""


def _lazy(module: str, function: str) -> StageFn:
    """Imports a stage's module only when the stage runs (keeps `--help` fast, TF out of mesh runs)."""

    def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
        import importlib

        return getattr(importlib.import_module(module), function)(config, run_dir)

    return run


STAGES: tuple[Stage, ...] = (
    Stage("mesh", reads=("mesh", "data"), needs=(), run=_lazy("experiments.stages.mesh_stage", "run")),
    Stage("data", reads=("data",), needs=(), run=_lazy("experiments.stages.data_stage", "run")),
    Stage("m1", reads=("m1",), needs=("mesh", "data"), run=_lazy("experiments.stages.m1_stage", "run")),
    Stage("predict", reads=("predict",), needs=("m1",), run=_lazy("experiments.stages.predict_stage", "run")),
    Stage("m2", reads=("m2",), needs=("predict",), run=_lazy("experiments.stages.m2_stage", "run")),
    Stage("m3", reads=("m3",), needs=("predict", "m2"), run=_lazy("experiments.stages.m3_stage", "run")),
    Stage(
        "evaluate",
        reads=("evaluate",),
        needs=("predict", "m2", "m3"),
        run=_lazy("experiments.stages.evaluate_stage", "run"),
    ),
    Stage(
        "export",
        reads=("export",),
        needs=("mesh", "m1", "m2", "m3"),
        run=_lazy("experiments.stages.export_stage", "run"),
        backend="tensorflow",
        why_backend="SavedModel, LiteRT and ONNX are made by TensorFlow",
    ),
)

STAGE_BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
#: The stages' names in run order (``--stages``, ``--force_stages``).
STAGE_NAMES: tuple[str, ...] = tuple(STAGE_BY_NAME)
