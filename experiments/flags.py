"""The runner's absl flags: every setting of every section (derived), plus the run's own flags.

Each leaf setting of a section class in `experiments.config.SECTIONS` becomes `--<section>_<field>`
(`experiments.settings_flags`); the run adds `--run_dir`, `--stages`, `--force_stages` and the short
aliases a GPU user reaches for first. This is the only module that defines flags on absl's global
FLAGS (library code never reads them); the `geoloc` subcommands define theirs on their own FlagValues.
"""

from __future__ import annotations

from typing import Sequence

from absl import flags

from experiments import settings_flags
from experiments.config import SECTIONS, RunConfig
from experiments.errors import ConfigError
from experiments.stages.registry import STAGE_NAMES
from mesh.settings import SettingError

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "run_dir",
    None,
    "Run directory: config.json, per-stage outputs, tensorboard/, "
    "logs/. A rerun on the same directory continues where it stopped.",
)
flags.DEFINE_list(
    "stages",
    list(STAGE_NAMES),
    "Stages to run, in this order: "
    + ", ".join(STAGE_NAMES)
    + ". A stage whose outputs exist for the same config is skipped.",
)
flags.DEFINE_list(
    "force_stages",
    [],
    "Stages to redo even if their outputs exist; stages downstream of a redone stage are redone too.",
)


def _check_stage_list(names: list[str]) -> bool:
    unknown = [n for n in names if n not in STAGE_NAMES]
    if unknown:
        raise flags.ValidationError(
            f"unknown stage(s) {', '.join(unknown)}; allowed: {', '.join(STAGE_NAMES)}"
        )
    return True


flags.register_validator("stages", _check_stage_list)
flags.register_validator("force_stages", _check_stage_list)

settings_flags.define_setting_flags(FLAGS, SECTIONS)

# Short names for the settings a GPU user reaches for first (BUILD.md): --strategy=mirrored etc.
for _short in ("strategy", "mixed_precision", "jit_compile"):
    flags.DEFINE_alias(_short, f"runtime_{_short}")


def parse(argv: Sequence[str]) -> list[str]:
    """Expands flagfiles and parses argv into FLAGS; returns the positional arguments."""
    return settings_flags.parse(FLAGS, argv)


def run_config_from_flags() -> RunConfig:
    """The RunConfig of the parsed flags; every rule, within and across sections, is checked here."""
    sections = settings_flags.configs_from_flags(FLAGS, SECTIONS)
    try:
        return RunConfig(**sections)
    except SettingError as error:
        raise ConfigError(settings_flags.render_setting_error(error, "")) from None
