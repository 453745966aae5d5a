"""Small, hand-checkable data for the mesh tests (each test builds its own)."""

from __future__ import annotations

import numpy as np
import pytest


def clustered_points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A few Gaussian "cities" (one straddling 180 degrees) plus 5 % uniform points."""
    rng = np.random.default_rng(seed)
    centers = np.array([[48.85, 2.35], [40.7, -74.0], [35.7, 139.7], [-17.0, 179.9], [-33.9, 151.2]])
    weights = np.array([0.35, 0.3, 0.15, 0.1, 0.1])
    n_u = n // 20
    k = rng.choice(len(centers), size=n - n_u, p=weights)
    lat = centers[k, 0] + rng.standard_normal(n - n_u) * 1.5
    lon = centers[k, 1] + rng.standard_normal(n - n_u) * 1.5
    lat = np.concatenate([lat, np.degrees(np.arcsin(rng.uniform(-1, 1, n_u)))])
    lon = np.concatenate([lon, rng.uniform(-180, 180, n_u)])
    return np.clip(lat, -90, 90), (lon + 180.0) % 360.0 - 180.0


@pytest.fixture(scope="session")
def make_points():
    """The ``clustered_points(n, seed)`` generator, for tests needing their own sets."""
    return clustered_points


@pytest.fixture(scope="session")
def points() -> tuple[np.ndarray, np.ndarray]:
    return clustered_points(20000)


@pytest.fixture(scope="session")
def small_mesh(points):
    """A mesh small enough for brute-force checks (init grid 11: 242 initial triangles)."""
    from mesh import build_mesh

    lat, lon = points
    return build_mesh(lat, lon, refinement_limit=400, min_examples=40, init_grid=11)
