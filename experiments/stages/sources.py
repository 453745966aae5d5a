"""The runner's data section as the library's `IngestConfig`, and whether the run is simulated.

`IngestConfig` declares the data section's settings under the runner's names (`--data_<name>`), so
this is a copy by name, not a mapping; where the photos come from (the user's files or the demo
collection) is resolved by `data_pipelines.ingest` itself.
"""

from __future__ import annotations

import dataclasses

from experiments.config import RunConfig
from experiments.errors import ConfigError


def data_config(config: RunConfig):
    """The IngestConfig of this run's data section; a bad combination of data flags raises
    ConfigError naming the flags."""
    from data_pipelines.config import IngestConfig
    from mesh.settings import SettingError, from_flat

    if isinstance(config.data, IngestConfig):
        return config.data
    try:
        return from_flat(IngestConfig, {f.name: getattr(config.data, f.name)
                                        for f in dataclasses.fields(config.data)})
    except SettingError as error:
        raise ConfigError(error.render(lambda field: f"--data_{field}")) from None


def is_simulated(config: RunConfig) -> bool:
    """True when the run's users, posting times and indoor photos are simulated (the demo)."""
    return config.data.source == "demo"
