"""Stages of a run: the registry (what exists, in which order) and the runner (resume logic)."""

from experiments.stages.registry import STAGE_BY_NAME, STAGES, Stage
from experiments.stages.runner import StageOutcome, run_stages

__all__ = ["STAGES", "STAGE_BY_NAME", "Stage", "StageOutcome", "run_stages"]
