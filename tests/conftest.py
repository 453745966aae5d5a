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


def tokyo_mesh(extra_lat=(), extra_lon=()):
    """A mesh whose kept cells are all around Tokyo: 2 000 photos within a few degrees of it (and
    the photos ``extra_lat, extra_lon``), refinement limit 400, minimum 40, start grid 6; Madrid and
    the Atlantic lie in dropped cells."""
    from mesh import build_mesh

    rng = np.random.default_rng(0)
    lat = np.concatenate([35.7 + rng.normal(0, 1.5, 2000), np.asarray(extra_lat, np.float64)])
    lon = np.concatenate([139.7 + rng.normal(0, 1.5, 2000), np.asarray(extra_lon, np.float64)])
    return build_mesh(lat, lon, refinement_limit=400, min_examples=40, init_grid=6), lat, lon


def map_frames(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(col0, col1, row0, row1) of each map panel of a PNG read by ``matplotlib.image.imread``, left
    to right: the bounding box of the pixels of the basemap's sea or land colour, one per run of at
    least 20 columns holding such pixels (nothing else in a figure is drawn in those colours but a
    few antialiased pixels of text)."""
    from mesh.plot import LAND_COLOR, OCEAN_COLOR

    basemap = is_colour(image, LAND_COLOR) | is_colour(image, OCEAN_COLOR)
    columns = np.flatnonzero(basemap.any(axis=0))
    frames = []
    for run in np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1):
        if len(run) < 20:
            continue
        rows = np.flatnonzero(basemap[:, run[0] : run[-1] + 1].any(axis=1))
        frames.append((int(run[0]), int(run[-1]), int(rows[0]), int(rows[-1])))
    return frames


def is_colour(image: np.ndarray, colour: str, tolerance: float = 6 / 255) -> np.ndarray:
    """Pixels of ``image`` (RGB(A) floats in [0, 1]) within ``tolerance`` of ``colour`` per channel."""
    from matplotlib.colors import to_rgb

    return np.all(np.abs(image[..., :3] - np.asarray(to_rgb(colour))) <= tolerance, axis=-1)


def colour_at(image, frame, extent, lon: float, lat: float, size: int = 5) -> np.ndarray:
    """Median RGB of the ``size`` x ``size`` pixels around (lon, lat) on the panel ``frame`` (from
    ``map_frames``) showing ``extent`` (lon0, lon1, lat0, lat1), lon/lat linear in pixels: the
    median ignores a thin line (a cell's edge, a border) crossing the window."""
    col0, col1, row0, row1 = frame
    lon0, lon1, lat0, lat1 = extent
    col = round(col0 + (lon - lon0) / (lon1 - lon0) * (col1 - col0))
    row = round(row0 + (lat1 - lat) / (lat1 - lat0) * (row1 - row0))
    half = size // 2
    window = image[row - half : row + half + 1, col - half : col + half + 1, :3]
    return np.median(window.reshape(-1, 3), axis=0)


def near(rgb: np.ndarray, colour: str, tolerance: float = 6 / 255) -> bool:
    """Whether ``rgb`` is within ``tolerance`` of ``colour`` per channel."""
    return bool(is_colour(np.asarray(rgb)[None], colour, tolerance)[0])


WORLD = (-180.0, 180.0, -90.0, 90.0)
MADRID = (-3.7, 40.4)
MID_ATLANTIC = (-40.0, 30.0)
CASPIAN = (50.5, 42.0)
