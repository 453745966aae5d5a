"""The mesh map (Figure 2) over the basemap, checked by the colours of its pixels."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from mesh.plot import LAND_COLOR, OCEAN_COLOR, basemap_resolution, plot_mesh
from tests.conftest import CASPIAN, MADRID, MID_ATLANTIC, WORLD, colour_at, map_frames, near, tokyo_mesh

SAHARA = (10.0, 23.0)


@pytest.fixture(scope="module")
def mesh_map(tmp_path_factory):
    """Figure 2 of the Tokyo mesh, with 36 more photos on a 2 x 2 degree grid in the Sahara (too
    few for a cell: they show only as the photo density)."""
    grid = np.linspace(-1.0, 1.0, 6)
    sahara_lon, sahara_lat = (g.ravel() for g in np.meshgrid(SAHARA[0] + grid, SAHARA[1] + grid))
    mesh, lat, lon = tokyo_mesh(sahara_lat, sahara_lon)
    assert mesh.locate([SAHARA[1]], [SAHARA[0]])[0] == -1  # a dropped cell: no red there
    path = tmp_path_factory.mktemp("mesh_map") / "mesh.png"
    plot_mesh(mesh, lat, lon, path)
    return imread(path)


def test_the_mesh_map_shows_land_sea_and_the_caspian_hole(mesh_map):
    (frame,) = map_frames(mesh_map)
    assert near(colour_at(mesh_map, frame, WORLD, *MADRID), LAND_COLOR)
    assert near(colour_at(mesh_map, frame, WORLD, *MID_ATLANTIC), OCEAN_COLOR)
    assert near(colour_at(mesh_map, frame, WORLD, *CASPIAN, size=3), OCEAN_COLOR)  # a hole in Eurasia


def test_the_mesh_map_shows_photos_and_cells_over_the_basemap(mesh_map):
    (frame,) = map_frames(mesh_map)
    land = np.asarray(to_rgb(LAND_COLOR))
    sahara = colour_at(mesh_map, frame, WORLD, *SAHARA)
    assert sahara.sum() < land.sum() - 0.3  # the photos' haze darkens the land under them
    tokyo = colour_at(mesh_map, frame, WORLD, 139.7, 35.7)
    assert tokyo[0] > tokyo[1] + 0.1 and tokyo[0] > tokyo[2] + 0.1  # red kept cells


def test_small_maps_draw_the_finer_coastline():
    """Under 90 degrees on the longer side, the 1:50 m basemap; the world and large regions, 1:110 m."""
    assert basemap_resolution(None) == "110m"
    assert basemap_resolution((-10.0, 5.0, 35.0, 45.0)) == "50m"
    assert basemap_resolution((-100.0, 0.0, 0.0, 40.0)) == "110m"
