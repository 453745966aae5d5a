"""One row of the performance page: a figure next to its baseline from the same run.

Every benchmark module in this package exposes

    def measure(quick: bool = False) -> list[BenchmarkRow]

which runs the benchmark (``quick``: a smaller size that finishes in well under a minute) and returns
its headline figures. ``python -m experiments.benchmarks`` calls each module's ``measure`` and writes
one markdown table of all rows; each module's own ``main`` still prints its full report.
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class BenchmarkRow:
    """A measured figure, the baseline measured in the same run, and the target if it has one.

    ``higher_is_better`` orients the ratio: the ratio is always "how many times better than the
    baseline" (figure / baseline for rates, baseline / figure for times).
    """

    benchmark: str  # module name, e.g. "mesh_bench"
    figure: str  # what was measured, e.g. "fine mesh locate"
    value: float
    unit: str  # e.g. "M points/s", "s", "ms/query"
    baseline: str = ""  # what the baseline is, e.g. "h3 latlng_to_cell loop"
    baseline_value: float = math.nan
    higher_is_better: bool = True
    target: str = ""  # e.g. ">= 10 M points/s"
    met: bool | None = None  # whether the target is met; None when there is no target

    @property
    def ratio(self) -> float:
        """Times better than the baseline (nan when there is no baseline)."""
        if not (self.baseline_value and math.isfinite(self.baseline_value)) or not self.value:
            return math.nan
        if self.higher_is_better:
            return self.value / self.baseline_value
        return self.baseline_value / self.value
