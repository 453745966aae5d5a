"""The runner's data section as the library's `IngestConfig`, and whether the run is simulated.

`IngestConfig` declares the data section's settings under the runner's names (`--data_<name>`), so
this is a copy by name, not a mapping; where the photos come from (the user's files or the demo
collection) is resolved by `data_pipelines.ingest` itself.
"""

from __future__ import annotations

import dataclasses

from experiments.config import RunConfig


def data_config(config: RunConfig):
    """The IngestConfig of this run's data section."""
    from data_pipelines.config import IngestConfig
    from mesh.settings import from_flat

    if isinstance(config.data, IngestConfig):
        return config.data
    return from_flat(IngestConfig, {f.name: getattr(config.data, f.name)
                                    for f in dataclasses.fields(config.data)})


def is_simulated(config: RunConfig) -> bool:
    """True when the run's users, posting times and indoor photos are simulated (the demo)."""
    return config.data.source == "demo"
