"""Helpers shared by the test packages."""

from __future__ import annotations

import numpy as np


def random_mesh(rng: np.random.Generator, n: int):
    """A small mesh (refinement limit 300, minimum 20, start grid 6) on `n` photos drawn uniformly
    between 60 S and 60 N from `rng`: tens of cells, built in well under a second."""
    from mesh import build_mesh

    return build_mesh(
        rng.uniform(-60, 60, n), rng.uniform(-170, 170, n), refinement_limit=300, min_examples=20, init_grid=6
    )
