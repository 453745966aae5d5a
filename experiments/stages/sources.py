"""Whether a run's users, posting times and indoor photos are SIMULATED (the demo collection)."""

from __future__ import annotations

from experiments.config import RunConfig


def is_simulated(config: RunConfig) -> bool:
    """True when the run's users, posting times and indoor photos are simulated (the demo)."""
    return config.data.source == "demo"
