"""The mesh's settings (paper §3.1.1, Table 1), declared once: the runner's `--mesh_*` flags and the
`geoloc build-mesh` options are derived from `MeshConfig`.

Presets of Table 1 (`mesh.presets`): coarse 8000/1000, fine 5000/500, fineP 10000/50.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from mesh.settings import check_settings, setting


def _distinct(factors: tuple[int, ...]) -> str | None:
    return None if len(set(factors)) == len(factors) else "each factor once"


@dataclass(frozen=True)
class MeshConfig:
    """Mesh of the globe (paper §3.1.1, Table 1). Presets: coarse 8000/1000, fine 5000/500, fineP 10000/50."""

    refinement_limit: int = setting(
        8000, "A cell holding more training photos than this is split (Table 1, coarse: 8000).", minimum=1
    )
    min_examples: int = setting(
        1000,
        "A cell holding fewer training photos than this is dropped: not a class, its photos leave "
        "training (Table 1, coarse: 1000).",
        minimum=0,
    )
    init_grid: int = setting(31, "Side of the structured equal-area start grid (§3.1.1: 31 x 31).", minimum=2)
    coords: Optional[str] = setting(
        None,
        "CSV of training photo coordinates (latitude/longitude columns) to build the mesh from. "
        "Unset in a run: the coordinates of the data set's M1 training split, or the demo's "
        "coordinates when --data_source=demo.",
    )
    build_sample: int = setting(
        0,
        "Build the mesh on a random sample of this many photos, then populate it with all of them "
        "without refining (the paper built the coarse mesh on 2M photos, Figure 2). 0: use all.",
        minimum=0,
    )
    partition_factors: tuple[int, ...] = setting(
        (),
        "Extra, coarser partitions of the globe trained beside the mesh (PlaNet, Weyand et al. 2016; "
        "CPlaNet, Seo et al. 2018): one per factor, built from the same photos with refinement_limit "
        "and min_examples times the factor. M1 gets one softmax head per partition and scores each "
        "cell of the mesh by the product of the probabilities of the cells holding it. Empty: the "
        "paper's single mesh.",
        minimum=2,
        check=_distinct,
    )

    def __post_init__(self) -> None:
        check_settings(self)

    def partition(self, factor: int) -> "MeshConfig":
        """The settings of the extra partition of ``factor``: the same photos, start grid and
        sample, ``refinement_limit`` and ``min_examples`` times ``factor``, no partitions of its own."""
        return dataclasses.replace(
            self,
            refinement_limit=self.refinement_limit * factor,
            min_examples=self.min_examples * factor,
            partition_factors=(),
        )
